"""The custom metrics the functions publish, as CloudWatch bills them (one per name and dimension set), for `plan`."""

from __future__ import annotations

from functions.ingest.errors import SubmissionRefused
from infra.config import PipelineSettings

INGEST = ("LeadsAccepted", "SpamDropped", "EnqueueFailures", "Rejected_internal_error")
CAPTCHA = ("CaptchaUnverified", "CaptchaPassReused")  # only a stage with captcha_provider publishes these
WORKER = ("LeadsStored", "DuplicatesSkipped", "RecordsFailed", "DatabaseUnavailable", "IngestToStoreSeconds")
EVENTS = ("EventsPublished", "EventsHandedOff", "EventsNotHandedOff", "EventsRelayed", "EventsNotRelayed")
DRAIN_PROBE = ("DrainHeldByBreaker",)  # the probe publishes DatabaseUnavailable too, as the worker's
DRAIN_GOVERNOR = ("DrainWriters", "DrainWriterCap")  # the probe, when the drain governor is on
BY_CAMPAIGN = "LeadsAcceptedByCampaign"  # one metric per campaign in metric_campaigns (its own dimension)
REFUSED_PREFIX = "Rejected_"  # one metric per refusal code


def refusal_codes() -> list[str]:
    """Every code a refusal can carry (each is a `Rejected_<code>` metric)."""
    codes, classes = set(), list(SubmissionRefused.__subclasses__())
    while classes:
        refusal = classes.pop()
        codes.add(refusal.code)
        classes += refusal.__subclasses__()
    return sorted(codes)


def custom_metrics(settings: PipelineSettings) -> list[str]:
    """The metrics a stage with these settings publishes (a tracked campaign as `name[campaign]`)."""
    captcha = settings.captcha_provider is not None
    names = [*INGEST, *(CAPTCHA if captcha else ())]
    names += [REFUSED_PREFIX + code for code in refusal_codes() if captcha or not code.startswith("captcha_")]
    if settings.has_database:  # no database: no worker runs, and no drain probe is deployed
        names += [*WORKER, *DRAIN_PROBE, *(DRAIN_GOVERNOR if settings.governor_enabled else ())]
    if settings.events_enabled:  # the worker's events lane and the relay
        names += EVENTS
    return names + [f"{BY_CAMPAIGN}[{campaign}]" for campaign in settings.metric_campaigns]
