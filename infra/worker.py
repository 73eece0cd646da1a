"""The worker: drains the leads queue into PostgreSQL, never with more than `max_concurrency` writers."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.contract.observability import STAGE_VARIABLE, WORKER_SERVICE
from infra.config import PipelineSettings
from infra.function import PipelineFunction, PipelineFunctionProps, VpcPlacement
from infra.imported_secret import ImportedSecret


class LeadWorker(Construct):
    """The worker function, its SQS event source, and its access to the database secret.

    Without a database setting the event source is created disabled: leads wait safely in the
    queue (and the age alarm says so) until `db_secret_arn` is set and deployed.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: PipelineSettings, queue: sqs.IQueue) -> None:
        super().__init__(scope, construct_id)
        self.database_secret = (
            ImportedSecret(settings.db_secret_arn, settings.db_secret_kms_key_arn) if settings.db_secret_arn else None
        )
        self.vpc_placement = _vpc_placement(self, settings) if settings.in_vpc else None
        self.environment = {
            "LEADS_TABLE": settings.leads_table,
            "DB_SSLMODE": settings.db_sslmode,
            **settings.worker_database_environment(),
            STAGE_VARIABLE: settings.stage,  # the stage's own metrics (observability.stage_dimension)
        }
        if self.database_secret:
            self.environment["DB_SECRET_ARN"] = self.database_secret.secret_arn
        if settings.db_proxy_endpoint:
            self.environment["DB_PROXY_ENDPOINT"] = settings.db_proxy_endpoint
        if settings.db_sslmode in ("verify-ca", "verify-full") and settings.db_ca_bundle:
            self.environment["DB_CA_BUNDLE"] = settings.db_ca_bundle  # the shipped bundle libpq verifies against

        self.function = PipelineFunction(
            self,
            "Worker",
            props=PipelineFunctionProps(
                code_folder="worker",
                handler="functions.worker.handler.lambda_handler",
                service_name=WORKER_SERVICE,
                description="Stores batches of leads in PostgreSQL, one transaction each",
                memory_mb=settings.worker_memory_mb,
                timeout=cdk.Duration.seconds(settings.worker_timeout_seconds),
                log_retention_days=settings.log_retention_days,
                environment=self.environment,
                # A floor and a ceiling for the worker; the event source's max_concurrency is the DB cap.
                reserved_concurrency=settings.reserved_concurrency,
                vpc_placement=self.vpc_placement,
            ),
        )
        self.event_source = event_sources.SqsEventSource(
            queue,
            batch_size=settings.batch_size,
            max_batching_window=cdk.Duration.seconds(settings.max_batching_window_seconds),
            max_concurrency=settings.max_concurrency,
            report_batch_item_failures=True,
            enabled=settings.has_database,
        )
        self.function.function.add_event_source(self.event_source)  # also grants consume on this queue only
        if self.database_secret:
            self.database_secret.grant_read(self.function.role)


def _vpc_placement(scope: Construct, settings: PipelineSettings) -> VpcPlacement:
    """Built from ids in the settings: synth makes no AWS look-ups."""
    vpc = ec2.Vpc.from_vpc_attributes(
        scope,
        "Vpc",
        vpc_id=settings.vpc_id,
        availability_zones=settings.vpc_availability_zones,
        private_subnet_ids=settings.vpc_subnet_ids,
    )
    subnets = [ec2.Subnet.from_subnet_id(scope, f"Subnet{i}", s) for i, s in enumerate(settings.vpc_subnet_ids)]
    groups = [
        ec2.SecurityGroup.from_security_group_id(scope, f"SecurityGroup{i}", g, mutable=False)
        for i, g in enumerate(settings.vpc_security_group_ids)
    ]
    return VpcPlacement(vpc=vpc, subnets=subnets, security_groups=groups)
