"""The public edge: REST API, the ingest function behind it, and an optional per-IP WAF rule."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from functions.contract.observability import INGEST_SERVICE
from infra.config import PipelineSettings
from infra.function import PipelineFunction, PipelineFunctionProps, retention_days
from infra.nag import acknowledge

CORS_HEADERS = ["Content-Type", "Idempotency-Key"]


class LeadApi(Construct):
    """`POST /leads` on a regional REST API, throttled per stage, logged without bodies or IPs.

    Public attributes: `rest_api`, `ingest` (a PipelineFunction), `leads_url`, `web_acl` (or None).
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: PipelineSettings, queue: sqs.IQueue) -> None:
        super().__init__(scope, construct_id)
        self.ingest = PipelineFunction(
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
                },
            ),
        )
        queue.grant_send_messages(self.ingest.function)

        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=retention_days(settings.log_retention_days), removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.rest_api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"leadpipe-{settings.stage}",
            description="Leadpipe: landing-page forms POST leads here",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
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
                    caller=False, http_method=True, ip=False, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=False,
                ),  # fmt: skip
            ),
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=list(settings.allowed_origins),
                allow_methods=["POST", "OPTIONS"],
                allow_headers=CORS_HEADERS,
                max_age=cdk.Duration.minutes(10),
            ),
        )
        leads = self.rest_api.root.add_resource("leads")
        leads.add_method("POST", apigw.LambdaIntegration(self.ingest.function))
        self.leads_url = f"{self.rest_api.url}leads"

        self.web_acl = self._per_ip_rate_rule(settings) if settings.waf_requests_per_5_minutes_per_ip else None
        acknowledge(
            self.rest_api,
            ("AwsSolutions-APIG2", "Bodies are validated by the ingest function: JSON and form posts share one pydantic model that an API Gateway model cannot express for forms."),
            ("AwsSolutions-APIG4", "A public landing-page form has no caller identity; abuse is bounded by stage throttling, the optional WAF rule and the honeypot."),
            ("AwsSolutions-COG4", "A public landing-page form has no Cognito user to authorise."),
            ("AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]", "The policy API Gateway's account-level logging role requires; access logs need it."),
        )  # fmt: skip
        if self.web_acl is None:
            acknowledge(
                self.rest_api,
                ("AwsSolutions-APIG3", "WAF is optional (waf_requests_per_5_minutes_per_ip); stage throttling caps load without it."),
            )

    def _per_ip_rate_rule(self, settings: PipelineSettings) -> wafv2.CfnWebACL:
        """The managed equivalent of an nginx `limit_req` zone keyed on the client address."""
        metric_prefix = f"leadpipe-{settings.stage}"
        web_acl = wafv2.CfnWebACL(
            self,
            "PerIpRateLimit",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{metric_prefix}-waf"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="per-ip-rate",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=settings.waf_requests_per_5_minutes_per_ip, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=_visibility(f"{metric_prefix}-per-ip-rate"),
                )
            ],
        )
        wafv2.CfnWebACLAssociation(
            self, "PerIpRateLimitAssociation", resource_arn=self.rest_api.deployment_stage.stage_arn, web_acl_arn=web_acl.attr_arn
        )
        return web_acl


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=False
    )
