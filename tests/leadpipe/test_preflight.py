"""`leadpipe preflight`: read-only checks of the target account before a deploy, against moto.

Where moto has no answer, the AWS answer is canned with the shape of the API reference page cited at the test
(tests/leadpipe/aws_not_in_moto.py checks each against botocore's model of that operation):
- Lambda GetAccountSettings (moto: "Not yet implemented");
- RDS DescribeDBProxyEndpoints (moto: NotImplementedError);
- SNS ListSubscriptionsByTopic with an unconfirmed e-mail (moto confirms every subscription at once);
- API Gateway GetAccount with a quota below the default (moto always answers the default 10,000/5,000);
- CloudFormation ListStackResources of a deployed stack's functions (moto's stacks hold no reserved concurrency).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra.config import PipelineSettings, settings_from_file
from leadpipe.preflight import (
    AccountClients,
    check_alarm_subscription,
    check_api_logging_role,
    check_api_throttle,
    check_aws_api_routes,
    check_captcha_secret,
    check_concurrency,
    check_database_path,
    check_proxy,
    check_secret,
    check_vpc,
    vpc_services,
)
from tests.leadpipe.aws_not_in_moto import account_limit, answer
from tests.moto_mock import mock_aws

STACK = "Leadpipe-dev"
SECRET_VALUE = {"host": "db.internal", "port": 5432, "username": "leadpipe", "password": "s3cr3t-pw", "dbname": "crm"}


@pytest.fixture
def clients() -> Iterator[AccountClients]:
    with mock_aws():
        yield AccountClients(
            lambda_=boto3.client("lambda"),
            apigateway=boto3.client("apigateway"),
            ec2=boto3.client("ec2"),
            secretsmanager=boto3.client("secretsmanager"),
            kms=boto3.client("kms"),
            rds=boto3.client("rds"),
            sns=boto3.client("sns"),
            cloudformation=boto3.client("cloudformation"),
        )


def stage(**changes: Any) -> PipelineSettings:
    """The dev stage (no VPC, no database) without its events lane, with `changes`, as cdk.json would give them."""
    quiet = {"events_enabled": False, "event_destinations": []}
    return settings_from_file("dev").model_copy(update={**quiet, **changes})


def a_vpc(ec2: Any, *, dns_hostnames: bool = True) -> dict[str, Any]:
    """A VPC with two private subnets and a security group; the settings that name them."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": dns_hostnames})
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for i, zone in enumerate(("eu-west-1a", "eu-west-1b"))
    ]
    group = ec2.create_security_group(GroupName="leadpipe", Description="leadpipe functions", VpcId=vpc)["GroupId"]
    return {
        "vpc_id": vpc,
        "vpc_subnet_ids": subnets,
        "vpc_availability_zones": ["eu-west-1a", "eu-west-1b"],
        "vpc_security_group_ids": [group],
    }


# --- concurrency


def test_a_new_account_with_a_quota_of_10_cannot_reserve_anything(clients: AccountClients) -> None:
    # Given a new account: "Concurrent executions" 10, all unreserved (GetAccountSettings: https://docs.aws.amazon.com/lambda/latest/api/API_GetAccountSettings.html),
    # and Lambda keeps 100 unreserved: "you can reserve up to the Unreserved account concurrency value minus 100"
    # (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html)
    answer(clients.lambda_, "GetAccountSettings", account_limit(total=10, unreserved=10))
    # When preflight checks the stage's reservations (worker 2 + probe 1)
    check = check_concurrency(stage(db_secret_arn=None), clients.lambda_, clients.cloudformation, STACK)
    # Then it fails and says how much to ask AWS for
    assert not check.ok
    assert check.detail == (
        "reserving 2 would leave 8 of 10 unreserved, below Lambda's minimum of 100: "
        "ask AWS (Service Quotas, Lambda 'Concurrent executions') for 102 or more"
    )


