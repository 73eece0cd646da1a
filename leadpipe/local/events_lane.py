"""The events lane on one machine: moto's EventBridge, the hand-off queue and its relay, local API destinations.

The worker publishes exactly as in AWS, and the rules are the stack's own patterns. Nothing leaves this machine:
every destination is pointed at `deliver_to`, by default a LocalReceiver that prints what it gets.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.config import Config

from functions.worker.event_relay_handler import RELAY_BATCH_SIZE, RELAY_TIMEOUT_SECONDS
from infra.config import VISIBILITY_TIMEOUT_FACTOR, PipelineSettings
from leadpipe.local.api_destinations import LocalApiDestination
from leadpipe.local.lambda_pool import LambdaPool
from leadpipe.local.poller import EventSourceSettings, SqsEventSourcePoller
from leadpipe.local.receiver import LocalReceiver
from leadpipe.local.sqs_server import LOCAL_CREDENTIALS, LOCAL_REGION

DELIVERY_VISIBILITY_SECONDS = 30


@dataclass(frozen=True)
class LocalEventsInfo:
    """Where the lane's parts are, for `leadpipe dlq --destination` and the tests."""

    events_endpoint_url: str
    event_bus_name: str
    hand_off_url: str
    hand_off_dead_letter_url: str
    destination_dead_letter_urls: dict[str, str]
    destination_delivery_urls: dict[str, str]
    receiver_url: str | None


def local_client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=LOCAL_REGION,
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )


