"""`leadpipe verify`: a deployed stack proven end to end, against moto as far as moto goes.

moto serves the stack's outputs (CloudFormation), the queues (SQS), the worker's event source mapping (Lambda), the
probe's metrics and the alarms' states (CloudWatch GetMetricData, PutMetricAlarm, SetAlarmState, DescribeAlarms).
Where moto stops, the answer comes from tests/leadpipe/aws_not_in_moto.py, shaped as the cited API reference says:
- DescribeAlarmHistory is not implemented in moto, and moto's SetAlarmState runs no action at all. The stand-in
  answers what CloudWatch documents: an Action item per action of the state the alarm is in now, "Successfully
  executed action <topic>" or "Failed to execute action <topic>. Received error: ..."
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarmHistory.html,
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_AlarmHistoryItem.html,
  https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger).
- Invoke of the canary check: moto would run the function in Docker, outside any VPC and with no route to the
  test's database. The stand-in runs the function's own code in process against the real PostgreSQL
  (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html for the answer's shape).
- moto's CloudFormation cannot hold AWS::CloudWatch::Alarm, so ListStackResources lists the alarms created here
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListStackResources.html).
- The API Gateway endpoint: the stand-in hands the request, as a proxy event, to the real ingest handler (which
  puts the lead on moto's queue), and drains that queue with the real worker handler into the test's PostgreSQL,
  as the event source mapping would (or, for the failure case, never does).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from functions.contract import parse_envelope
from functions.ingest import handler as ingest
from functions.worker import handler as worker
from functions.worker.canary import CanaryRequest, confirm_and_erase
from functions.worker.repository import ConnectionProvider, LeadRepository, SessionTimeouts, connect
from leadpipe.verify import (
    ALARM_RESTORE_REASON,
    ALARM_TEST_REASON,
    CANARY_CAMPAIGN,
    Patience,
    StackClients,
    verify_stack,
)
from tests.conftest import FakeLambdaContext, LeadsDatabase
from tests.events import api_event, sqs_event
from tests.leadpipe.aws_not_in_moto import answer
from tests.moto_mock import mock_aws

STACK = "Leadpipe-prod"
ENDPOINT = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/leads"
PROBE = "Leadpipe-prod-DrainBreakerProbe"
CANARY_FUNCTION = "Leadpipe-prod-CanaryCheck"
TIMEOUTS = SessionTimeouts(statement_timeout_seconds=5, lock_timeout_seconds=5, idle_in_transaction_timeout_seconds=30)


@dataclass
class FakeClock:
    """Verify's waits, without waiting: each sleep moves the clock on."""

    start: datetime = field(default_factory=lambda: datetime.now(UTC))
    slept: float = 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.slept)

    def sleep(self, seconds: float) -> None:
        self.slept += seconds


@dataclass
class DeployedStack:
    clients: StackClients
    outputs: dict[str, str]
    topic: str
    alarms: dict[str, str]  # name -> state before verify
    refusing_topic_alarms: set[str] = field(default_factory=set)
    posted: list[dict[str, Any]] = field(default_factory=list)  # the JSON bodies verify sent
    queued: list[str] = field(default_factory=list)  # what the ingest put on the leads queue


def pipeline_that_stores(leads_db: LeadsDatabase, stack: DeployedStack, stores: bool = True) -> Any:
    """The API Gateway endpoint's stand-in: the real ingest handler behind it, and (if `stores`) the real worker
    handler draining the leads queue into the test's PostgreSQL, as the event source mapping would."""
    context = FakeLambdaContext()

    def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        assert url == ENDPOINT
        stack.posted.append(json.loads(body))
        response = ingest.lambda_handler(api_event(body.decode(), content_type=None, headers=headers), context)
        sqs, queue_url = stack.clients.sqs, stack.outputs["QueueUrl"]
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        stack.queued.extend(m["Body"] for m in messages)
        if stores and messages:
            assert worker.lambda_handler(sqs_event([m["Body"] for m in messages]), context) == {"batchItemFailures": []}
        return response["statusCode"], response["body"].encode()

    return post


