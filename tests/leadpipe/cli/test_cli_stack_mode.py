"""`--stack NAME`: the ops commands find a deployed stack's queues from its CloudFormation outputs
and work on them in AWS (here moto's CloudFormation, SQS and CloudWatch)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import uuid4

import boto3
import pytest

from functions.contract import Lead, LeadEnvelope
from functions.contract.envelope import Source
from infra.config import settings_from_file
from leadpipe.cli import main as leadpipe
from leadpipe.targets import resolve_target
from tests.conftest import LeadsDatabase
from tests.moto_mock import mock_aws

STACK = "Leadpipe-prod"
# The two outputs `leadpipe --stack` reads, as the real stack declares them.
TEMPLATE = {
    "Resources": {
        "DeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "leadpipe-prod-dlq"}},
        "LeadsQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "leadpipe-prod-leads"}},
    },
    "Outputs": {
        "QueueUrl": {"Value": {"Ref": "LeadsQueue"}},
        "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
    },
}


@pytest.fixture
def deployed_stack() -> Iterator[dict[str, str]]:
    with mock_aws():
        cloudformation = boto3.client("cloudformation")
        cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(TEMPLATE))
        [stack] = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
        yield {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = leadpipe(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def dead_letter(email: str) -> LeadEnvelope:
    return LeadEnvelope(
        lead_id=uuid4(),
        received_at=datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
        source=Source(user_agent="pytest"),
        lead=Lead(email=email, campaign="blocked"),
    )


def test_dlq_list_and_status_read_the_stacks_queues(
    deployed_stack: dict[str, str], capsys: pytest.CaptureFixture
) -> None:
    # Given a deployed stack with one lead in its DLQ and two waiting in its leads queue
    sqs = boto3.client("sqs")
    letter = dead_letter("ops-visible@example.com")
    sqs.send_message(QueueUrl=deployed_stack["DeadLetterQueueUrl"], MessageBody=letter.to_message_body())
    for _ in range(2):
        sqs.send_message(
            QueueUrl=deployed_stack["QueueUrl"], MessageBody=dead_letter("queued@example.com").to_message_body()
        )
    # When ops list the DLQ by the stack's name
    code, out, err = run(capsys, "dlq", "list", "--stack", STACK, "--json")
    # Then they see that lead, masked, from the stack's own DLQ
    assert (code, err) == (0, "")
    listed = json.loads(out)
    assert listed["count"] == 1
    [message] = listed["messages"]
    assert message["lead_id"] == str(letter.lead_id) and message["email"] == "o***@example.com"
    assert "ops-visible@example.com" not in out
    # And status counts the stack's queues (CloudWatch has no age datapoint yet)
    code, out, _ = run(capsys, "status", "--stack", STACK, "--json")
    status = json.loads(out)
    assert code == 0
    assert (status["queued"], status["dead_letters"]) == (2, 1)
    assert status["source"] == f"stack {STACK}"


def test_status_counts_the_leads_in_the_stacks_own_table(
    leads_db: LeadsDatabase, capsys: pytest.CaptureFixture
) -> None:
    # Given a deployed stack whose leads table is not dev's, holding one lead
    with leads_db.connect() as connection:
        connection.execute(
            f"INSERT INTO {leads_db.leads_table} (lead_id, email, envelope_version, received_at) "
            "VALUES (gen_random_uuid(), 'stored@example.com', 1, now())"
        )
    template = {**TEMPLATE, "Outputs": {**TEMPLATE["Outputs"], "LeadsTable": {"Value": leads_db.leads_table}}}
    with mock_aws():
        boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
        # When ops ask for its status with the database's address
        code, out, err = run(capsys, "status", "--stack", STACK, "--database-url", leads_db.uri, "--json")
    # Then the lead in the stack's own table is counted
    assert (code, err) == (0, "")
    assert json.loads(out)["leads_stored"] == 1


def test_a_stack_without_the_table_output_reads_its_stages_table() -> None:
    # Given a stack deployed before it named its table, under app.py's name for the prod stage
    with mock_aws():
        boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(TEMPLATE))
        # When it is resolved with a database to read; Then its table is prod's in cdk.json
        target = resolve_target(STACK, database_url="postgresql:///unused")
    assert target.leads_table == settings_from_file("prod").leads_table


def test_an_unknown_stack_is_one_readable_line(deployed_stack: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    # Given no stack of that name  When ops name it  Then one line says so, exit code 2
    code, out, err = run(capsys, "dlq", "list", "--stack", "Leadpipe-nope")
    assert (code, out) == (2, "")
    assert err.startswith("leadpipe: stack 'Leadpipe-nope' not found") and err.count("\n") == 1