def test_a_deployed_stacks_own_reservations_are_counted_back(clients: AccountClients) -> None:
    # Given the stack already deployed, its worker holding 4 of a 1,000 quota that other functions nearly fill
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="worker", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    clients.lambda_.create_function(
        FunctionName="Leadpipe-dev-Worker", Runtime="python3.13", Role=role, Handler="h.h", Code={"ZipFile": b"PK"}
    )
    clients.lambda_.put_function_concurrency(FunctionName="Leadpipe-dev-Worker", ReservedConcurrentExecutions=4)
    # ListStackResources' shape: https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListStackResources.html
    answer(clients.cloudformation, "ListStackResources", {"StackResourceSummaries": [{
        "LogicalResourceId": "LeadWorkerFunction", "PhysicalResourceId": "Leadpipe-dev-Worker",
        "ResourceType": "AWS::Lambda::Function", "LastUpdatedTimestamp": "2026-12-01T09:00:00Z",
        "ResourceStatus": "UPDATE_COMPLETE"}]})  # fmt: skip
    answer(clients.lambda_, "GetAccountSettings", account_limit(total=1000, unreserved=102))
    # When preflight checks a stage that reserves 4 (worker) + 1 (probe) + 1 (retention): 102 + 4 held - 6 = 100
    check = check_concurrency(
        stage(
            reserved_concurrency=4,
            max_concurrency=4,
            db_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
        ),
        clients.lambda_,
        clients.cloudformation,
        STACK,
    )
    # Then the deploy fits: the stack's own 4 are replaced, not added
    assert check.ok, check.detail
    assert check.detail == "reserving 6 leaves 100 of 1000 unreserved (Lambda keeps 100)"


# --- API Gateway


def test_the_stage_throttle_fits_moto_s_default_account_quota(clients: AccountClients) -> None:
    # Given the account's default throttle (10,000 rps, burst 5,000:
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-throttling.html)
    check = check_api_throttle(stage(), clients.apigateway)
    # Then dev's 100/s burst 200 fits
    assert check.ok and check.detail.startswith("stage 100/s burst 200, within the account's 10000/s burst 5000")


def test_a_stage_throttle_above_a_lowered_account_quota_fails(clients: AccountClients) -> None:
    # Given an account whose quota is lower than the stage's (GetAccount's throttleSettings:
    # https://docs.aws.amazon.com/apigateway/latest/api/API_GetAccount.html)
    answer(clients.apigateway, "GetAccount", {"throttleSettings": {"rateLimit": 50.0, "burstLimit": 100}})
    # When preflight checks  Then it names both settings and what to do
    check = check_api_throttle(stage(), clients.apigateway)
    assert not check.ok
    assert check.detail == (
        "throttle_rate_per_second 100 is above the account's 50; throttle_burst 200 is above the account's 100: "
        "lower the stage's throttle, or ask AWS for a higher quota"
    )


def test_a_logging_role_set_by_someone_else_is_not_overwritten_silently(clients: AccountClients) -> None:
    # Given an account whose API Gateway CloudWatch role another stack set (one per account and Region:
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html)
    role = "arn:aws:iam::123456789012:role/landing-zone-apigw-logs"
    clients.apigateway.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": role}])
    # When this stage would create its own  Then preflight says to use the existing one
    check = check_api_logging_role(
        stage(api_gateway_cloudwatch_role="create"), clients.apigateway, clients.cloudformation, STACK
    )
    assert not check.ok and role in check.detail and 'set api_gateway_cloudwatch_role to "existing"' in check.detail
    # And with "existing" it passes
    assert check_api_logging_role(
        stage(api_gateway_cloudwatch_role="existing"), clients.apigateway, clients.cloudformation, STACK
    ).ok


# --- the VPC and the routes to the AWS APIs


def test_a_subnet_of_another_vpc_is_named(clients: AccountClients) -> None:
    # Given settings whose second subnet belongs to another VPC
    mine, other = a_vpc(clients.ec2), a_vpc(clients.ec2)
    settings = stage(**{**mine, "vpc_subnet_ids": [mine["vpc_subnet_ids"][0], other["vpc_subnet_ids"][1]]})
    # When preflight checks the VPC  Then that subnet is named with its real VPC
    check = check_vpc(settings, clients.ec2)
    assert not check.ok
    assert check.detail.startswith(f"{other['vpc_subnet_ids'][1]} is in {other['vpc_id']}")


