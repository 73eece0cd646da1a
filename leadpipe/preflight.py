"""`leadpipe preflight --stage S`: will this stage deploy, and work, in this account? Read-only calls only.

Each check gives one `Check`: ok and what it found, or what to do. The clients are passed in
(`AccountClients`), so the tests hand in moto-backed or stubbed ones.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from infra.config import LAMBDA_UNRESERVED_MINIMUM, PipelineSettings

# What the worker reads from the RDS-format secret (functions/worker/credentials.py).
SECRET_FIELDS = ("host", "port", "username", "password", "dbname")
# The AWS APIs the functions in the VPC call: infra/aws_api_endpoints.py's lists (a test holds the two equal), named
# here so that the CLI does not start CDK's Node runtime to read them.
VPC_SERVICES = ("lambda", "secretsmanager", "ssm")
EVENTS_VPC_SERVICES = ("events", "sqs")  # the worker's, with events_enabled: PutEvents and its hand-off queue
# Route targets that carry a Lambda ENI's traffic out: an internet gateway does not (the ENI has no public IP).
NAT_TARGETS = ("NatGatewayId", "TransitGatewayId", "InstanceId", "NetworkInterfaceId")
AWS_MANAGED_SECRETS_KEY = "alias/aws/secretsmanager"
HTTPS_PORT = 443  # the AWS APIs, through endpoints or a NAT


@dataclass(frozen=True)
class Check:
    """One line of the report: `ok` and what was found, or what to do."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


@dataclass(frozen=True)
class AccountClients:
    """boto3 clients of the target account and Region."""

    lambda_: Any
    apigateway: Any
    ec2: Any
    secretsmanager: Any
    kms: Any
    rds: Any
    sns: Any
    cloudformation: Any


def run_preflight(settings: PipelineSettings, clients: AccountClients, stack_name: str) -> list[Check]:
    """Every check, in the order a deploy meets them. An AWS error in one check fails that check only."""
    checks: list[tuple[str, Callable[[], Check]]] = [
        ("concurrency", lambda: check_concurrency(settings, clients.lambda_, clients.cloudformation, stack_name)),
        ("api throttle", lambda: check_api_throttle(settings, clients.apigateway)),
        (
            "api logging role",
            lambda: check_api_logging_role(settings, clients.apigateway, clients.cloudformation, stack_name),
        ),
        ("vpc", lambda: check_vpc(settings, clients.ec2)),
        ("aws api routes", lambda: check_aws_api_routes(settings, clients.ec2, clients.cloudformation, stack_name)),
        ("database secret", lambda: check_secret(settings, clients.secretsmanager, clients.kms)),
        ("captcha secret", lambda: check_captcha_secret(settings, clients.secretsmanager, clients.kms)),
        ("rds proxy", lambda: check_proxy(settings, clients.rds)),
        ("database path", lambda: check_database_path(settings, clients.ec2, clients.rds, clients.secretsmanager)),
        ("alarm e-mail", lambda: check_alarm_subscription(settings, clients.sns, clients.cloudformation, stack_name)),
    ]
    results = []
    for name, check in checks:
        try:
            results.append(check())
        except ClientError as error:
            said = error.response["Error"]
            results.append(Check(name, False, f"AWS said {said.get('Code')}: {said.get('Message')}"))
    return results


def check_concurrency(settings: PipelineSettings, lambda_client: Any, cloudformation: Any, stack_name: str) -> Check:
    limit = lambda_client.get_account_settings()["AccountLimit"]
    unreserved, total = limit["UnreservedConcurrentExecutions"], limit["ConcurrentExecutions"]
    # A deployed stack's reservations are already out of the unreserved pool: a new deploy replaces them.
    held = sum(
        _reserved(lambda_client, name) for name in _stack_resources(cloudformation, stack_name, "AWS::Lambda::Function")
    )
    wanted = settings.reserved_concurrency_total
    left = unreserved + held - wanted
    if left >= LAMBDA_UNRESERVED_MINIMUM:
        return Check("concurrency", True, f"reserving {wanted} leaves {left} of {total} unreserved (Lambda keeps 100)")
    return Check(
        "concurrency",
        False,
        f"reserving {wanted} would leave {left} of {total} unreserved, below Lambda's minimum of 100: ask AWS "
        f"(Service Quotas, Lambda 'Concurrent executions') for {total + LAMBDA_UNRESERVED_MINIMUM - left} or more",
    )


