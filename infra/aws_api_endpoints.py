"""Interface VPC endpoints: the route from functions in private subnets to the AWS APIs their code calls."""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.config import PipelineSettings

HTTPS = ec2.Port.tcp(443)
# The AWS APIs each function in the VPC calls (boto3 service names, which are also the endpoints' names).
# tests/infra/test_aws_semantics.py reads the functions' code and fails when this list misses one.
WORKER_AWS_SERVICES = frozenset({"secretsmanager", "ssm"})  # its database secret; the drain governor's record
WORKER_EVENTS_AWS_SERVICES = frozenset({"events", "sqs"})  # with events_enabled: PutEvents, the hand-off queue
MIGRATE_AWS_SERVICES = frozenset({"secretsmanager"})
PROBE_AWS_SERVICES = frozenset({"secretsmanager", "ssm", "lambda"})  # secret, pause record, event source mapping
CANARY_CHECK_AWS_SERVICES = frozenset({"secretsmanager"})  # `leadpipe verify`'s canary check: the database secret
RETENTION_AWS_SERVICES = frozenset({"secretsmanager"})  # its database secret, as the worker


class AwsApiEndpoints(Construct):
    """One interface endpoint per service, with private DNS, so the SDK's default endpoint names resolve to it.

    A function in a VPC has no route to the internet without a NAT gateway or these
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html). An endpoint takes at most
    one subnet per Availability Zone; its security group takes HTTPS from the functions' only.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: PipelineSettings, vpc: ec2.IVpc, services: Iterable[str]
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"Leadpipe {settings.stage}: HTTPS from the functions to the AWS API endpoints",
            allow_all_outbound=False,  # an endpoint answers; it never opens a connection
        )
        for index, group_id in enumerate(settings.vpc_security_group_ids):
            self.security_group.add_ingress_rule(
                # EC2 refuses an apostrophe (or any character outside its set) in a rule's description.
                ec2.Peer.security_group_id(group_id),
                HTTPS,
                f"HTTPS from the functions security group {index}",
            )
        subnets = _one_subnet_per_zone(self, settings)
        self.endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        for service in sorted(set(services)):
            self.endpoints[service] = ec2.InterfaceVpcEndpoint(
                self,
                f"{service.title()}Endpoint",
                vpc=vpc,
                service=ec2.InterfaceVpcEndpointAwsService(service),
                subnets=ec2.SubnetSelection(subnets=subnets),
                security_groups=[self.security_group],
                private_dns_enabled=True,
                open=False,  # ingress only from the functions' groups (above), not the whole VPC
            )


def _one_subnet_per_zone(scope: Construct, settings: PipelineSettings) -> list[ec2.ISubnet]:
    first_by_zone: dict[str, str] = {}
    for subnet_id, zone in zip(settings.vpc_subnet_ids, settings.vpc_availability_zones, strict=True):
        first_by_zone.setdefault(zone, subnet_id)
    return [
        ec2.Subnet.from_subnet_attributes(scope, f"Subnet{zone}", subnet_id=subnet_id, availability_zone=zone)
        for zone, subnet_id in first_by_zone.items()
    ]