class LocalEventsLane:
    """Started by the local runtime when the stage has `events_enabled`."""

    def __init__(
        self,
        settings: PipelineSettings,
        leads_sqs: Any,
        aws_env: dict[str, str],
        logs: Path,
        deliver_to: str | None = None,
        echo: TextIO | None = None,
    ) -> None:
        """`aws_env`: the local AWS environment the functions get; `logs`: where the relay's log goes."""
        self.settings = settings
        self._aws_env = aws_env
        self._logs = logs
        self.receiver: LocalReceiver | None = None
        self.destinations: dict[str, LocalApiDestination] = {}
        self.info: LocalEventsInfo | None = None
        self._leads_sqs = leads_sqs
        self._deliver_to = deliver_to
        self._echo = echo
        self._server: Any = None
        self._relay: SqsEventSourcePoller | None = None
        self._relay_function: LambdaPool | None = None

    def start(self) -> dict[str, str]:
        """Start everything; the worker's environment for it (bus name, endpoint, hand-off queue)."""
        prefix = f"leadpipe-{self.settings.stage}"
        endpoint = self._start_moto()
        events, sqs = local_client("events", endpoint), local_client("sqs", endpoint)
        bus = events.create_event_bus(Name=f"{prefix}-leads")["EventBusArn"].rsplit("/", 1)[1]
        if self._deliver_to is None:
            self.receiver = LocalReceiver(echo=self._echo).start()
        delivery_urls, dead_letter_urls = self._create_destinations(events, sqs, bus, prefix)
        hand_off_url, hand_off_arn, hand_off_dead_letter_url = self._create_hand_off_queue(prefix)
        self._start_relay(endpoint, hand_off_url, hand_off_arn)
        for sender in self.destinations.values():
            sender.start()
        self.info = LocalEventsInfo(
            events_endpoint_url=endpoint,
            event_bus_name=bus,
            hand_off_url=hand_off_url,
            hand_off_dead_letter_url=hand_off_dead_letter_url,
            destination_dead_letter_urls=dead_letter_urls,
            destination_delivery_urls=delivery_urls,
            receiver_url=self.receiver.url if self.receiver else None,
        )
        return {
            "EVENT_BUS_NAME": bus,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": endpoint,
            "EVENTS_HAND_OFF_QUEUE_URL": hand_off_url,
        }

    def _start_moto(self) -> str:
        """Start moto's server on an ephemeral port; its endpoint URL."""
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def _create_destinations(
        self, events: Any, sqs: Any, bus: str, prefix: str
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Each destination's rule, delivery queue, dead-letter queue and sender; (delivery, dead-letter) URLs."""
        base_url = self._deliver_to or self.receiver.url
        delivery_urls, dead_letter_urls = {}, {}
        for destination in self.settings.event_destinations:
            name = f"{prefix}-{destination.name}"
            delivery_urls[destination.name] = sqs.create_queue(
                QueueName=f"{name}-delivery", Attributes={"VisibilityTimeout": str(DELIVERY_VISIBILITY_SECONDS)}
            )["QueueUrl"]
            dead_letter_urls[destination.name] = sqs.create_queue(QueueName=f"{name}-dead-letters")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=delivery_urls[destination.name], AttributeNames=["QueueArn"])
            events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(destination.event_pattern))
            events.put_targets(
                Rule=name, EventBusName=bus, Targets=[{"Id": "delivery", "Arn": arn["Attributes"]["QueueArn"]}]
            )
            self.destinations[destination.name] = LocalApiDestination(
                sqs,
                destination,
                delivery_urls[destination.name],
                dead_letter_urls[destination.name],
                f"{base_url.rstrip('/')}/{destination.name}",
                self._echo,
            )
        return delivery_urls, dead_letter_urls

    def _create_hand_off_queue(self, prefix: str) -> tuple[str, str, str]:
        """The hand-off queue and its dead-letter queue, on the leads' SQS; (URL, ARN, dead-letter URL)."""
        hand_off_dead_letters = self._leads_sqs.create_queue(QueueName=f"{prefix}-events-hand-off-dead-letters")
        dead_arn = self._leads_sqs.get_queue_attributes(
            QueueUrl=hand_off_dead_letters["QueueUrl"], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        redrive = {
            "deadLetterTargetArn": dead_arn,
            "maxReceiveCount": str(self.settings.events_hand_off_max_receive_count),
        }
        hand_off_url = self._leads_sqs.create_queue(
            QueueName=f"{prefix}-events-hand-off",
            Attributes={
                "VisibilityTimeout": str(VISIBILITY_TIMEOUT_FACTOR * RELAY_TIMEOUT_SECONDS),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        hand_off_arn = self._leads_sqs.get_queue_attributes(QueueUrl=hand_off_url, AttributeNames=["QueueArn"])
        return hand_off_url, hand_off_arn["Attributes"]["QueueArn"], hand_off_dead_letters["QueueUrl"]

    def _start_relay(self, endpoint: str, hand_off_url: str, hand_off_arn: str) -> None:
        # The relay runs as a function of its own, as in AWS: its own process, its own log.
        self._relay_function = LambdaPool(
            "functions.worker.event_relay_handler.lambda_handler",
            "leadpipe-event-relay",
            1,
            {**self._aws_env, "AWS_ENDPOINT_URL_EVENTBRIDGE": endpoint},
            self._logs / "event-relay.log",
        )
        self._relay = SqsEventSourcePoller(
            self._leads_sqs,
            EventSourceSettings(
                queue_url=hand_off_url,
                queue_arn=hand_off_arn,
                region=LOCAL_REGION,
                batch_size=RELAY_BATCH_SIZE,
                max_batching_window_seconds=0,
                max_concurrency=1,
            ),
            lambda event: self._relay_function.invoke(event, timeout=RELAY_TIMEOUT_SECONDS),
        )
        self._relay.start()

    def wait_until_delivered(self, seconds: float) -> None:
        """Let the senders empty their delivery queues (moto keeps nothing after a stop), for up to `seconds`."""
        deadline = time.monotonic() + seconds
        sqs = local_client("sqs", self.info.events_endpoint_url) if self.info else None
        while sqs is not None and time.monotonic() < deadline:
            names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            waiting = sum(
                int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"][name])
                for url in self.info.destination_delivery_urls.values()
                for name in names
            )
            if waiting == 0:
                return
            time.sleep(0.2)

    def stop(self) -> None:
        pollers = [*self.destinations.values(), *([self._relay] if self._relay is not None else [])]
        for poller in pollers:  # all asked first: their long polls end together, not one after another
            poller.stop_soon()
        for poller in pollers:
            poller.stop()
        if self._relay_function is not None:
            self._relay_function.close()
        if self._server is not None:
            self._server.stop()
        if self.receiver is not None:
            self.receiver.stop()