def test_preflight_checks_the_routes_to_every_service_the_stack_makes_endpoints_for() -> None:
    # Given the services the VPC functions call, as the stack declares them (its tests read the functions' code)
    from infra.aws_api_endpoints import (
        CANARY_CHECK_AWS_SERVICES,
        MIGRATE_AWS_SERVICES,
        PROBE_AWS_SERVICES,
        RETENTION_AWS_SERVICES,
        WORKER_AWS_SERVICES,
        WORKER_EVENTS_AWS_SERVICES,
    )

    declared = (
        WORKER_AWS_SERVICES
        | MIGRATE_AWS_SERVICES
        | PROBE_AWS_SERVICES
        | RETENTION_AWS_SERVICES
        | CANARY_CHECK_AWS_SERVICES
    )
    # Then preflight checks the routes to exactly those, and the events lane's too when it is on
    assert vpc_services(stage()) == tuple(sorted(declared))
    assert vpc_services(stage(events_enabled=True)) == tuple(sorted(declared | WORKER_EVENTS_AWS_SERVICES))


def test_interface_endpoints_need_dns_hostnames_and_no_endpoint_already_there(clients: AccountClients) -> None:
    # Given a VPC without DNS hostnames that already has a Secrets Manager endpoint with private DNS.
    # Private DNS needs enableDnsHostnames and enableDnsSupport, and one per service and VPC:
    # https://docs.aws.amazon.com/vpc/latest/privatelink/manage-dns-names.html
    vpc = a_vpc(clients.ec2, dns_hostnames=False)
    endpoint = clients.ec2.create_vpc_endpoint(
        VpcId=vpc["vpc_id"], ServiceName="com.amazonaws.eu-west-1.secretsmanager", VpcEndpointType="Interface",
        SubnetIds=vpc["vpc_subnet_ids"], PrivateDnsEnabled=True,
    )["VpcEndpoint"]["VpcEndpointId"]  # fmt: skip
    # When preflight checks a stage whose stack creates the endpoints
    check = check_aws_api_routes(
        stage(**vpc, vpc_aws_api_access="interface_endpoints"), clients.ec2, clients.cloudformation, STACK
    )
    # Then both problems are named, with what to do
    assert not check.ok
    assert check.detail == (
        f"the VPC's enableDnsHostnames is off; the VPC has endpoints with private DNS for secretsmanager ({endpoint}), "
        'so the stack cannot create its own: set vpc_aws_api_access to "nat" '
        "(the VPC's own endpoints serve the functions)"
    )


def test_a_deployed_stacks_own_endpoints_must_all_be_there(clients: AccountClients) -> None:
    # Given the stack deployed with its endpoints for Secrets Manager and SSM, but none for Lambda (as if deleted)
    vpc = a_vpc(clients.ec2)
    ours = [
        clients.ec2.create_vpc_endpoint(
            VpcId=vpc["vpc_id"], ServiceName=f"com.amazonaws.eu-west-1.{service}", VpcEndpointType="Interface",
            SubnetIds=vpc["vpc_subnet_ids"], PrivateDnsEnabled=True,
        )["VpcEndpoint"]["VpcEndpointId"]
        for service in ("secretsmanager", "ssm")
    ]  # fmt: skip
    # (ListStackResources: https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListStackResources.html)
    answer(clients.cloudformation, "ListStackResources", {"StackResourceSummaries": [
        {"LogicalResourceId": f"Endpoint{i}", "PhysicalResourceId": endpoint, "ResourceType": "AWS::EC2::VPCEndpoint",
         "LastUpdatedTimestamp": "2026-12-01T09:00:00Z", "ResourceStatus": "CREATE_COMPLETE"}
        for i, endpoint in enumerate(ours)
    ]})  # fmt: skip
    settings = stage(**vpc, vpc_aws_api_access="interface_endpoints")
    # When preflight checks  Then its own endpoints count (they are no conflict), and the missing one is named
    check = check_aws_api_routes(settings, clients.ec2, clients.cloudformation, STACK)
    assert not check.ok
    assert check.detail.startswith("the stack's endpoints for lambda are missing or not available")


