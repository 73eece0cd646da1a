"""The public edge: REST API, the ingest function behind it, an optional web ACL and captcha check."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from functions.contract.observability import INGEST_SERVICE, STAGE_VARIABLE
from infra.config import PipelineSettings
from infra.cors import CORS_HEADERS, CORS_MAX_AGE_SECONDS, CORS_METHODS
from infra.function import PipelineFunction, PipelineFunctionProps, retention_days
from infra.gateway_responses import GATEWAY_ANSWERS, WAF_RATE_LIMITED
from infra.imported_secret import ImportedSecret
from infra.nag import acknowledge
from infra.waf_logging import WafBlockedRequestLog

WAF_RATE_LIMITED_BODY = "rate-limited"  # the web ACL's key for the per-IP rule's JSON body
# AWS WAF managed rule groups, by the name used in the settings.
MANAGED_RULE_GROUPS = {
    "ip_reputation": "AWSManagedRulesAmazonIpReputationList",
    "bot_control": "AWSManagedRulesBotControlRuleSet",
}


class LeadApi(Construct):
    """`POST /leads` on a regional REST API, throttled per stage, logged without bodies or IPs.

    Public attributes: `rest_api`, `ingest` (a PipelineFunction), `leads_url`, `web_acl` (or None),
    `captcha_secret` (or None).
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: PipelineSettings, queue: sqs.IQueue) -> None:
        super().__init__(scope, construct_id)
        self.ingest = self._ingest_function(settings, queue)
        queue.grant_send_messages(self.ingest.function)
        self.captcha_secret = None
        if settings.captcha_provider and settings.captcha_secret_arn:
            self.captcha_secret = ImportedSecret(settings.captcha_secret_arn, settings.captcha_secret_kms_key_arn)
            self.captcha_secret.grant_read(self.ingest.function)
        self.rest_api = self._rest_api(settings)
        self.execution_logs = _execution_log_group(self, settings, self.rest_api)
        leads = self.rest_api.root.add_resource("leads")
        leads.add_method("POST", apigw.LambdaIntegration(self.ingest.function))
        self.leads_url = f"{self.rest_api.url}leads"
        self._add_gateway_responses(settings)

        self.web_acl = (
            self._web_acl(settings)
            if settings.waf_requests_per_5_minutes_per_ip or settings.waf_managed_rule_groups
            else None
        )
        self._acknowledge_findings()

    def _ingest_function(self, settings: PipelineSettings, queue: sqs.IQueue) -> PipelineFunction:
        return PipelineFunction(
            self,
            "Ingest",
            props=PipelineFunctionProps(
                code_folder="ingest",
                handler="functions.ingest.handler.lambda_handler",
                service_name=INGEST_SERVICE,
                description="Validates a lead and puts it on the leads queue",
                memory_mb=settings.ingest_memory_mb,
                timeout=cdk.Duration.seconds(settings.ingest_timeout_seconds),
                log_retention_days=settings.log_retention_days,
                environment={
                    "LEADS_QUEUE_URL": queue.queue_url,
                    "ALLOWED_ORIGINS": ",".join(settings.allowed_origins),
                    "MAX_BODY_BYTES": str(settings.max_body_bytes),
                    "HONEYPOT_FIELD": settings.honeypot_field,
                    "METRIC_CAMPAIGNS": ",".join(settings.metric_campaigns),
                    "INGEST_TIMEOUT_SECONDS": str(settings.ingest_timeout_seconds),
                    STAGE_VARIABLE: settings.stage,  # the stage's own metrics (observability.stage_dimension)
                    **_captcha_environment(settings),
                },
            ),
        )

    def _rest_api(self, settings: PipelineSettings) -> apigw.RestApi:
        """Regional, throttled per stage, access-logged without bodies, IPs or callers."""
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention_days(settings.log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        return apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"leadpipe-{settings.stage}",
            description="Leadpipe: landing-page forms POST leads here",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # API Gateway's CloudWatch role is one per account and region: only one stage's stack may set it.
            cloud_watch_role=settings.api_gateway_cloudwatch_role == "create",
            # Deleting this stage's stack keeps the role the other stages' logging uses.
            cloud_watch_role_removal_policy=(
                cdk.RemovalPolicy.RETAIN if settings.api_gateway_cloudwatch_role == "create" else None
            ),
            deploy_options=apigw.StageOptions(
                stage_name=settings.stage,
                throttling_rate_limit=settings.throttle_rate_per_second,
                throttling_burst_limit=settings.throttle_burst,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # would log request bodies: personal data
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                # No IP, caller or user: they are personal data and the WAF rule needs none of them.
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=False,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
            ),
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=list(settings.allowed_origins),
                allow_methods=CORS_METHODS,
                allow_headers=CORS_HEADERS,
                max_age=cdk.Duration.seconds(CORS_MAX_AGE_SECONDS),
            ),
        )

    def _acknowledge_findings(self) -> None:
        """cdk-nag findings that do not apply to a public form's endpoint, each with its reason."""
        acknowledge(
            self.rest_api,
            (
                "AwsSolutions-APIG2",
                "Bodies are validated by the ingest function: JSON and form posts share one pydantic model that an "
                "API Gateway model cannot express for forms.",
            ),
            (
                "AwsSolutions-APIG4",
                "A public landing-page form has no caller identity; abuse is bounded by stage throttling, the "
                "optional WAF rule and the honeypot.",
            ),
            ("AwsSolutions-COG4", "A public landing-page form has no Cognito user to authorise."),
            (
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                "The policy API Gateway's account-level logging role requires; access logs need it.",
            ),
        )
        if self.web_acl is None:
            acknowledge(
                self.rest_api,
                (
                    "AwsSolutions-APIG3",
                    "WAF is optional (waf_requests_per_5_minutes_per_ip, waf_managed_rule_groups); stage throttling "
                    "caps load without it.",
                ),
            )

    def _add_gateway_responses(self, settings: PipelineSettings) -> None:
        """API Gateway's own answers (throttle, unknown route, WAF, too large, timeouts) in the project's shape."""
        for answer in GATEWAY_ANSWERS:
            self.rest_api.add_gateway_response(
                f"Gateway{answer.response_type.title().replace('_', '')}",
                type=apigw.ResponseType.of(answer.response_type),
                status_code=str(answer.status) if answer.status else None,
                # Static values are quoted; an unquoted one would be read as a request parameter.
                response_headers={
                    name: f"'{value}'" for name, value in answer.headers(settings.allowed_origins).items()
                },
                templates={"application/json": answer.body()},
            )

    def _web_acl(self, settings: PipelineSettings) -> wafv2.CfnWebACL:
        """IP reputation first (cheapest), then the per-IP rate rule, then Bot Control (priced per request
        inspected)."""
        metric_prefix = f"leadpipe-{settings.stage}"
        rules = []
        if "ip_reputation" in settings.waf_managed_rule_groups:
            rules.append(_managed_rule_group("ip_reputation", metric_prefix))
        if settings.waf_requests_per_5_minutes_per_ip:
            # The managed equivalent of an nginx `limit_req` zone keyed on the client address.
            rules.append(
                wafv2.CfnWebACL.RuleProperty(
                    name="per-ip-rate",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(
                        block=wafv2.CfnWebACL.BlockActionProperty(
                            custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                                response_code=WAF_RATE_LIMITED.status,
                                custom_response_body_key=WAF_RATE_LIMITED_BODY,
                                response_headers=[
                                    wafv2.CfnWebACL.CustomHTTPHeaderProperty(name=name, value=value)
                                    for name, value in WAF_RATE_LIMITED.headers(settings.allowed_origins).items()
                                ],
                            )
                        )
                    ),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=settings.waf_requests_per_5_minutes_per_ip, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=_visibility(f"{metric_prefix}-per-ip-rate"),
                )
            )
        if "bot_control" in settings.waf_managed_rule_groups:
            rules.append(_managed_rule_group("bot_control", metric_prefix))
        web_acl = wafv2.CfnWebACL(
            self,
            "PerIpRateLimit",  # the logical id of the first web ACL: kept, so deployed stages keep theirs
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{metric_prefix}-waf"),
            rules=[_with_priority(rule, priority) for priority, rule in enumerate(rules)],
            custom_response_bodies={
                WAF_RATE_LIMITED_BODY: wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON", content=WAF_RATE_LIMITED.body()
                )
            }
            if settings.waf_requests_per_5_minutes_per_ip
            else None,
        )
        wafv2.CfnWebACLAssociation(
            self,
            "PerIpRateLimitAssociation",
            resource_arn=self.rest_api.deployment_stage.stage_arn,
            web_acl_arn=web_acl.attr_arn,
        )
        self.waf_logs = WafBlockedRequestLog(self, "WafLogs", settings=settings, web_acl=web_acl)
        return web_acl


