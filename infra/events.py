"""The events lane: the LeadStored bus, the hand-off queue and its relay, and one API destination per endpoint."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.contract.observability import STAGE_VARIABLE
from functions.worker.event_relay_handler import EVENT_RELAY_SERVICE, RELAY_BATCH_SIZE, RELAY_TIMEOUT_SECONDS
from functions.worker.lead_events import EVENT_SOURCE
from infra.config import VISIBILITY_TIMEOUT_FACTOR, PipelineSettings
from infra.destinations import ApiKeyAuth, EventDestination, OAuthClientCredentialsAuth
from infra.function import PipelineFunction, PipelineFunctionProps
from infra.monitoring import PipelineMonitoring
from infra.nag import acknowledge
from infra.worker import LeadWorker

# EventBridge requires an authorization on every connection; an endpoint whose URL is its credential
# (Slack) gets this harmless header.
NO_AUTH_HEADER = "X-Leadpipe-Auth"
HAND_OFF_AGE_ALARM_SECONDS = 900
# A backlog after an EventBridge outage must not scale the relay into the unreserved concurrency the ingest
# runs on (nor into the bus's PutEvents quota the worker needs): a few batches at a time drain it.
RELAY_MAX_CONCURRENCY = 2


class DestinationLane(Construct):
    """One endpoint: its connection (credentials from Secrets Manager), its API destination at
    `invocation_rate_per_second`, the rule on the bus, and the DLQ for events that keep failing.

    Public attributes: `connection`, `api_destination`, `rule`, `dead_letter_queue`.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, destination: EventDestination, bus: events.IEventBus
    ) -> None:
        super().__init__(scope, construct_id)
        self.connection = events.Connection(
            self,
            "Connection",
            authorization=_authorization(destination),
            description=f"Leadpipe {destination.name}: credentials from Secrets Manager",
        )
        endpoint = (
            str(destination.url)
            if destination.url is not None
            # A URL that is itself a credential (a Slack webhook) is resolved at deploy time, never in the template.
            else cdk.SecretValue.secrets_manager(destination.url_secret_arn).unsafe_unwrap()
        )
        self.api_destination = events.ApiDestination(
            self,
            "ApiDestination",
            connection=self.connection,
            endpoint=endpoint,
            http_method=events.HttpMethod.POST,
            rate_limit_per_second=destination.invocation_rate_per_second,
            description=f"Leadpipe {destination.name}: LeadStored events, at most "
            f"{destination.invocation_rate_per_second}/s",
        )
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(
            self.dead_letter_queue,
            ("AwsSolutions-SQS3", "It is a dead-letter queue: the rule target's DeadLetterConfig, not an SQS redrive."),
        )
        template = destination.template
        target = events_targets.ApiDestination(
            self.api_destination,
            event=events.RuleTargetInput.from_event_path(template.input_path) if template.input_path else None,
            dead_letter_queue=self.dead_letter_queue,
            max_event_age=cdk.Duration.seconds(destination.max_event_age_seconds),
            retry_attempts=destination.retry_attempts,
            header_parameters={"Content-Type": "application/json"},
        )
        self.rule = events.Rule(
            self,
            "Rule",
            event_bus=bus,
            event_pattern=events.EventPattern(source=[EVENT_SOURCE]),
            targets=[target],
            description=f"Leadpipe: stored leads to {destination.name}",
        )
        # With $or, which CDK's EventPattern cannot express: the pattern exactly as the settings model builds it.
        self.rule.node.default_child.add_property_override("EventPattern", destination.event_pattern)
        if template.input_template is not None:
            # The input transformer exactly as the settings say it (the local stand-in renders the same text).
            rule = self.rule.node.default_child
            rule.add_property_override(
                "Targets.0.InputTransformer",
                {"InputPathsMap": template.input_paths, "InputTemplate": template.input_template},
            )