def nat_route(ec2: Any, vpc: dict[str, Any], subnet: str) -> str:
    """A NAT gateway in a public subnet of its own, and a route table sending the subnet's 0.0.0.0/0 to it."""
    taken = len(ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["vpc_id"]]}])["Subnets"])
    public = ec2.create_subnet(VpcId=vpc["vpc_id"], CidrBlock=f"10.0.{100 + taken}.0/24")["Subnet"]["SubnetId"]
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    table = ec2.create_route_table(VpcId=vpc["vpc_id"])["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    return table


def test_declared_nat_needs_a_nat_route_from_every_subnet(clients: AccountClients) -> None:
    # Given "nat" declared, one subnet routed through a NAT gateway and the other on an internet gateway.
    # A function in a VPC has no public IP, so only a NAT gives it the internet:
    # https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html
    vpc = a_vpc(clients.ec2)
    nat_subnet, igw_subnet = vpc["vpc_subnet_ids"]
    nat_table = nat_route(clients.ec2, vpc, nat_subnet)
    gateway = clients.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    clients.ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc["vpc_id"])
    public = clients.ec2.create_route_table(VpcId=vpc["vpc_id"])["RouteTable"]["RouteTableId"]
    association = clients.ec2.associate_route_table(RouteTableId=public, SubnetId=igw_subnet)["AssociationId"]
    clients.ec2.create_route(RouteTableId=public, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    settings = stage(**vpc, vpc_aws_api_access="nat")
    # When preflight checks  Then the internet-gateway subnet is named, and why it does not count
    check = check_aws_api_routes(settings, clients.ec2, clients.cloudformation, STACK)
    assert not check.ok
    assert check.detail.startswith(
        f"lambda, secretsmanager, ssm need a NAT route: {igw_subnet} routes 0.0.0.0/0 to an internet gateway, "
        "which gives a Lambda ENI no way out"
    )
    # And once both subnets route through the NAT gateway, it passes
    clients.ec2.replace_route_table_association(AssociationId=association, RouteTableId=nat_table)
    assert check_aws_api_routes(settings, clients.ec2, clients.cloudformation, STACK).ok


def test_a_subnet_without_its_own_route_table_uses_the_main_one(clients: AccountClients) -> None:
    # Given "nat" declared and subnets with no route table of their own: they use the VPC's main route table
    # (https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Route_Tables.html), which has only the local route
    vpc = a_vpc(clients.ec2)
    check = check_aws_api_routes(stage(**vpc, vpc_aws_api_access="nat"), clients.ec2, clients.cloudformation, STACK)
    # Then both subnets fail for want of a NAT route
    assert not check.ok
    assert [f"{s} has no active 0.0.0.0/0 route to a NAT gateway" in check.detail for s in vpc["vpc_subnet_ids"]] == [
        True,
        True,
    ]


def test_the_vpcs_own_endpoints_serve_a_declared_nat_stage(clients: AccountClients) -> None:
    # Given "nat" declared for a VPC with no NAT but its own endpoints (private DNS) for every API the functions call
    vpc = a_vpc(clients.ec2)
    for service in ("secretsmanager", "ssm", "lambda"):
        clients.ec2.create_vpc_endpoint(
            VpcId=vpc["vpc_id"], ServiceName=f"com.amazonaws.eu-west-1.{service}", VpcEndpointType="Interface",
            SubnetIds=vpc["vpc_subnet_ids"], PrivateDnsEnabled=True,
        )  # fmt: skip
    # Then the routes are there
    check = check_aws_api_routes(stage(**vpc, vpc_aws_api_access="nat"), clients.ec2, clients.cloudformation, STACK)
    assert check.ok and check.detail == "the VPC's own endpoints serve lambda, secretsmanager, ssm"


# --- the database secret and its key


def test_a_secret_missing_fields_names_them_and_never_shows_a_value(clients: AccountClients) -> None:
    # Given a secret with only a username and a password
    arn = clients.secretsmanager.create_secret(
        Name="leadpipe/db", SecretString=json.dumps({"username": "leadpipe", "password": "s3cr3t-pw"})
    )["ARN"]
    # When preflight reads it
    check = check_secret(stage(db_secret_arn=arn), clients.secretsmanager, clients.kms)
    # Then it names what the worker would miss, and no value
    assert not check.ok
    assert check.detail == "leadpipe/db lacks host, port, dbname: add them (the worker reads them)"
    assert "s3cr3t" not in check.detail


def test_a_missing_secret_says_so(clients: AccountClients) -> None:
    # Given no such secret  When preflight reads it  Then it says so; a name ending in "-" and 6 characters is
    # taken for a complete ARN by Secrets Manager (SecretId in
    # https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html), so it says that too
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/db-master"
    check = check_secret(stage(db_secret_arn=arn), clients.secretsmanager, clients.kms)
    assert not check.ok
    assert check.detail == (
        f"{arn} does not exist: create it, or fix db_secret_arn (a name that itself ends in '-' and 6 characters "
        "needs the complete ARN)"
    )


def test_a_customer_managed_key_must_be_named_in_the_settings(clients: AccountClients) -> None:
    # Given a secret encrypted with a customer-managed key. DescribeSecret's KmsKeyId names it; it is left out for
    # aws/secretsmanager (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html)
    key = clients.kms.create_key(Description="leadpipe db secret")["KeyMetadata"]["Arn"]
    arn = clients.secretsmanager.create_secret(Name="leadpipe/db", SecretString=json.dumps(SECRET_VALUE), KmsKeyId=key)[
        "ARN"
    ]
    # When the settings do not name the key  Then preflight says which one to name
    check = check_secret(stage(db_secret_arn=arn), clients.secretsmanager, clients.kms)
    assert not check.ok
    assert check.detail == (
        f"leadpipe/db: it is encrypted with the customer-managed key {key}: set db_secret_kms_key_arn to it "
        "(the functions' roles need kms:Decrypt on that key)"
    )
    # And when they name it, it passes
    check = check_secret(stage(db_secret_arn=arn, db_secret_kms_key_arn=key), clients.secretsmanager, clients.kms)
    assert check.ok, check.detail


def test_a_secret_on_the_aws_managed_key_passes(clients: AccountClients) -> None:
    arn = clients.secretsmanager.create_secret(Name="leadpipe/db", SecretString=json.dumps(SECRET_VALUE))["ARN"]
    check = check_secret(stage(db_secret_arn=arn), clients.secretsmanager, clients.kms)
    assert check.ok
    assert check.detail == (
        "leadpipe/db has host, port, username, password, dbname; encrypted with the AWS managed key aws/secretsmanager"
    )


def test_a_captcha_secret_on_an_unnamed_customer_key_fails_and_an_empty_one_too(clients: AccountClients) -> None:
    # Given the captcha's secret on a customer-managed key the settings do not name (DescribeSecret's KmsKeyId:
    # https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html)
    key = clients.kms.create_key(Description="captcha")["KeyMetadata"]["Arn"]
    arn = clients.secretsmanager.create_secret(Name="leadpipe/turnstile", SecretString="0x4AAA-secret", KmsKeyId=key)[
        "ARN"
    ]
    settings = stage(captcha_provider="turnstile", captcha_secret_arn=arn)
    # When preflight reads it  Then it names the key setting to fill
    check = check_captcha_secret(settings, clients.secretsmanager, clients.kms)
    assert not check.ok and check.detail.startswith(
        f"leadpipe/turnstile: it is encrypted with the customer-managed key {key}: set captcha_secret_kms_key_arn to it"
    )
    # And named, it passes; emptied, it fails again
    named = settings.model_copy(update={"captcha_secret_kms_key_arn": key})
    assert check_captcha_secret(named, clients.secretsmanager, clients.kms).ok
    clients.secretsmanager.put_secret_value(SecretId=arn, SecretString=" ")
    check = check_captcha_secret(named, clients.secretsmanager, clients.kms)
    assert not check.ok and check.detail == "leadpipe/turnstile is empty: store the verifier's secret key in it"


# --- RDS Proxy


def a_proxy(rds: Any, subnets: list[str], secret_arn: str, iam_auth: str = "DISABLED") -> dict[str, Any]:
    return rds.create_db_proxy(
        DBProxyName="leadpipe", EngineFamily="POSTGRESQL", RoleArn="arn:aws:iam::123456789012:role/proxy",
        Auth=[{"AuthScheme": "SECRETS", "SecretArn": secret_arn, "IAMAuth": iam_auth}], VpcSubnetIds=subnets,
    )["DBProxy"]  # fmt: skip


def test_a_proxy_in_another_vpc_is_refused(clients: AccountClients) -> None:
    # Given the proxy in another VPC than the functions': it answers only inside its own VPC
    # (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-network-prereqs.html)
    mine, theirs = a_vpc(clients.ec2), a_vpc(clients.ec2)
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/db-AbCdEf"
    proxy = a_proxy(clients.rds, theirs["vpc_subnet_ids"], secret)
    settings = stage(**mine, db_secret_arn=secret, db_proxy_endpoint=proxy["Endpoint"])
    # When preflight checks  Then it names the proxy's VPC
    check = check_proxy(settings, clients.rds)
    assert not check.ok
    assert check.detail == (
        f"leadpipe: it is in {theirs['vpc_id']}, not in vpc_id {mine['vpc_id']} (a proxy answers only inside its VPC)"
    )


def test_a_proxy_in_the_vpc_with_the_secret_passes_and_iam_only_fails(clients: AccountClients) -> None:
    vpc = a_vpc(clients.ec2)
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/db-AbCdEf"
    proxy = a_proxy(clients.rds, vpc["vpc_subnet_ids"], secret)
    settings = stage(**vpc, db_secret_arn=secret, db_proxy_endpoint=proxy["Endpoint"])
    assert check_proxy(settings, clients.rds).ok
    # Given a proxy that requires IAM authentication (the worker logs in with the secret's password:
    # https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_UserAuthConfig.html)
    clients.rds.delete_db_proxy(DBProxyName="leadpipe")
    proxy = a_proxy(clients.rds, vpc["vpc_subnet_ids"], secret, iam_auth="REQUIRED")
    check = check_proxy(settings.model_copy(update={"db_proxy_endpoint": proxy["Endpoint"]}), clients.rds)
    assert not check.ok and "requires IAM authentication" in check.detail


def test_a_partial_secret_arn_matches_the_proxys_complete_one_and_no_other(clients: AccountClients) -> None:
    # Given a proxy whose secret is "leadpipe/db-other", and settings naming the partial ARN of "leadpipe/db"
    # (a complete ARN is the partial one plus "-" and 6 random characters, SecretId in
    #  https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html)
    vpc = a_vpc(clients.ec2)
    other = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/db-other"
    proxy = a_proxy(clients.rds, vpc["vpc_subnet_ids"], other)
    partial = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/db"
    check = check_proxy(stage(**vpc, db_secret_arn=partial, db_proxy_endpoint=proxy["Endpoint"]), clients.rds)
    # Then "-other" is not taken for Secrets Manager's suffix: the secret is not the proxy's
    assert not check.ok and "db_secret_arn is not one of its secrets" in check.detail
    # And the same partial ARN matches the proxy's complete one
    clients.rds.delete_db_proxy(DBProxyName="leadpipe")
    proxy = a_proxy(clients.rds, vpc["vpc_subnet_ids"], f"{partial}-AbCdEf")
    assert check_proxy(stage(**vpc, db_secret_arn=partial, db_proxy_endpoint=proxy["Endpoint"]), clients.rds).ok


def test_a_proxy_with_end_to_end_iam_authentication_is_refused(clients: AccountClients) -> None:
    # Given a proxy whose default authentication scheme is IAM end to end: it takes no password
    # (DBProxy.DefaultAuthScheme: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBProxy.html;
    # moto does not model it, so DescribeDBProxies answers as that page shows)
    vpc = a_vpc(clients.ec2)
    endpoint = "leadpipe.proxy-abc.eu-west-1.rds.amazonaws.com"
    proxy = {
        "DBProxyName": "leadpipe", "Status": "available", "EngineFamily": "POSTGRESQL", "VpcId": vpc["vpc_id"],
        "VpcSubnetIds": vpc["vpc_subnet_ids"], "Endpoint": endpoint, "DefaultAuthScheme": "IAM_AUTH", "Auth": [],
    }  # fmt: skip
    answer(clients.rds, "DescribeDBProxies", {"DBProxies": [proxy]})
    settings = stage(**vpc, db_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/db-AbCdEf",
                     db_proxy_endpoint=endpoint)  # fmt: skip
    # When preflight checks  Then it says why the worker cannot log in through it
    check = check_proxy(settings, clients.rds)
    assert not check.ok
    assert check.detail == (
        "leadpipe: it authenticates with IAM end to end, which the worker does not use: it needs secrets"
    )


def test_a_proxys_additional_endpoint_is_found_by_its_own_vpc(clients: AccountClients) -> None:
    # Given db_proxy_endpoint naming an additional endpoint of a proxy, in the functions' VPC
    # (DescribeDBProxyEndpoints: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBProxyEndpoints.html)
    vpc = a_vpc(clients.ec2)
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/db-AbCdEf"
    a_proxy(clients.rds, vpc["vpc_subnet_ids"], secret)
    endpoint = "leadpipe-rw.endpoint.proxy-abc.eu-west-1.rds.amazonaws.com"
    answer(clients.rds, "DescribeDBProxyEndpoints", {"DBProxyEndpoints": [{
        "DBProxyEndpointName": "leadpipe-rw", "DBProxyName": "leadpipe", "Status": "available",
        "VpcId": vpc["vpc_id"], "VpcSubnetIds": vpc["vpc_subnet_ids"], "Endpoint": endpoint,
        "TargetRole": "READ_WRITE", "IsDefault": False}]})  # fmt: skip
    # When preflight checks  Then the endpoint's VPC is the one compared
    check = check_proxy(stage(**vpc, db_secret_arn=secret, db_proxy_endpoint=endpoint), clients.rds)
    assert check.ok and check.detail == f"leadpipe is in {vpc['vpc_id']} and logs in with db_secret_arn"


# --- the security groups between the functions and the database
# A security group allows only what its rules name; the database's (or proxy's) group must take the port from the
# functions, and the functions' group must let them out: https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html,
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-network-prereqs.html


def database_secret(secretsmanager: Any, host: str = "db.internal") -> str:
    return secretsmanager.create_secret(Name="leadpipe/db", SecretString=json.dumps({**SECRET_VALUE, "host": host}))[
        "ARN"
    ]


def test_the_proxys_group_must_take_the_port_from_the_functions_group(clients: AccountClients) -> None:
    # Given a proxy whose security group takes nothing yet
    vpc = a_vpc(clients.ec2)
    proxy_group = clients.ec2.create_security_group(GroupName="proxy", Description="proxy", VpcId=vpc["vpc_id"])[
        "GroupId"
    ]
    secret = database_secret(clients.secretsmanager)
    proxy = clients.rds.create_db_proxy(
        DBProxyName="leadpipe", EngineFamily="POSTGRESQL", RoleArn="arn:aws:iam::123456789012:role/proxy",
        Auth=[{"AuthScheme": "SECRETS", "SecretArn": secret, "IAMAuth": "DISABLED"}],
        VpcSubnetIds=vpc["vpc_subnet_ids"], VpcSecurityGroupIds=[proxy_group],
    )["DBProxy"]  # fmt: skip
    settings = stage(**vpc, db_secret_arn=secret, db_proxy_endpoint=proxy["Endpoint"])
    # When preflight checks the path  Then it names the group and the rule to add
    check = check_database_path(settings, clients.ec2, clients.rds, clients.secretsmanager)
    functions = vpc["vpc_security_group_ids"][0]
    assert not check.ok
    assert check.detail == (
        f"the proxy's security groups ({proxy_group}) take no TCP 5432 from {functions}: "
        "add an inbound rule from the functions' security group"
    )
    # And once the proxy's group takes 5432 from the functions' group, the path is there
    from_functions = {
        "IpProtocol": "tcp",
        "FromPort": 5432,
        "ToPort": 5432,
        "UserIdGroupPairs": [{"GroupId": functions}],
    }
    clients.ec2.authorize_security_group_ingress(GroupId=proxy_group, IpPermissions=[from_functions])
    check = check_database_path(settings, clients.ec2, clients.rds, clients.secretsmanager)
    assert check.ok and check.detail == "the functions may reach the proxy on 5432, and the AWS APIs on 443"


def test_functions_let_out_only_to_the_database_cannot_reach_the_aws_apis(clients: AccountClients) -> None:
    # Given an RDS instance that takes 5432 from the VPC's range, and functions whose group lets out 5432 only
    vpc = a_vpc(clients.ec2)
    database_group = clients.ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc["vpc_id"])["GroupId"]
    clients.ec2.authorize_security_group_ingress(GroupId=database_group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}])  # fmt: skip
    instance = clients.rds.create_db_instance(
        DBInstanceIdentifier="crm", Engine="postgres", DBInstanceClass="db.t4g.micro", AllocatedStorage=20,
        MasterUsername="admin", MasterUserPassword="password1234", VpcSecurityGroupIds=[database_group],
    )["DBInstance"]  # fmt: skip
    functions = vpc["vpc_security_group_ids"][0]
    everything = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    clients.ec2.revoke_security_group_egress(GroupId=functions, IpPermissions=[everything])
    clients.ec2.authorize_security_group_egress(GroupId=functions, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}])  # fmt: skip
    settings = stage(**vpc, db_secret_arn=database_secret(clients.secretsmanager, instance["Endpoint"]["Address"]))
    # When preflight checks the path  Then the missing 443 is named; the database's side is fine
    check = check_database_path(settings, clients.ec2, clients.rds, clients.secretsmanager)
    assert not check.ok
    assert check.detail == "the functions' security groups allow no outbound TCP 443 (the AWS APIs)"


