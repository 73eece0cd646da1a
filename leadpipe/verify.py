"""`leadpipe verify --stack S`: after a deploy, prove the stack works end to end.

A canary lead goes through the real API and is checked by a function inside the database's network, so the
operator needs no route to the database. Each alarm is set to ALARM and back, and its SNS action must show.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from botocore.exceptions import ClientError

from functions.contract import Lead
from functions.ingest.captcha import PASS_HEADER, CaptchaPass
from functions.ingest.logic import derive_lead_id
from functions.worker.canary import canary_address
from leadpipe.preflight import Check
from leadpipe.status import queue_depth
from leadpipe.targets import stack_outputs

CANARY_CAMPAIGN = "LEADPIPE_VERIFY"
CANARY_OUTPUT = "CanaryCheckFunctionName"  # infra/canary.py
ALARM_TEST_REASON = "leadpipe verify: testing that this alarm's notification reaches on-call; no action needed"
ALARM_RESTORE_REASON = "leadpipe verify: back to the state it had before the test"
# CloudWatch's words in an alarm's Action history item (its HistorySummary).
ACTION_SUCCEEDED = "Successfully executed action"
ACTION_FAILED = "Failed to execute action"
# The operator's clock and AWS's may differ a little: history items this much older than the test still count.
CLOCK_SKEW = timedelta(seconds=30)
PROBE_LOOKBACK = timedelta(minutes=10)
DESCRIBE_ALARMS_MAX_NAMES = 100
# The API's "retry" answers (its throttle, SQS refusing, a timeout): the canary is sent again with the same key.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
CANARY_POST_ATTEMPTS = 3

PostLead = Callable[[str, bytes, dict[str, str]], tuple[int, bytes]]
CaptchaSecret = Callable[[], str]


@dataclass(frozen=True)
class StackClients:
    """boto3 clients of the stack's account and Region."""

    cloudformation: Any
    cloudwatch: Any
    lambda_: Any
    sqs: Any
    sns: Any


@dataclass
class Patience:
    """How long verify waits for the canary and the alarm actions, and the clock it waits by."""

    canary_seconds: float = 180.0
    alarm_seconds: float = 90.0
    poll_seconds: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def verify_stack(
    stack_name: str,
    clients: StackClients,
    post_lead: PostLead,
    patience: Patience | None = None,
    captcha_secret: CaptchaSecret | None = None,
) -> list[Check]:
    """Every check, one `Check` each (one per alarm). An AWS error in one check fails that check only.

    `captcha_secret`: the stage's captcha secret, for a stage that checks one: the canary then carries the pass
    ticket the ingest itself issues after a passed check (signed with a key derived from that secret).
    """
    patience = patience or Patience()
    outputs = stack_outputs(clients.cloudformation, stack_name)
    checks: list[tuple[str, Callable[[], list[Check]]]] = [
        ("dead letters", lambda: [check_dead_letters(clients.sqs, outputs, stack_name)]),
        ("event source", lambda: [check_event_source(clients.lambda_, outputs, stack_name)]),
        ("drain probe", lambda: [check_probe_ran(clients.cloudwatch, outputs, patience.now())]),
        ("canary lead", lambda: [check_canary(clients.lambda_, outputs, post_lead, patience, captcha_secret)]),
        ("alarms", lambda: check_alarms(clients.cloudformation, clients.cloudwatch, clients.sns, stack_name, patience)),
    ]
    results: list[Check] = []
    for name, run in checks:
        try:
            results.extend(run())
        except ClientError as error:
            said = error.response["Error"]
            results.append(Check(name, False, f"AWS said {said.get('Code')}: {said.get('Message')}"))
        except (CanaryCheckFailed, OSError) as error:  # OSError: the endpoint could not be reached
            results.append(Check(name, False, str(error)))
    return results


def check_dead_letters(sqs: Any, outputs: dict[str, str], stack_name: str) -> Check:
    depth = queue_depth(sqs, outputs["DeadLetterQueueUrl"])
    if depth:
        return Check("dead letters", False, f"{depth} message(s) in the DLQ: `leadpipe dlq list --stack {stack_name}`")
    return Check("dead letters", True, "the DLQ is empty")


def check_event_source(lambda_client: Any, outputs: dict[str, str], stack_name: str) -> Check:
    mapping_id = outputs.get("WorkerEventSourceMappingId")
    if not mapping_id:
        return Check("event source", False, "the stack has no database (db_secret_arn): leads wait in the queue")
    state = lambda_client.get_event_source_mapping(UUID=mapping_id)["State"]
    if state == "Enabled":
        return Check("event source", True, "the worker's event source mapping is enabled")
    return Check(
        "event source",
        False,
        f"the worker's event source mapping is {state}: `leadpipe drain status --stack {stack_name}` says whether an "
        "operator paused it or the breaker holds it (the database does not answer)",
    )