@pytest.fixture
def deployed(leads_db: LeadsDatabase, monkeypatch: pytest.MonkeyPatch) -> Iterator[DeployedStack]:
    with mock_aws():
        clients = StackClients(
            cloudformation=boto3.client("cloudformation"),
            cloudwatch=boto3.client("cloudwatch"),
            lambda_=boto3.client("lambda"),
            sqs=boto3.client("sqs"),
            sns=boto3.client("sns"),
        )
        sqs = clients.sqs
        leads_url = sqs.create_queue(QueueName="leadpipe-prod-leads")["QueueUrl"]
        dead_letter_url = sqs.create_queue(QueueName="leadpipe-prod-dlq")["QueueUrl"]
        leads_arn = sqs.get_queue_attributes(QueueUrl=leads_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        role = boto3.client("iam").create_role(RoleName="worker", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        clients.lambda_.create_function(
            FunctionName="Leadpipe-prod-Worker", Runtime="python3.13", Role=role, Handler="h.h", Code={"ZipFile": b"PK"}
        )
        mapping = clients.lambda_.create_event_source_mapping(
            EventSourceArn=leads_arn, FunctionName="Leadpipe-prod-Worker", Enabled=True
        )["UUID"]
        topic = clients.sns.create_topic(Name="leadpipe-prod-alarms")["TopicArn"]
        # On-call's confirmed subscription (moto lists an e-mail subscription as confirmed at once)
        clients.sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
        outputs = {
            "LeadsEndpoint": ENDPOINT, "QueueUrl": leads_url, "DeadLetterQueueUrl": dead_letter_url,
            "WorkerEventSourceMappingId": mapping, "DrainProbeFunctionName": PROBE,
            "CanaryCheckFunctionName": CANARY_FUNCTION, "AlarmTopicArn": topic,
        }  # fmt: skip
        template = {
            "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
        clients.cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(template))
        # The probe ran a minute ago, without an error (AWS/Lambda metrics, as Lambda reports them).
        probe_ran(clients.cloudwatch, errors=0)
        stack = DeployedStack(clients=clients, outputs=outputs, topic=topic, alarms={})
        for name, state in (("QueueAge", "OK"), ("DeadLetters", "ALARM"), ("DatabaseUnavailable", "INSUFFICIENT_DATA")):
            alarm_name = f"{STACK}-Monitoring{name}-ABC123"
            clients.cloudwatch.put_metric_alarm(
                AlarmName=alarm_name, MetricName=name, Namespace="Leadpipe", Statistic="Maximum", Period=60,
                EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                AlarmActions=[topic], OKActions=[topic],
            )  # fmt: skip
            clients.cloudwatch.set_alarm_state(AlarmName=alarm_name, StateValue=state, StateReason="as found")
            stack.alarms[alarm_name] = state
        answer_as_aws(stack, leads_db)
        # The functions' environment, as the stack gives it: the ingest's queue, the worker's table.
        for name, value in {"LEADS_QUEUE_URL": leads_url, "ALLOWED_ORIGINS": "https://www.example.com",
                            "DATABASE_URL": leads_db.uri, "LEADS_TABLE": leads_db.leads_table}.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        yield stack


def probe_ran(cloudwatch: Any, errors: int) -> None:
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {"MetricName": metric, "Dimensions": [{"Name": "FunctionName", "Value": PROBE}], "Value": value,
             "Timestamp": minute}
            for metric, value in (("Invocations", 1), ("Errors", errors))
        ],
    )  # fmt: skip