def check_api_throttle(settings: PipelineSettings, apigateway: Any) -> Check:
    account = apigateway.get_account().get("throttleSettings", {})
    rate, burst = account.get("rateLimit"), account.get("burstLimit")
    if rate is None or burst is None:
        return Check("api throttle", False, "API Gateway returned no account throttle: check the Region")
    too_high = []
    if settings.throttle_rate_per_second > rate:
        too_high.append(
            f"throttle_rate_per_second {settings.throttle_rate_per_second:g} is above the account's {rate:g}"
        )
    if settings.throttle_burst > burst:
        too_high.append(f"throttle_burst {settings.throttle_burst} is above the account's {burst}")
    if too_high:
        return Check(
            "api throttle", False, "; ".join(too_high) + ": lower the stage's throttle, or ask AWS for a higher quota"
        )
    return Check(
        "api throttle",
        True,
        f"stage {settings.throttle_rate_per_second:g}/s burst {settings.throttle_burst}, within the account's "
        f"{rate:g}/s burst {burst} (shared by every REST API of the account in this Region)",
    )


def check_api_logging_role(settings: PipelineSettings, apigateway: Any, cloudformation: Any, stack_name: str) -> Check:
    """API Gateway has one CloudWatch Logs role per account and Region: one stack sets it, the others use it."""
    choice = settings.api_gateway_cloudwatch_role
    role = apigateway.get_account().get("cloudwatchRoleArn")
    ours = _stack_resources(cloudformation, stack_name, "AWS::ApiGateway::Account")
    if choice == "existing":
        if role:
            return Check("api logging role", True, f"uses the account's {role}")
        return Check(
            "api logging role",
            False,
            'api_gateway_cloudwatch_role is "existing" but the account has no API Gateway CloudWatch role: '
            'set it to "create" on one stage',
        )
    if role and not ours:
        return Check(
            "api logging role",
            False,
            f'the account already has {role}, set by something else: set api_gateway_cloudwatch_role to "existing", '
            "or this stack replaces it",
        )
    return Check("api logging role", True, "this stack sets the account's API Gateway CloudWatch role")


def check_vpc(settings: PipelineSettings, ec2: Any) -> Check:
    """The subnets and security groups are in vpc_id, the subnets in the zones the settings give."""
    if not settings.in_vpc:
        return Check("vpc", True, "no VPC: the functions run outside one")
    subnets = ec2.describe_subnets(SubnetIds=settings.vpc_subnet_ids)["Subnets"]
    zones = dict(zip(settings.vpc_subnet_ids, settings.vpc_availability_zones, strict=True))
    problems = [f"{s['SubnetId']} is in {s['VpcId']}" for s in subnets if s["VpcId"] != settings.vpc_id] + [
        f"{s['SubnetId']} is in {s['AvailabilityZone']}, not {zones[s['SubnetId']]}"
        for s in subnets
        if s["AvailabilityZone"] != zones[s["SubnetId"]]
    ]
    groups = ec2.describe_security_groups(GroupIds=settings.vpc_security_group_ids)["SecurityGroups"]
    problems += [f"{g['GroupId']} is in {g['VpcId']}" for g in groups if g["VpcId"] != settings.vpc_id]
    if problems:
        return Check(
            "vpc",
            False,
            "; ".join(problems) + ": fix vpc_subnet_ids, vpc_availability_zones or vpc_security_group_ids",
        )
    return Check("vpc", True, f"{len(subnets)} subnet(s) and {len(groups)} security group(s) in {settings.vpc_id}")