def check_probe_ran(cloudwatch: Any, outputs: dict[str, str], now: datetime) -> Check:
    """The drain probe's last run (the latest minute with invocations) had no error."""
    probe = outputs.get("DrainProbeFunctionName")
    if not probe:
        return Check("drain probe", False, "the stack has no drain probe (no database configured)")
    minutes = _lambda_minutes(cloudwatch, probe, now - PROBE_LOOKBACK, now)
    ran = sorted(t for t, (invocations, _) in minutes.items() if invocations > 0)
    if not ran:
        return Check(
            "drain probe",
            False,
            f"{probe} has not run in the last {PROBE_LOOKBACK.seconds // 60} minutes: check its EventBridge rule "
            "(right after a first deploy, wait two minutes for its metrics)",
        )
    last = ran[-1]
    errors = minutes[last][1]
    if errors:
        return Check("drain probe", False, f"its last run ({last:%H:%M} UTC) failed: read {probe}'s log")
    return Check("drain probe", True, f"its last run ({last:%H:%M} UTC) succeeded")


def _lambda_minutes(
    cloudwatch: Any, function_name: str, start: datetime, end: datetime
) -> dict[datetime, tuple[float, float]]:
    def query(metric: str) -> dict[str, Any]:
        return {
            "Id": metric.lower(),
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/Lambda",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "FunctionName", "Value": function_name}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
        }

    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[query("Invocations"), query("Errors")], StartTime=start, EndTime=end
    )["MetricDataResults"]
    series = {r["Id"]: dict(zip(r["Timestamps"], r["Values"], strict=True)) for r in answer}
    invocations, errors = series.get("invocations", {}), series.get("errors", {})
    return {t: (invocations.get(t, 0.0), errors.get(t, 0.0)) for t in set(invocations) | set(errors)}


def canary_lead(captcha_secret: CaptchaSecret | None = None) -> tuple[str, bytes, dict[str, str]]:
    """A canary's address, the JSON body verify posts, and its headers (a fresh Idempotency-Key; with a captcha
    secret, the pass ticket for the lead id the ingest will derive)."""
    email = canary_address(f"verify-{uuid4().hex[:12]}")
    fields = {"email": email, "campaign": CANARY_CAMPAIGN}
    key = str(uuid4())
    headers = {"Content-Type": "application/json", "Idempotency-Key": key, "User-Agent": "leadpipe-verify"}
    if captcha_secret is not None:
        lead_id = derive_lead_id(Lead(**fields), key, datetime.now(UTC))  # with a key, the time plays no part
        headers[PASS_HEADER] = CaptchaPass(captcha_secret()).issue(lead_id)
    return email, json.dumps(fields).encode(), headers


def check_canary(
    lambda_client: Any,
    outputs: dict[str, str],
    post_lead: PostLead,
    patience: Patience,
    captcha_secret: CaptchaSecret | None = None,
) -> Check:
    function = outputs.get(CANARY_OUTPUT)
    if not function:
        return Check(
            "canary lead", False, f"the stack has no {CANARY_OUTPUT} output (no database, or deployed before it)"
        )
    email, body, headers = canary_lead(captcha_secret)
    # The lead id the ingest derives from the key, known before any answer: a 5xx may come after the lead was queued.
    lead_id = str(derive_lead_id(Lead.model_validate_json(body), headers["Idempotency-Key"], datetime.now(UTC)))
    give_up = {"lead_id": lead_id, "email": email, "give_up": True}
    try:
        check, maybe_queued = _post_and_confirm(lambda_client, function, outputs["LeadsEndpoint"], post_lead, patience,
                                                (email, body, headers), captcha_secret is None)  # fmt: skip
    except BaseException:  # an error or Ctrl-C while the canary may be on its way: it must never be stored later
        with contextlib.suppress(Exception):
            _ask_canary_check(lambda_client, function, give_up)
        raise
    if maybe_queued:
        # Never store it later: the tombstone makes the worker skip it whenever it arrives.
        _ask_canary_check(lambda_client, function, give_up)
    return check