# --- the alarm e-mail


def deployed_topic(cloudformation: Any) -> str:
    template = {
        "Resources": {"AlarmTopic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}}},
    }
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    [stack] = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    return stack["Outputs"][0]["OutputValue"]


def test_an_unconfirmed_alarm_email_fails(clients: AccountClients) -> None:
    # Given the stack deployed and the e-mail not yet confirmed: SNS lists it with the SubscriptionArn
    # "PendingConfirmation" (https://docs.aws.amazon.com/sns/latest/api/API_Subscription.html,
    # https://docs.aws.amazon.com/sns/latest/dg/sns-email-notifications.html)
    topic = deployed_topic(clients.cloudformation)
    answer(clients.sns, "ListSubscriptionsByTopic", {"Subscriptions": [{
        "SubscriptionArn": "PendingConfirmation", "Owner": "123456789012", "Protocol": "email",
        "Endpoint": "oncall@example.com", "TopicArn": topic}]})  # fmt: skip
    # When preflight checks  Then it says to click the link
    check = check_alarm_subscription(
        stage(alarm_email="oncall@example.com"), clients.sns, clients.cloudformation, STACK
    )
    assert not check.ok and check.detail.startswith("oncall@example.com has not confirmed: click the link")


def test_a_confirmed_alarm_email_passes(clients: AccountClients) -> None:
    # Given the stack deployed and the e-mail subscribed (moto confirms at once)
    topic = deployed_topic(clients.cloudformation)
    clients.sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    check = check_alarm_subscription(
        stage(alarm_email="OnCall@example.com"), clients.sns, clients.cloudformation, STACK
    )
    assert check.ok and check.detail == f"OnCall@example.com confirmed on {topic}"


def test_a_private_nat_gateway_gives_the_functions_no_way_to_the_aws_apis(clients: AccountClients) -> None:
    # Given "nat" declared and both subnets routing 0.0.0.0/0 to a private NAT gateway: it reaches other VPCs and
    # on-premises networks only, and an internet gateway drops what it sends
    # (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-nat-gateway.html)
    ec2 = clients.ec2
    vpc = a_vpc(ec2)
    nat = ec2.create_nat_gateway(SubnetId=vpc["vpc_subnet_ids"][0], ConnectivityType="private")["NatGateway"]
    table = ec2.create_route_table(VpcId=vpc["vpc_id"])["RouteTable"]["RouteTableId"]
    for subnet in vpc["vpc_subnet_ids"]:
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat["NatGatewayId"])
    # When preflight checks
    check = check_aws_api_routes(stage(**vpc, vpc_aws_api_access="nat"), ec2, clients.cloudformation, STACK)
    # Then each subnet is named, with why the private NAT gateway does not count
    assert not check.ok
    for subnet in vpc["vpc_subnet_ids"]:
        assert (
            f"{subnet} routes 0.0.0.0/0 to the private NAT gateway {nat['NatGatewayId']}, which does not reach the "
            "internet" in check.detail
        )