def _execution_log_group(scope: Construct, settings: PipelineSettings, rest_api: apigw.RestApi) -> logs.LogGroup:
    """The stage's execution log group, made by the stack with a retention before API Gateway would make it
    on its first error, kept forever."""
    log_group = logs.LogGroup(
        scope,
        "ExecutionLogs",
        log_group_name=f"API-Gateway-Execution-Logs_{rest_api.rest_api_id}/{settings.stage}",
        retention=retention_days(settings.log_retention_days),
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    rest_api.deployment_stage.node.add_dependency(log_group)
    return log_group


def _managed_rule_group(group: str, metric_prefix: str) -> wafv2.CfnWebACL.RuleProperty:
    name = MANAGED_RULE_GROUPS[group]
    configs = None
    if group == "bot_control":
        # COMMON: self-identifying and unverified bots (TARGETED costs more and challenges browsers).
        configs = [
            wafv2.CfnWebACL.ManagedRuleGroupConfigProperty(
                aws_managed_rules_bot_control_rule_set=wafv2.CfnWebACL.AWSManagedRulesBotControlRuleSetProperty(
                    inspection_level="COMMON"
                )
            )
        ]
    return wafv2.CfnWebACL.RuleProperty(
        name=group.replace("_", "-"),
        priority=0,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),  # the group's own block actions apply
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS", name=name, managed_rule_group_configs=configs
            )
        ),
        visibility_config=_visibility(f"{metric_prefix}-{group.replace('_', '-')}"),
    )


def _with_priority(rule: wafv2.CfnWebACL.RuleProperty, priority: int) -> wafv2.CfnWebACL.RuleProperty:
    return wafv2.CfnWebACL.RuleProperty(
        name=rule.name,
        priority=priority,
        statement=rule.statement,
        visibility_config=rule.visibility_config,
        action=rule.action,
        override_action=rule.override_action,
    )


def _captcha_environment(settings: PipelineSettings) -> dict[str, str]:
    """The ingest's captcha settings; none at all when the stage checks no captcha."""
    if not settings.captcha_provider or not settings.captcha_secret_arn:
        return {}
    # A third of the function's time, at most 2 s: the rest is the SQS client's budget (see the ingest's settings).
    timeout = min(2.0, settings.ingest_timeout_seconds / 3)
    return {
        "CAPTCHA_PROVIDER": settings.captcha_provider,
        "CAPTCHA_SECRET_ARN": settings.captcha_secret_arn,
        "CAPTCHA_MIN_SCORE": f"{settings.captcha_min_score:g}",
        "CAPTCHA_FAIL_OPEN": "true" if settings.captcha_fail_open else "false",
        "CAPTCHA_TIMEOUT_SECONDS": f"{timeout:g}",
    }


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=False
    )
