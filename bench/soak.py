"""`make soak`: 20,000 leads through the local runtime; accepted = stored + DLQ, none lost, none twice.

Too slow for `make test` (~2 minutes on 2 cores), bounded at 10 minutes.
"""

from __future__ import annotations

import shutil
import sys
import time

from infra.config import REPO_ROOT, settings_from_file
from leadpipe import spike
from leadpipe.local.runtime import LocalPipeline, LocalPipelineOptions, local_sqs_client
from leadpipe.status import queue_depth

TOTAL = 20_000
DEADLINE_SECONDS = 600


def main() -> int:
    started = time.monotonic()
    data_dir = REPO_ROOT / ".leadpipe" / "soak"
    shutil.rmtree(data_dir, ignore_errors=True)
    # The stage throttle at its ceiling: the soak measures the pipeline, not dev's 100/s throttle.
    settings = settings_from_file("dev").model_copy(
        update={"throttle_rate_per_second": 10_000, "throttle_burst": 5_000}
    )
    pipeline = LocalPipeline(LocalPipelineOptions(settings=settings, data_dir=data_dir, port=0))
    info = pipeline.start()
    sqs = local_sqs_client(info.sqs_endpoint_url)
    campaign = f"SOAK{int(time.time())}"
    try:
        sampler = spike.PipelineSampler(sqs, info.leads_queue_url, info.database_url, info.leads_table, campaign)
        sampler.start()
        options = spike.SpikeOptions(
            url=info.api_url, total=TOTAL, concurrency=16, campaign=campaign, timeout_seconds=DEADLINE_SECONDS / 2
        )
        requests, seconds = spike.send_spike(options)
        summary = spike.summarise(requests, seconds)
        while time.monotonic() - started < DEADLINE_SECONDS:
            latest = sampler.latest()
            if latest and latest.queued == 0 and latest.stored is not None and latest.stored >= summary.accepted:
                break
            time.sleep(1)
        sampler.stop()
        accepted_ids = {r.lead_id for r in requests if r.lead_id}
        lost, duplicates = spike.verify_stored(info.database_url, info.leads_table, campaign, accepted_ids)
        in_dlq = queue_depth(sqs, info.dead_letter_queue_url)
        stored = sampler.latest().stored
    finally:
        pipeline.stop(drain_seconds=5)
        shutil.rmtree(data_dir, ignore_errors=True)
    reconciled = summary.accepted == stored + in_dlq
    print(
        f"soak: sent {summary.sent} at {summary.rate_per_s}/s (p99 {summary.latency_ms['p99']} ms): accepted "
        f"{summary.accepted}, "
        f"errors {summary.errors}; stored {stored}, in DLQ {in_dlq}; lost = {lost}, duplicates = {duplicates}; "
        f"accepted = stored + DLQ: {'yes' if reconciled else 'NO'}; {time.monotonic() - started:.0f} s in all"
    )
    return 0 if reconciled and lost == 0 and duplicates == 0 and summary.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