def answer_as_aws(stack: DeployedStack, leads_db: LeadsDatabase) -> None:
    """Where moto stops (see the module docstring)."""
    cloudwatch, lambda_client = stack.clients.cloudwatch, stack.clients.lambda_
    answer(stack.clients.cloudformation, "ListStackResources", {"StackResourceSummaries": [
        {"LogicalResourceId": name.split("-")[2], "PhysicalResourceId": name, "ResourceType": "AWS::CloudWatch::Alarm",
         "LastUpdatedTimestamp": datetime.now(UTC), "ResourceStatus": "CREATE_COMPLETE"}
        for name in stack.alarms
    ]})  # fmt: skip

    def history(params: dict[str, Any]) -> dict[str, Any]:
        assert params["HistoryItemType"] == "Action"  # the items that say whether the SNS action ran
        [alarm] = cloudwatch.describe_alarms(AlarmNames=[params["AlarmName"]])["MetricAlarms"]
        if alarm["StateReason"] != ALARM_TEST_REASON:
            return {"AlarmHistoryItems": []}  # not changed by verify (yet): nothing ran
        actions = alarm["AlarmActions"] if alarm["StateValue"] == "ALARM" else alarm["OKActions"]
        refused = alarm["AlarmName"] in stack.refusing_topic_alarms
        items = []
        for topic in actions:
            summary = (
                f'Failed to execute action {topic}. Received error: "Resource: {alarm["AlarmArn"]} is not authorized '
                f'to perform: SNS:Publish on resource: {topic}"'
                if refused
                else f"Successfully executed action {topic}"
            )
            data = {"actionState": "Failed" if refused else "Succeeded", "notificationResource": topic}
            items.append({
                "AlarmName": alarm["AlarmName"], "AlarmType": "MetricAlarm", "Timestamp": datetime.now(UTC),
                "HistoryItemType": "Action", "HistorySummary": summary, "HistoryData": json.dumps(data),
            })  # fmt: skip
        return {"AlarmHistoryItems": items}

    answer(cloudwatch, "DescribeAlarmHistory", history)

    def invoke(params: dict[str, Any]) -> dict[str, Any]:
        assert (params["FunctionName"], params["InvocationType"]) == (CANARY_FUNCTION, "RequestResponse")
        try:
            request = CanaryRequest.model_validate_json(params["Payload"])
        except ValueError as error:
            return streamed({"errorType": "ValidationError", "errorMessage": str(error)}, function_error="Unhandled")
        with connect(leads_db.uri, prepare_statements=False) as connection:
            outcome = confirm_and_erase(connection, leads_db.leads_table, request, TIMEOUTS)
        return streamed(outcome.as_dict())

    answer(lambda_client, "Invoke", invoke)


def streamed(payload: dict[str, Any], function_error: str | None = None) -> dict[str, Any]:
    data = json.dumps(payload).encode()
    response: dict[str, Any] = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(data), len(data))}
    if function_error:
        response["FunctionError"] = function_error
    return response


def alarm_states(cloudwatch: Any) -> dict[str, str]:
    return {a["AlarmName"]: a["StateValue"] for a in cloudwatch.describe_alarms()["MetricAlarms"]}


def test_a_working_stack_passes_every_check_and_leaves_no_trace(
    deployed: DeployedStack, leads_db: LeadsDatabase
) -> None:
    # Given a deployed stack whose pipeline stores what its API accepts
    clock = FakeClock()
    # When the operator verifies it
    checks = verify_stack(
        STACK, deployed.clients, pipeline_that_stores(leads_db, deployed), Patience(sleep=clock.sleep, now=clock.now)
    )
    # Then every check passes, one line each, one per alarm
    assert [(c.name, c.ok) for c in checks] == [
        ("dead letters", True), ("event source", True), ("drain probe", True), ("canary lead", True),
        (f"alarm {STACK}-MonitoringDatabaseUnavailable-ABC123", True),
        (f"alarm {STACK}-MonitoringDeadLetters-ABC123", True), (f"alarm {STACK}-MonitoringQueueAge-ABC123", True),
    ], [c.line() for c in checks]  # fmt: skip
    # And the canary went through the real endpoint under a reserved address, and its row is gone
    [posted] = deployed.posted
    assert posted["email"].endswith("@leadpipe-canary.example") and posted["campaign"] == CANARY_CAMPAIGN
    assert leads_db.count_rows() == 0
    # And the alarm already in ALARM was tested with its OK action; every alarm is back where it was
    details = {c.name.removeprefix("alarm "): c.detail for c in checks if c.name.startswith("alarm ")}
    assert details[f"{STACK}-MonitoringDeadLetters-ABC123"] == "OK notified leadpipe-prod-alarms; back to ALARM"
    assert details[f"{STACK}-MonitoringQueueAge-ABC123"] == "ALARM notified leadpipe-prod-alarms; back to OK"
    assert alarm_states(deployed.clients.cloudwatch) == deployed.alarms