def vpc_services(settings: PipelineSettings) -> tuple[str, ...]:
    """The AWS APIs the stage's VPC functions call, by their endpoint names."""
    return tuple(sorted(VPC_SERVICES + (EVENTS_VPC_SERVICES if settings.events_enabled else ())))


def check_aws_api_routes(settings: PipelineSettings, ec2: Any, cloudformation: Any, stack_name: str) -> Check:
    """The VPC functions can reach every AWS API they call: endpoints this stack creates, or the VPC's own route."""
    if not settings.in_vpc:
        return Check("aws api routes", True, "no VPC: the functions reach the AWS APIs directly")
    region = ec2.meta.region_name
    ours = set(_stack_resources(cloudformation, stack_name, "AWS::EC2::VPCEndpoint"))
    in_vpc = _paged(
        ec2, "describe_vpc_endpoints", "VpcEndpoints", Filters=[{"Name": "vpc-id", "Values": [settings.vpc_id]}]
    )

    def private_dns(endpoints: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Interface endpoints with private DNS in this Region, by service name."""
        return {
            e["ServiceName"].rsplit(".", 1)[-1]: e
            for e in endpoints
            if e.get("VpcEndpointType") == "Interface"
            and e.get("PrivateDnsEnabled")
            and e["ServiceName"].startswith(f"com.amazonaws.{region}.")
        }

    others = private_dns([e for e in in_vpc if e["VpcEndpointId"] not in ours])
    if settings.vpc_aws_api_access == "nat":
        return _declared_route(settings, ec2, others)
    if ours:  # deployed: the stack's own endpoints must serve every service
        return _stack_endpoints_serve(settings, private_dns([e for e in in_vpc if e["VpcEndpointId"] in ours]))
    return _endpoints_can_be_created(settings, ec2, others)


def _stack_endpoints_serve(settings: PipelineSettings, endpoints: dict[str, dict[str, Any]]) -> Check:
    missing = [s for s in vpc_services(settings) if endpoints.get(s, {}).get("State", "").lower() != "available"]
    if missing:
        return Check(
            "aws api routes",
            False,
            f"the stack's endpoints for {', '.join(missing)} are missing or not available: deploy again, and see the "
            "VPC console for the endpoints' state",
        )
    return Check(
        "aws api routes", True, f"the stack's endpoints serve {', '.join(vpc_services(settings))} in {settings.vpc_id}"
    )


def _endpoints_can_be_created(settings: PipelineSettings, ec2: Any, private_dns: dict[str, Any]) -> Check:
    # Private DNS of an interface endpoint needs both VPC DNS attributes, and one such endpoint per service and VPC.
    problems = [
        f"the VPC's {attribute} is off"
        for attribute, key in (("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames"))
        if not ec2.describe_vpc_attribute(VpcId=settings.vpc_id, Attribute=attribute)[key]["Value"]
    ]
    taken = [s for s in vpc_services(settings) if s in private_dns]
    if taken:
        ids = ", ".join(private_dns[s]["VpcEndpointId"] for s in taken)
        problems.append(
            f"the VPC has endpoints with private DNS for {', '.join(taken)} ({ids}), so the stack cannot create "
            'its own: set vpc_aws_api_access to "nat" (the VPC\'s own endpoints serve the functions)'
        )
    if problems:
        return Check("aws api routes", False, "; ".join(problems))
    return Check(
        "aws api routes",
        True,
        f"the stack creates endpoints for {', '.join(vpc_services(settings))} in {settings.vpc_id}",
    )


def _declared_route(settings: PipelineSettings, ec2: Any, private_dns: dict[str, Any]) -> Check:
    routed = [s for s in vpc_services(settings) if private_dns.get(s, {}).get("State", "").lower() == "available"]
    needs_nat = [s for s in vpc_services(settings) if s not in routed]
    if not needs_nat:
        return Check("aws api routes", True, f"the VPC's own endpoints serve {', '.join(vpc_services(settings))}")
    tables = _paged(
        ec2, "describe_route_tables", "RouteTables", Filters=[{"Name": "vpc-id", "Values": [settings.vpc_id]}]
    )
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), {})
    by_subnet = {a["SubnetId"]: t for t in tables for a in t.get("Associations", []) if a.get("SubnetId")}
    private_nats = _private_nat_gateways(ec2, tables)
    problems = []
    for subnet in settings.vpc_subnet_ids:
        table = by_subnet.get(subnet, main)  # a subnet with no association of its own uses the main route table
        default = [r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        if any(r.get("State") == "active" and any(r.get(target) for target in NAT_TARGETS) for r in default):
            private = [r["NatGatewayId"] for r in default if r.get("NatGatewayId") in private_nats]
            if not private:
                continue
            problems.append(
                f"{subnet} routes 0.0.0.0/0 to the private NAT gateway {private[0]}, which does not reach the internet"
            )
            continue
        if any(str(r.get("GatewayId", "")).startswith("igw-") for r in default):
            problems.append(f"{subnet} routes 0.0.0.0/0 to an internet gateway, which gives a Lambda ENI no way out")
        else:
            problems.append(f"{subnet} has no active 0.0.0.0/0 route to a NAT gateway")
    if problems:
        return Check(
            "aws api routes",
            False,
            f"{', '.join(needs_nat)} need a NAT route: " + "; ".join(problems) + " (or set vpc_aws_api_access to "
            '"interface_endpoints" and the stack creates endpoints)',
        )
    via = f"; endpoints for {', '.join(routed)}" if routed else ""
    return Check("aws api routes", True, f"every subnet routes 0.0.0.0/0 through a NAT for {', '.join(needs_nat)}{via}")


def _private_nat_gateways(ec2: Any, tables: list[dict[str, Any]]) -> set[str]:
    """The NAT gateways routed to whose ConnectivityType is "private": they reach other VPCs and on-premises
    networks only, never the internet."""
    ids = sorted({r["NatGatewayId"] for t in tables for r in t.get("Routes", []) if r.get("NatGatewayId")})
    if not ids:
        return set()
    gateways = _paged(ec2, "describe_nat_gateways", "NatGateways", NatGatewayIds=ids)
    return {g["NatGatewayId"] for g in gateways if g.get("ConnectivityType") == "private"}


def check_secret(settings: PipelineSettings, secretsmanager: Any, kms: Any) -> Check:
    if not settings.db_secret_arn:
        return Check(
            "database secret", True, "no db_secret_arn: the worker's event source stays disabled (no database)"
        )
    try:
        described = secretsmanager.describe_secret(SecretId=settings.db_secret_arn)
        text = secretsmanager.get_secret_value(SecretId=settings.db_secret_arn).get("SecretString") or ""
    except ClientError as error:
        if error.response["Error"].get("Code") == "ResourceNotFoundException":
            detail = f"{settings.db_secret_arn} does not exist: create it, or fix db_secret_arn"
            if re.search(r"-[A-Za-z0-9]{6}$", settings.db_secret_arn):
                detail += " (a name that itself ends in '-' and 6 characters needs the complete ARN)"
            return Check("database secret", False, detail)
        raise
    try:
        fields = json.loads(text)
    except json.JSONDecodeError:
        fields = None
    name = described["Name"]
    if not isinstance(fields, dict):
        return Check(
            "database secret", False, f"{name} is not JSON: store {{{', '.join(SECRET_FIELDS)}}} (the RDS format)"
        )
    missing = [f for f in SECRET_FIELDS if fields.get(f) in (None, "")]
    if missing:
        return Check("database secret", False, f"{name} lacks {', '.join(missing)}: add them (the worker reads them)")
    problem = _key_problem(settings.db_secret_kms_key_arn, "db_secret_kms_key_arn", described, kms)
    if problem:
        return Check("database secret", False, f"{name}: {problem}")
    key = described.get("KmsKeyId") or "the AWS managed key aws/secretsmanager"
    return Check("database secret", True, f"{name} has {', '.join(SECRET_FIELDS)}; encrypted with {key}")


def check_captcha_secret(settings: PipelineSettings, secretsmanager: Any, kms: Any) -> Check:
    """The captcha secret exists, holds a value, and its KMS key is the one the settings name (or AWS-managed)."""
    if not settings.captcha_provider or not settings.captcha_secret_arn:
        return Check("captcha secret", True, "no captcha: nothing to read")
    try:
        described = secretsmanager.describe_secret(SecretId=settings.captcha_secret_arn)
        text = secretsmanager.get_secret_value(SecretId=settings.captcha_secret_arn).get("SecretString")
    except ClientError as error:
        if error.response["Error"].get("Code") == "ResourceNotFoundException":
            return Check(
                "captcha secret",
                False,
                f"{settings.captcha_secret_arn} does not exist: create it with the verifier's key",
            )
        raise
    if not text or not text.strip():
        return Check("captcha secret", False, f"{described['Name']} is empty: store the verifier's secret key in it")
    named = settings.captcha_secret_kms_key_arn
    problem = _key_problem(named, "captcha_secret_kms_key_arn", described, kms)
    if problem:
        return Check("captcha secret", False, f"{described['Name']}: {problem}")
    return Check("captcha secret", True, f"{described['Name']} holds the {settings.captcha_provider} secret key")


def _key_problem(named: str | None, setting: str, described: dict[str, Any], kms: Any) -> str | None:
    """What is wrong between the secret's KMS key and the key setting `setting` (holding `named`), if anything."""
    key_id = described.get("KmsKeyId")
    # DescribeSecret leaves KmsKeyId out when the secret uses the AWS managed key aws/secretsmanager.
    if not key_id or key_id.endswith(AWS_MANAGED_SECRETS_KEY):
        return f"it uses the AWS managed key, not {named}: unset {setting}" if named else None
    key = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    if key.get("KeyManager") == "AWS" or named == key["Arn"]:
        return None
    return (
        f"it is encrypted with the customer-managed key {key['Arn']}: set {setting} to it "
        "(the functions' roles need kms:Decrypt on that key)"
    )


def check_proxy(settings: PipelineSettings, rds: Any) -> Check:
    endpoint = settings.db_proxy_endpoint
    if not endpoint:
        return Check("rds proxy", True, "no RDS Proxy: the functions connect to the database directly")
    proxy = next((p for p in _paged(rds, "describe_db_proxies", "DBProxies") if p.get("Endpoint") == endpoint), None)
    vpc_id = proxy.get("VpcId") if proxy else None
    if proxy is None:  # a proxy's additional endpoint, which has a VPC of its own
        extra = next(
            (
                e
                for e in _paged(rds, "describe_db_proxy_endpoints", "DBProxyEndpoints")
                if e.get("Endpoint") == endpoint
            ),
            None,
        )
        if extra is None:
            return Check("rds proxy", False, f"no RDS Proxy here has the endpoint {endpoint}: fix db_proxy_endpoint")
        vpc_id = extra.get("VpcId")
        [proxy] = rds.describe_db_proxies(DBProxyName=extra["DBProxyName"])["DBProxies"]
    auth = [a for a in proxy.get("Auth", []) if _same_secret(a.get("SecretArn"), settings.db_secret_arn)]
    problems = []
    if vpc_id != settings.vpc_id:
        problems.append(f"it is in {vpc_id}, not in vpc_id {settings.vpc_id} (a proxy answers only inside its VPC)")
    if proxy.get("DefaultAuthScheme") == "IAM_AUTH":
        problems.append("it authenticates with IAM end to end, which the worker does not use: it needs secrets")
    elif not auth:
        problems.append("db_secret_arn is not one of its secrets: add it to the proxy's authentication")
    elif all(a.get("IAMAuth") == "REQUIRED" for a in auth):
        problems.append("it requires IAM authentication, which the worker does not use: set IAMAuth to DISABLED")
    if problems:
        return Check("rds proxy", False, f"{proxy['DBProxyName']}: " + "; ".join(problems))
    return Check("rds proxy", True, f"{proxy['DBProxyName']} is in {vpc_id} and logs in with db_secret_arn")


def _same_secret(arn: str | None, setting: str | None) -> bool:
    """The same secret: equal ARNs, or `setting` is the partial ARN (without the "-" and 6 characters Secrets
    Manager appends) of `arn`."""
    if not arn or not setting:
        return False
    return arn == setting or (arn[:-7] == setting and re.fullmatch(r"-[A-Za-z0-9]{6}", arn[-7:]) is not None)


def check_database_path(settings: PipelineSettings, ec2: Any, rds: Any, secretsmanager: Any) -> Check:
    """The functions' security groups let them out to the database's port and to 443 (the AWS APIs), and the
    database's (or the proxy's) security groups let them in on that port."""
    if not settings.in_vpc or not settings.db_secret_arn:
        return Check("database path", True, "no VPC: nothing between the functions and the database to check here")
    secret = json.loads(secretsmanager.get_secret_value(SecretId=settings.db_secret_arn).get("SecretString") or "{}")
    port = int(secret.get("port", 5432))
    if settings.db_proxy_endpoint:
        target = _proxy_by_endpoint(rds, settings.db_proxy_endpoint)
        where, target_groups = "the proxy", (target or {}).get("VpcSecurityGroupIds", [])
    else:
        where, target_groups = f"the database {secret.get('host')}", _database_security_groups(rds, secret.get("host"))
    if not target_groups:
        return Check(
            "database path",
            True,
            f"{where} is not an RDS resource of this account and Region: make sure it takes port {port} from the "
            "functions' subnets",
        )
    ours = settings.vpc_security_group_ids
    problems = []
    egress = [r for g in _groups(ec2, ours) for r in g.get("IpPermissionsEgress", [])]
    for needed, what in ((port, "the database"), (HTTPS_PORT, "the AWS APIs")):
        if not any(_covers(rule, needed) for rule in egress):
            problems.append(f"the functions' security groups allow no outbound TCP {needed} ({what})")
    subnets = [s["CidrBlock"] for s in ec2.describe_subnets(SubnetIds=settings.vpc_subnet_ids)["Subnets"]]
    ingress = [r for g in _groups(ec2, target_groups) for r in g.get("IpPermissions", [])]
    if not any(_covers(rule, port) and _from_functions(rule, ours, subnets) for rule in ingress):
        problems.append(
            f"{where}'s security groups ({', '.join(target_groups)}) take no TCP {port} from {', '.join(ours)}: "
            "add an inbound rule from the functions' security group"
        )
    if problems:
        return Check("database path", False, "; ".join(problems))
    return Check("database path", True, f"the functions may reach {where} on {port}, and the AWS APIs on 443")


def _proxy_by_endpoint(rds: Any, endpoint: str) -> dict[str, Any] | None:
    return next((p for p in _paged(rds, "describe_db_proxies", "DBProxies") if p.get("Endpoint") == endpoint), None)


def _database_security_groups(rds: Any, host: str | None) -> list[str]:
    """The security groups of the RDS instance or Aurora cluster answering at `host`; none if there is none."""
    for instance in _paged(rds, "describe_db_instances", "DBInstances"):
        if instance.get("Endpoint", {}).get("Address") == host:
            return [g["VpcSecurityGroupId"] for g in instance.get("VpcSecurityGroups", [])]
    for cluster in _paged(rds, "describe_db_clusters", "DBClusters"):
        if host in (cluster.get("Endpoint"), cluster.get("ReaderEndpoint")):
            return [g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups", [])]
    return []


def _groups(ec2: Any, group_ids: list[str]) -> list[dict[str, Any]]:
    return ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"] if group_ids else []


def _covers(rule: dict[str, Any], port: int) -> bool:
    if rule.get("IpProtocol") == "-1":
        return True
    return rule.get("IpProtocol") == "tcp" and rule.get("FromPort", 0) <= port <= rule.get("ToPort", -1)


def _from_functions(rule: dict[str, Any], function_groups: list[str], subnet_cidrs: list[str]) -> bool:
    """The rule's sources include a functions' security group, or address ranges holding all their subnets."""
    if any(pair.get("GroupId") in function_groups for pair in rule.get("UserIdGroupPairs", [])):
        return True
    ranges = [ipaddress.ip_network(r["CidrIp"]) for r in rule.get("IpRanges", []) if r.get("CidrIp")]
    return all(any(ipaddress.ip_network(cidr).subnet_of(r) for r in ranges) for cidr in subnet_cidrs)


def check_alarm_subscription(settings: PipelineSettings, sns: Any, cloudformation: Any, stack_name: str) -> Check:
    outputs = stack_outputs_or_none(cloudformation, stack_name)
    if outputs is None:
        if not settings.alarm_email:
            return Check("alarm e-mail", False, "no alarm_email: nobody will be paged; set it (or subscribe a pager)")
        return Check(
            "alarm e-mail",
            True,
            f"{stack_name} is not deployed yet: after the deploy, confirm AWS's e-mail to {settings.alarm_email}",
        )
    topic = outputs.get("AlarmTopicArn")
    if not topic:
        return Check("alarm e-mail", False, f"{stack_name} has no AlarmTopicArn output: deploy this version")
    subscriptions = _paged(sns, "list_subscriptions_by_topic", "Subscriptions", TopicArn=topic)
    # An unconfirmed subscription is listed with the SubscriptionArn "PendingConfirmation".
    confirmed = [s for s in subscriptions if s.get("SubscriptionArn", "").startswith("arn:")]
    if settings.alarm_email:
        address = settings.alarm_email.lower()
        mine = [s for s in subscriptions if s.get("Protocol") == "email" and s.get("Endpoint", "").lower() == address]
        if not mine:
            return Check("alarm e-mail", False, f"{settings.alarm_email} is not subscribed to {topic}: deploy again")
        if not any(s in confirmed for s in mine):
            return Check(
                "alarm e-mail",
                False,
                f"{settings.alarm_email} has not confirmed: click the link in AWS's e-mail (look in spam), then run "
                "preflight again",
            )
        return Check("alarm e-mail", True, f"{settings.alarm_email} confirmed on {topic}")
    if confirmed:
        return Check("alarm e-mail", True, f"{len(confirmed)} confirmed subscription(s) on {topic}")
    return Check("alarm e-mail", False, f"nobody has confirmed a subscription to {topic}: set alarm_email")


def stack_outputs_or_none(cloudformation: Any, stack_name: str) -> dict[str, str] | None:
    """The stack's outputs, or None when it is not deployed."""
    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in error.response["Error"].get("Message", ""):
            return None
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _stack_resources(cloudformation: Any, stack_name: str, resource_type: str) -> list[str]:
    """Physical ids of the stack's resources of one type; none when the stack is not deployed."""
    try:
        resources = _paged(cloudformation, "list_stack_resources", "StackResourceSummaries", StackName=stack_name)
    except ClientError as error:
        if "does not exist" in error.response["Error"].get("Message", ""):
            return []
        raise
    return [
        r["PhysicalResourceId"]
        for r in resources
        if r.get("ResourceType") == resource_type and r.get("PhysicalResourceId")
    ]


def _reserved(lambda_client: Any, function_name: str) -> int:
    return lambda_client.get_function_concurrency(FunctionName=function_name).get("ReservedConcurrentExecutions", 0)


def _paged(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    if client.can_paginate(operation):
        return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page.get(key, [])]
    return getattr(client, operation)(**kwargs).get(key, [])