def _post_and_confirm(
    lambda_client: Any,
    function: str,
    endpoint: str,
    post_lead: PostLead,
    patience: Patience,
    lead: tuple[str, bytes, dict[str, str]],
    without_captcha: bool,
) -> tuple[Check, bool]:
    """The canary's check, and whether it may still be queued unstored (a 202 or a 5xx, and no row found)."""
    email, body, headers = lead
    for attempt in range(1, CANARY_POST_ATTEMPTS + 1):
        status, answer = post_lead(endpoint, body, headers)  # the same Idempotency-Key: one lead, however many tries
        if status not in RETRYABLE_STATUSES or attempt == CANARY_POST_ATTEMPTS:
            break
        patience.sleep(patience.poll_seconds)
    if status != 202:
        detail = f"POST {endpoint} answered {status} {_error_code(answer)}".rstrip()
        if without_captcha and b"captcha_missing" in answer:
            detail += " (the stage checks a captcha: run verify with --stage, and credentials that may read its secret)"
        # A 5xx (a gateway timeout above all) may come after the ingest queued the lead.
        return Check("canary lead", False, detail), status >= 500
    lead_id = json.loads(answer)["lead_id"]
    deadline = patience.now() + timedelta(seconds=patience.canary_seconds)
    posted = patience.now()
    while True:
        outcome = _ask_canary_check(lambda_client, function, {"lead_id": lead_id, "email": email})
        if outcome.get("stored"):
            waited = (patience.now() - posted).total_seconds()
            return Check("canary lead", True, f"lead {lead_id} posted, stored within {waited:.0f} s, and erased"), False
        if patience.now() >= deadline:
            break
        patience.sleep(patience.poll_seconds)
    return Check(
        "canary lead",
        False,
        f"lead {lead_id} got a 202 but was not stored within {patience.canary_seconds:.0f} s (a tombstone keeps it "
        f"from being stored later): `leadpipe status --stack` and `leadpipe drain status --stack`",
    ), True


def _ask_canary_check(lambda_client: Any, function: str, request: dict[str, Any]) -> dict[str, Any]:
    answer = lambda_client.invoke(FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(request))
    payload = json.loads(answer["Payload"].read() or b"{}")
    if answer.get("FunctionError"):
        raise CanaryCheckFailed(f"{function} failed: {payload.get('errorType')}: {payload.get('errorMessage')}")
    return payload


class CanaryCheckFailed(RuntimeError):
    """The canary check function itself failed (no route to the database or the secret, no permission)."""


def _error_code(answer: bytes) -> str:
    try:
        error = json.loads(answer)["error"]
    except (ValueError, KeyError, TypeError):
        return ""
    return f"{error.get('code', '')}: {error.get('message', '')}"


def stack_alarm_names(cloudformation: Any, stack_name: str) -> list[str]:
    """The names of every CloudWatch alarm the stack created."""
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
    return [
        r["PhysicalResourceId"]
        for page in pages
        for r in page["StackResourceSummaries"]
        if r["ResourceType"] in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")
    ]


@dataclass(frozen=True)
class AlarmTest:
    name: str
    prior_state: str
    tested_state: str
    topics: tuple[str, ...]


def check_alarms(cloudformation: Any, cloudwatch: Any, sns: Any, stack_name: str, patience: Patience) -> list[Check]:
    """Each alarm's notification reaches SNS, and a confirmed subscriber of its topic. Every alarm is put back to
    its prior state, whatever happens."""
    alarms = _describe_alarms(cloudwatch, stack_alarm_names(cloudformation, stack_name))
    if not alarms:
        return [Check("alarms", False, f"stack {stack_name} has no CloudWatch alarms")]
    results: list[Check] = []
    tests: list[AlarmTest] = []
    for alarm in alarms:
        tested = "OK" if alarm["StateValue"] == "ALARM" else "ALARM"  # only a change of state runs the actions
        topics = tuple(alarm.get("AlarmActions" if tested == "ALARM" else "OKActions", []))
        if not alarm.get("ActionsEnabled", True) or not topics:
            results.append(
                Check(f"alarm {alarm['AlarmName']}", False, f"no {tested} action: on-call would never hear it")
            )
            continue
        tests.append(AlarmTest(alarm["AlarmName"], alarm["StateValue"], tested, topics))
    started = patience.now()
    try:
        for test in tests:
            cloudwatch.set_alarm_state(AlarmName=test.name, StateValue=test.tested_state, StateReason=ALARM_TEST_REASON)
        results.extend(_await_actions(cloudwatch, tests, started, patience))
    finally:
        left_out = _restore(cloudwatch, tests)
    unheard = _unheard_topics(sns, {topic for test in tests for topic in test.topics})
    return [left_out.get(check.name) or _heard(check, tests, unheard) for check in results]