def test_an_alarm_whose_topic_refuses_cloudwatch_fails_in_awss_words(
    deployed: DeployedStack, leads_db: LeadsDatabase
) -> None:
    # Given one alarm whose topic policy does not let CloudWatch publish
    refused = f"{STACK}-MonitoringQueueAge-ABC123"
    deployed.refusing_topic_alarms.add(refused)
    clock = FakeClock()
    # When verified
    checks = verify_stack(
        STACK, deployed.clients, pipeline_that_stores(leads_db, deployed), Patience(sleep=clock.sleep, now=clock.now)
    )
    # Then that alarm fails with CloudWatch's own words and the fix; the others pass; all are back to their state
    [failed] = [c for c in checks if not c.ok]
    assert failed.name == f"alarm {refused}"
    assert failed.detail.startswith(f"Failed to execute action {deployed.topic}. Received error:")
    assert failed.detail.endswith(
        f"SNS:Publish on resource: {deployed.topic}\" -- the topic's policy must let cloudwatch.amazonaws.com publish"
    )
    assert alarm_states(deployed.clients.cloudwatch) == deployed.alarms


def test_the_canary_is_sent_again_after_a_retry_answer_with_the_same_key(
    deployed: DeployedStack, leads_db: LeadsDatabase
) -> None:
    # Given an API that first answers 503 (SQS refused the lead: the ingest says retry) and then takes it
    through = pipeline_that_stores(leads_db, deployed)
    keys: list[str] = []

    def busy_once(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        keys.append(headers["Idempotency-Key"])
        if len(keys) == 1:
            return 503, json.dumps({"error": {"code": "queue_unavailable", "message": "retry", "fields": []}}).encode()
        return through(url, body, headers)

    clock = FakeClock()
    # When verified  Then the canary passes on the second try, sent with the same Idempotency-Key (one lead)
    checks = verify_stack(STACK, deployed.clients, busy_once, Patience(sleep=clock.sleep, now=clock.now))
    [canary] = [c for c in checks if c.name == "canary lead"]
    assert canary.ok, canary.detail
    assert len(keys) == 2 and keys[0] == keys[1]


def test_a_canary_never_stored_fails_and_can_never_be_stored_later(
    deployed: DeployedStack, leads_db: LeadsDatabase
) -> None:
    # Given an API that answers 202 but a pipeline that does not store (the worker's path is broken)
    clock = FakeClock()
    patience = Patience(canary_seconds=60, poll_seconds=5, sleep=clock.sleep, now=clock.now)
    # When verified
    checks = verify_stack(STACK, deployed.clients, pipeline_that_stores(leads_db, deployed, stores=False), patience)
    # Then the canary check fails after the patience it was given, saying where to look
    [canary] = [c for c in checks if c.name == "canary lead"]
    assert not canary.ok and clock.slept == 60
    assert "was not stored within 60 s (a tombstone keeps it from being stored later)" in canary.detail
    # And when the canary finally reaches the worker, it is skipped: no canary row is ever left behind
    [body] = deployed.queued
    late = parse_envelope(body)
    repository = LeadRepository(ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table)
    assert repository.store_batch([late]).inserted == 0
    assert leads_db.count_rows() == 0


def test_a_paused_drain_dead_letters_and_a_failing_probe_each_say_what_to_do(
    deployed: DeployedStack, leads_db: LeadsDatabase
) -> None:
    # Given letters in the DLQ, the event source mapping disabled, and the probe failing in its last run
    clients = deployed.clients
    clients.sqs.send_message(QueueUrl=deployed.outputs["DeadLetterQueueUrl"], MessageBody="{}")
    clients.lambda_.update_event_source_mapping(UUID=deployed.outputs["WorkerEventSourceMappingId"], Enabled=False)
    probe_ran(clients.cloudwatch, errors=1)
    clock = FakeClock()
    # When verified
    checks = {
        c.name: c
        for c in verify_stack(
            STACK, clients, pipeline_that_stores(leads_db, deployed), Patience(sleep=clock.sleep, now=clock.now)
        )
    }
    # Then each names the command that tells more
    assert (
        checks["dead letters"].line()
        == f"FAIL  dead letters: 1 message(s) in the DLQ: `leadpipe dlq list --stack {STACK}`"
    )
    assert not checks["event source"].ok
    assert checks["event source"].detail.startswith(
        f"the worker's event source mapping is Disabled: `leadpipe drain status --stack {STACK}`"
    )
    assert not checks["drain probe"].ok and checks["drain probe"].detail.endswith(f"failed: read {PROBE}'s log")


def test_a_captcha_stage_takes_the_canary_with_the_ingests_own_pass_ticket(
    deployed: DeployedStack, leads_db: LeadsDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stage whose ingest checks a Turnstile token, with a verifier that cannot be reached
    secret = "0x4AAAAAAAverify-test-secret"
    arn = boto3.client("secretsmanager").create_secret(Name="leadpipe/turnstile", SecretString=secret)["ARN"]
    monkeypatch.setenv("CAPTCHA_PROVIDER", "turnstile")
    monkeypatch.setenv("CAPTCHA_SECRET_ARN", arn)
    monkeypatch.setenv("CAPTCHA_VERIFY_URL", "http://127.0.0.1:9/")
    clock = FakeClock()
    post = pipeline_that_stores(leads_db, deployed)
    # When verify runs without the captcha secret  Then the canary is refused, and the line says what to do
    checks = verify_stack(STACK, deployed.clients, post, Patience(sleep=clock.sleep, now=clock.now))
    [canary] = [c for c in checks if c.name == "canary lead"]
    assert not canary.ok
    assert canary.detail.startswith(f"POST {ENDPOINT} answered 400 captcha_missing: ")
    assert canary.detail.endswith(
        "(the stage checks a captcha: run verify with --stage, and credentials that may read its secret)"
    )
    # When it runs with the secret  Then the canary carries the pass ticket the ingest issues after a passed check
    # (no verifier call at all), is stored by the worker and erased
    checks = verify_stack(STACK, deployed.clients, post, Patience(sleep=clock.sleep, now=clock.now), lambda: secret)
    [canary] = [c for c in checks if c.name == "canary lead"]
    assert canary.ok, canary.detail
    assert leads_db.count_rows() == 0 and len(deployed.queued) == 1


def test_one_alarm_that_cannot_be_put_back_does_not_leave_the_others_out_of_place(
    deployed: DeployedStack, leads_db: LeadsDatabase
) -> None:
    # Given a CloudWatch that throttles the restore of one alarm (SetAlarmState answers Throttling, as any API may:
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CommonErrors.html). A composite alarm left
    # in ALARM stays there until a child changes state, so its next real alarm pages nobody
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html)
    stuck = f"{STACK}-MonitoringDatabaseUnavailable-ABC123"

    def throttle_restore(params: dict[str, Any], **_: Any) -> None:
        if params["AlarmName"] == stuck and params["StateReason"] == ALARM_RESTORE_REASON:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "SetAlarmState")

    deployed.clients.cloudwatch.meta.events.register(
        "before-parameter-build.cloudwatch.SetAlarmState", throttle_restore
    )
    clock = FakeClock()
    # When verified
    checks = verify_stack(
        STACK, deployed.clients, pipeline_that_stores(leads_db, deployed), Patience(sleep=clock.sleep, now=clock.now)
    )
    # Then every other alarm is back where it was
    states = alarm_states(deployed.clients.cloudwatch)
    assert {name: states[name] for name in states if name != stuck} == {
        name: state for name, state in deployed.alarms.items() if name != stuck
    }
    # And the one left out of place fails with the command that puts it back
    [failed] = [c for c in checks if not c.ok]
    assert failed.name == f"alarm {stuck}"
    assert failed.detail == (
        "left in ALARM (AWS said Throttling: Rate exceeded): put it back with `aws cloudwatch set-alarm-state "
        f"--alarm-name {stuck} --state-value INSUFFICIENT_DATA --state-reason 'leadpipe verify: restore'`"
    )