class LeadEvents(Construct):
    """The LeadStored bus the worker publishes on after each commit; the hand-off queue for what
    EventBridge did not take and the relay that puts it on the bus later; one DestinationLane per
    `event_destinations` entry; their alarms on the pipeline's topic.

    Public attributes: `bus`, `hand_off_queue`, `hand_off_dead_letter_queue`, `relay` (a
    PipelineFunction), `destinations` (name -> DestinationLane).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: PipelineSettings,
        worker: LeadWorker,
        monitoring: PipelineMonitoring,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(
            self, "Bus", description=f"Leadpipe {settings.stage}: one LeadStored per stored lead"
        )
        self.hand_off_dead_letter_queue = sqs.Queue(
            self,
            "HandOffDeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.hand_off_queue = sqs.Queue(
            self,
            "HandOff",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
            visibility_timeout=cdk.Duration.seconds(VISIBILITY_TIMEOUT_FACTOR * RELAY_TIMEOUT_SECONDS),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=settings.events_hand_off_max_receive_count, queue=self.hand_off_dead_letter_queue
            ),
        )
        self.relay = PipelineFunction(
            self,
            "Relay",
            props=PipelineFunctionProps(
                code_folder="worker",
                handler="functions.worker.event_relay_handler.lambda_handler",
                service_name=EVENT_RELAY_SERVICE,
                description="Puts LeadStored events EventBridge did not take after the commit on the bus",
                memory_mb=256,
                timeout=cdk.Duration.seconds(RELAY_TIMEOUT_SECONDS),
                log_retention_days=settings.log_retention_days,
                environment={STAGE_VARIABLE: settings.stage},  # the stage's own metrics, as the worker's
            ),
        )
        self.relay.function.add_event_source(
            event_sources.SqsEventSource(
                self.hand_off_queue,
                batch_size=RELAY_BATCH_SIZE,
                report_batch_item_failures=True,
                max_concurrency=RELAY_MAX_CONCURRENCY,
            )
        )
        self.bus.grant_put_events_to(self.relay.role)

        worker_function = worker.function.function
        worker_function.add_environment("EVENT_BUS_NAME", self.bus.event_bus_name)
        worker_function.add_environment("EVENTS_HAND_OFF_QUEUE_URL", self.hand_off_queue.queue_url)
        self.bus.grant_put_events_to(worker.function.role)
        self.hand_off_queue.grant_send_messages(worker.function.role)
        self.destinations = {
            d.name: DestinationLane(self, f"Destination-{d.name}", destination=d, bus=self.bus)
            for d in settings.event_destinations
        }
        self._alarms(monitoring, settings.stage)
        cdk.CfnOutput(scope, "EventBusName", value=self.bus.event_bus_name)
        cdk.CfnOutput(scope, "EventsHandOffQueueUrl", value=self.hand_off_queue.queue_url)
        cdk.CfnOutput(scope, "EventsHandOffDeadLetterQueueUrl", value=self.hand_off_dead_letter_queue.queue_url)
        # `leadpipe dlq --destination NAME` finds each destination's DLQ here.
        cdk.CfnOutput(
            scope,
            "EventDestinationDeadLetterQueueUrls",
            value=cdk.Stack.of(self).to_json_string(
                {name: lane.dead_letter_queue.queue_url for name, lane in self.destinations.items()}
            ),
        )

    def _alarms(self, monitoring: PipelineMonitoring, stage: str) -> None:
        one_minute = cdk.Duration.minutes(1)
        monitoring.add_alarm(
            "EventsHandOffDeadLetters",
            self.hand_off_dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=one_minute, statistic="Maximum"
            ),
            1,
            "LeadStored events EventBridge refused for every relay attempt are parked (the leads are stored). "
            "Check EventBridge, then `leadpipe dlq redrive --hand-off`.",
        )
        monitoring.add_alarm(
            "EventsHandOffAge",
            self.hand_off_queue.metric_approximate_age_of_oldest_message(period=one_minute, statistic="Maximum"),
            HAND_OFF_AGE_ALARM_SECONDS,
            "EventBridge has not taken LeadStored events for this long (seconds): the relay retries them; "
            "destinations lag. Check EventBridge's health and the relay's log.",
            evaluation_periods=3,
        )
        monitoring.add_alarm(
            "EventsNotHandedOff",
            monitoring.worker_metric("EventsNotHandedOff", stage),
            1,
            "Neither EventBridge nor the hand-off queue took stored leads' events: their records come back "
            "to publish again (the rows are stored). Check the worker's route to EventBridge and SQS.",
        )
        for name, lane in self.destinations.items():
            monitoring.add_alarm(
                f"Destination-{name}-DeadLetters",
                lane.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=one_minute, statistic="Maximum"
                ),
                1,
                f"Events for {name} failed every delivery attempt (or outlived max_event_age_hours): "
                f"`leadpipe dlq list --destination {name}`, fix the endpoint, then redrive.",
            )


def _authorization(destination: EventDestination) -> events.Authorization:
    auth = destination.auth
    if isinstance(auth, ApiKeyAuth):
        value = cdk.SecretValue.secrets_manager(auth.secret_arn, json_field=auth.secret_json_field)
        return events.Authorization.api_key(auth.header, value)
    if isinstance(auth, OAuthClientCredentialsAuth):
        secret = auth.secret_arn
        return events.Authorization.oauth(
            authorization_endpoint=str(auth.token_url),
            client_id=cdk.SecretValue.secrets_manager(secret, json_field="client_id").unsafe_unwrap(),
            client_secret=cdk.SecretValue.secrets_manager(secret, json_field="client_secret"),
            http_method=events.HttpMethod.POST,
            body_parameters={
                "grant_type": events.HttpParameter.from_string("client_credentials"),
                **({"scope": events.HttpParameter.from_string(auth.scope)} if auth.scope else {}),
            },
        )
    return events.Authorization.api_key(NO_AUTH_HEADER, cdk.SecretValue.unsafe_plain_text("none"))