def _restore(cloudwatch: Any, tests: Iterable[AlarmTest]) -> dict[str, Check]:
    """Every alarm back to its prior state, each on its own: one refused restore must not leave the others in the
    tested state (a composite alarm stays there until a child changes state, and its next real alarm pages nobody)."""
    left_out: dict[str, Check] = {}
    for test in tests:
        try:
            cloudwatch.set_alarm_state(
                AlarmName=test.name, StateValue=test.prior_state, StateReason=ALARM_RESTORE_REASON
            )
        except ClientError as error:
            said = error.response["Error"]
            left_out[f"alarm {test.name}"] = Check(
                f"alarm {test.name}",
                False,
                f"left in {test.tested_state} (AWS said {said.get('Code')}: {said.get('Message')}): put it back with "
                f"`aws cloudwatch set-alarm-state --alarm-name {test.name} --state-value {test.prior_state} "
                "--state-reason 'leadpipe verify: restore'`",
            )
    return left_out


def _unheard_topics(sns: Any, topics: Iterable[str]) -> set[str]:
    """The SNS topics with no confirmed subscription: SNS takes the alarm's message (the history says "Successfully
    executed action") and delivers it to nobody. An unconfirmed one is listed as "PendingConfirmation"."""
    unheard = set()
    for topic in topics:
        if ":sns:" not in topic:
            continue
        pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
        subscriptions = [s for page in pages for s in page.get("Subscriptions", [])]
        if not any(s.get("SubscriptionArn", "").startswith("arn:") for s in subscriptions):
            unheard.add(topic)
    return unheard


def _heard(check: Check, tests: Iterable[AlarmTest], unheard: set[str]) -> Check:
    """A passed alarm check fails when one of its topics reaches nobody."""
    test = next((t for t in tests if check.name == f"alarm {t.name}"), None)
    silent = sorted(topic.rsplit(":", 1)[-1] for topic in (test.topics if test else ()) if topic in unheard)
    if not check.ok or not silent:
        return check
    return Check(
        check.name,
        False,
        f"{check.detail}, but nobody has confirmed a subscription to {', '.join(silent)}: on-call hears nothing "
        "(confirm AWS's e-mail, or subscribe a pager)",
    )


def _describe_alarms(cloudwatch: Any, names: list[str]) -> list[dict[str, Any]]:
    alarms: list[dict[str, Any]] = []
    for start in range(0, len(names), DESCRIBE_ALARMS_MAX_NAMES):
        # DescribeAlarms answers in pages (NextToken), even for a list of names: an alarm left unread is never tested.
        pages = cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNames=names[start : start + DESCRIBE_ALARMS_MAX_NAMES], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        )
        for answer in pages:
            alarms += answer.get("MetricAlarms", []) + answer.get("CompositeAlarms", [])
    return sorted(alarms, key=lambda a: a["AlarmName"])


def _await_actions(cloudwatch: Any, tests: Iterable[AlarmTest], started: datetime, patience: Patience) -> list[Check]:
    waiting = {test.name: test for test in tests}
    done: dict[str, Check] = {}
    deadline = started + timedelta(seconds=patience.alarm_seconds)
    while True:
        for name, test in list(waiting.items()):
            verdict = _action_verdict(test, _action_summaries(cloudwatch, name, started - CLOCK_SKEW))
            if verdict is not None:
                done[name] = verdict
                del waiting[name]
        if not waiting or patience.now() >= deadline:
            break
        patience.sleep(patience.poll_seconds)
    for name, test in waiting.items():
        done[name] = Check(
            f"alarm {name}",
            False,
            f"set to {test.tested_state}, but its history shows no action within {patience.alarm_seconds:.0f} s",
        )
    return [done[name] for name in sorted(done)]


def _action_summaries(cloudwatch: Any, alarm_name: str, since: datetime) -> list[str]:
    # Without AlarmTypes, DescribeAlarmHistory returns metric alarms' items only.
    answer = cloudwatch.describe_alarm_history(
        AlarmName=alarm_name,
        AlarmTypes=["MetricAlarm", "CompositeAlarm"],
        HistoryItemType="Action",
        StartDate=since,
    )
    return [item.get("HistorySummary", "") for item in answer.get("AlarmHistoryItems", [])]


def _action_verdict(test: AlarmTest, summaries: list[str]) -> Check | None:
    """ok when every topic of the tested state's actions shows a successful action; None while one has none."""
    name = f"alarm {test.name}"
    for topic in test.topics:
        failed = [s for s in summaries if s.startswith(ACTION_FAILED) and topic in s]
        if failed:
            return Check(name, False, f"{failed[0]} -- the topic's policy must let cloudwatch.amazonaws.com publish")
        if not any(s.startswith(ACTION_SUCCEEDED) and topic in s for s in summaries):
            return None
    topics = ", ".join(topic.rsplit(":", 1)[-1] for topic in test.topics)
    return Check(name, True, f"{test.tested_state} notified {topics}; back to {test.prior_state}")


def http_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST with the standard library: the status and body, whatever the status."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