def test_an_alarm_whose_topic_nobody_has_confirmed_fails_though_sns_took_the_message(
    deployed: DeployedStack, leads_db: LeadsDatabase
) -> None:
    # Given the alarm topic's only subscription still waiting for its e-mail confirmation: SNS lists it with the
    # SubscriptionArn "PendingConfirmation" and delivers it nothing, while CloudWatch's history still reads
    # "Successfully executed action" (SNS took the message)
    # (https://docs.aws.amazon.com/sns/latest/api/API_ListSubscriptionsByTopic.html,
    # https://docs.aws.amazon.com/sns/latest/dg/sns-create-subscribe-endpoint-to-topic.html)
    answer(deployed.clients.sns, "ListSubscriptionsByTopic", {"Subscriptions": [
        {"SubscriptionArn": "PendingConfirmation", "Owner": "123456789012", "Protocol": "email",
         "Endpoint": "oncall@example.com", "TopicArn": deployed.topic},
    ]})  # fmt: skip
    clock = FakeClock()
    # When verified
    checks = verify_stack(
        STACK, deployed.clients, pipeline_that_stores(leads_db, deployed), Patience(sleep=clock.sleep, now=clock.now)
    )
    # Then every alarm fails: on-call hears none of them; each is back where it was
    alarm_checks = [c for c in checks if c.name.startswith("alarm ")]
    assert len(alarm_checks) == 3 and not any(c.ok for c in alarm_checks)
    assert alarm_checks[0].detail.endswith(
        "but nobody has confirmed a subscription to leadpipe-prod-alarms: on-call hears nothing "
        "(confirm AWS's e-mail, or subscribe a pager)"
    )
    assert alarm_states(deployed.clients.cloudwatch) == deployed.alarms


