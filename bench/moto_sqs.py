"""moto's SQS backend at depth: stock vs leadpipe's patches, side by side, same process shape.

Each variant runs in a fresh interpreter (the patches cannot be undone in-process) and fills a
queue to DEPTH with SendMessageBatch, then drains part of it with receive + delete_message_batch.
Prints msg/s for both phases and the patched/stock ratio.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

DEPTH = 20_000
DRAIN = 500
STOCK_DEPTH = 1_000  # stock moto is too slow to fill 20,000 in a benchmark's time budget


def measure(patched: bool, depth: int) -> dict:
    import boto3
    from moto import mock_aws

    if patched:
        from leadpipe.local.moto_speedups import apply_sqs_speedups

        apply_sqs_speedups()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        url = sqs.create_queue(QueueName="bench")["QueueUrl"]
        body = json.dumps({"v": 1, "lead": {"email": "someone@example.com", "campaign": "SUMMERSALE20"}})
        started = time.perf_counter()
        last_thousand_started, last_thousand = started, 0.0
        for sent in range(0, depth, 10):
            if sent == depth - 1000:
                last_thousand_started = time.perf_counter()
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i in range(10)])
        fill_seconds = time.perf_counter() - started
        last_thousand = 1000 / (time.perf_counter() - last_thousand_started)
        started = time.perf_counter()
        drained = 0
        while drained < DRAIN:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            drained += len(messages)
        drain_rate = drained / (time.perf_counter() - started)
    return {
        "depth": depth,
        "fill_msgs_per_s": depth / fill_seconds,
        "send_at_depth_msgs_per_s": last_thousand,
        "receive_delete_msgs_per_s": drain_rate,
    }


def run_variant(patched: bool, depth: int) -> dict:
    code = f"import json, bench.moto_sqs as b; print(json.dumps(b.measure({patched}, {depth})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> dict:
    stock = run_variant(False, STOCK_DEPTH)
    patched_same_depth = run_variant(True, STOCK_DEPTH)
    patched_full = run_variant(True, DEPTH)
    result = {"stock": stock, "patched": patched_same_depth, "patched_at_20000": patched_full}
    for phase in ("fill_msgs_per_s", "send_at_depth_msgs_per_s", "receive_delete_msgs_per_s"):
        result[f"ratio_{phase}"] = patched_same_depth[phase] / stock[phase]
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