def test_a_canary_queued_behind_a_gateway_timeout_can_never_be_stored_later(
    deployed: DeployedStack, leads_db: LeadsDatabase
) -> None:
    # Given an API whose ingest queues the canary but whose answer never arrives in time: API Gateway answers 504
    # after its integration timeout while the function goes on and queues the lead
    # (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html)
    through = pipeline_that_stores(leads_db, deployed, stores=False)

    def timed_out(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        through(url, body, headers)
        return 504, b'{"message": "Endpoint request timed out"}'

    clock = FakeClock()
    # When verified
    checks = verify_stack(STACK, deployed.clients, timed_out, Patience(sleep=clock.sleep, now=clock.now))
    # Then the canary fails
    [canary] = [c for c in checks if c.name == "canary lead"]
    assert not canary.ok
    # And when the queued canary finally reaches the worker, it is skipped: no canary row is left behind
    late = parse_envelope(deployed.queued[0])
    repository = LeadRepository(ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table)
    assert repository.store_batch([late]).inserted == 0
    assert leads_db.count_rows() == 0


def test_a_verify_interrupted_while_it_waits_for_the_canary_leaves_it_unstorable(
    deployed: DeployedStack, leads_db: LeadsDatabase
) -> None:
    # Given a canary the API took (202) but the worker has not stored yet, and an operator who presses Ctrl-C while
    # verify asks the canary check whether it is stored
    def interrupt_the_wait(params: dict[str, Any], **_: Any) -> None:
        if not json.loads(params["Payload"]).get("give_up"):
            raise KeyboardInterrupt

    deployed.clients.lambda_.meta.events.register("before-parameter-build.lambda.Invoke", interrupt_the_wait)
    clock = FakeClock()
    post = pipeline_that_stores(leads_db, deployed, stores=False)
    # When verified  Then the interrupt goes through
    with pytest.raises(KeyboardInterrupt):
        verify_stack(STACK, deployed.clients, post, Patience(sleep=clock.sleep, now=clock.now))
    # And when the canary finally reaches the worker, it is skipped: no canary row is left behind
    [body] = deployed.queued
    repository = LeadRepository(ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table)
    assert repository.store_batch([parse_envelope(body)]).inserted == 0
    assert leads_db.count_rows() == 0


def test_alarms_described_over_several_pages_are_all_tested(deployed: DeployedStack, leads_db: LeadsDatabase) -> None:
    # Given a CloudWatch that answers DescribeAlarms one alarm per page, with a NextToken for the rest, as the API may
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html)
    moto = boto3.client("cloudwatch")  # the same moto account, without the paging stand-in

    def paged(params: dict[str, Any]) -> dict[str, Any]:
        found = moto.describe_alarms(**{k: v for k, v in params.items() if k != "NextToken"})
        found.pop("ResponseMetadata")
        if "AlarmTypes" not in params:  # the history stand-in's own look-up of one alarm
            return found
        if "NextToken" in params:
            return {"MetricAlarms": found["MetricAlarms"][1:], "CompositeAlarms": []}
        return {"MetricAlarms": found["MetricAlarms"][:1], "CompositeAlarms": [], "NextToken": "page-2"}

    calls = answer(deployed.clients.cloudwatch, "DescribeAlarms", paged)
    clock = FakeClock()
    # When verified
    checks = verify_stack(
        STACK, deployed.clients, pipeline_that_stores(leads_db, deployed), Patience(sleep=clock.sleep, now=clock.now)
    )
    # Then every alarm of the stack is tested, not only the first page's
    assert [c.ok for c in checks if c.name.startswith("alarm ")] == [True, True, True]
    assert len([c for c in calls if "AlarmTypes" in c]) == 2
