"""Every 202 is a row, through the running local pipeline: hostile characters get a 4xx naming the field,
what was accepted is stored byte for byte, and Ctrl-C keeps even the messages in flight."""

from __future__ import annotations

import json
import shutil
import uuid
from urllib.parse import urlencode

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import RunningPipeline, e2e_settings, http_request, start_pipeline, wait_for

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_hostile_characters_get_a_4xx_naming_the_field_and_never_a_false_202(local_pipeline: RunningPipeline) -> None:
    api = local_pipeline.info.api_url
    tag = uuid.uuid4().hex[:8]
    # Given the hostile leads: NUL in a custom value, U+FFFF in a form's first name
    nul = http_request(api, "POST", json.dumps({"email": f"nul-{tag}@example.com", "custom": {"k": "a\x00b"}}), JSON)
    ffff = http_request(api, "POST", f"email=ffff-{tag}%40example.com&first_name=%EF%BF%BF", FORM)
    surrogate = http_request(api, "POST", '{"email": "s-' + tag + '@example.com", "last_name": "x\\udc00"}', JSON)
    # Then each is refused with a 422 naming its field, and nothing of them was stored
    assert [(a.status, [f["field"] for f in a.json()["error"]["fields"]]) for a in (nul, ffff, surrogate)] == [
        (422, ["custom.k"]),
        (422, ["first_name"]),
        (422, ["last_name"]),
    ]
    assert local_pipeline.count("email LIKE %s", (f"%-{tag}@example.com",)) == 0


def test_text_in_any_script_is_stored_byte_for_byte(local_pipeline: RunningPipeline) -> None:
    # Given a lead in several scripts, with an IDN address, a national phone and a multi-line note
    tag = uuid.uuid4().hex[:8]
    lead = {
        "email": f"jöhn-{tag}@exämple.com",
        "first_name": "山田 😀",
        "last_name": "Ñúñez-Øster",
        "phone": "(202) 555-0143",
        "company": "Société Générale\u00a0Ltd",
        "custom": {"note": "line 1\n\tline 2 \U0010fffd"},
    }
    answer = http_request(local_pipeline.info.api_url, "POST", json.dumps(lead), JSON)
    form_answer = http_request(
        local_pipeline.info.api_url, "POST", urlencode({"email": f"form-{tag}@例子.中国", "custom[q]": "ü\r\nü"}), FORM
    )
    assert (answer.status, form_answer.status) == (202, 202)
    # Then both rows hold exactly what was sent (after the contract's documented normalisation)
    [row] = wait_for(lambda: local_pipeline.rows("lead_id = %s", (answer.json()["lead_id"],)), message="row")
    assert {k: row[k] for k in ("email", "first_name", "last_name", "phone", "company", "custom")} == {
        **lead,
        "email": lead["email"].lower(),
    }
    [form_row] = wait_for(
        lambda: local_pipeline.rows("lead_id = %s", (form_answer.json()["lead_id"],)), message="form row"
    )
    assert (form_row["email"], form_row["custom"]) == (f"form-{tag}@例子.中国", {"q": "ü\r\nü"})


def test_ctrl_c_keeps_a_lead_the_worker_failed_and_the_next_start_stores_it() -> None:
    # Given a pipeline whose failed records stay in flight for a minute, and its database down. Its drain
    # breaker probes only after a failed batch (not every second), so the worker does receive and fail the
    # lead before the breaker holds the drain: a lead in flight is what this test is about.
    data_dir = REPO_ROOT / ".leadpipe" / "pytest" / f"inflight-{uuid.uuid4().hex[:8]}"
    # One ingest environment each time: a single lead is posted, and a runtime starts quicker with fewer.
    settings = e2e_settings().model_copy(update={"visibility_timeout_seconds": 60, "max_receive_count": 5})
    first = start_pipeline(data_dir, settings, drain_probe_seconds=3600, ingest_environments=1)
    try:
        first.pipeline.stop_database()
        email = f"inflight-{uuid.uuid4().hex[:8]}@example.com"
        answer = http_request(first.info.api_url, "POST", json.dumps({"email": email}), JSON)
        assert answer.status == 202
        # When the worker has failed it (it now waits out its visibility timeout, invisible)
        wait_for(
            lambda: (s := first.pipeline.poller.stats.snapshot())["records_failed"] + s["function_errors"] >= 1,
            message="failed once",
        )
        first.pipeline.start_database()
        # And the pipeline is stopped (Ctrl-C) long before that timeout ends (no drain wait: no drain could take an
        # invisible lead, however long it waited)
        saved = first.pipeline.stop(drain_seconds=0)
    except BaseException:
        first.pipeline.stop(drain_seconds=0)
        raise
    # Then the in-flight lead went into the snapshot, and the next start stores it
    assert saved == 1
    second = start_pipeline(data_dir, settings, ingest_environments=1)
    try:
        wait_for(lambda: second.count("email = %s", (email,)) == 1, timeout=60, message="stored after the restart")
        assert [str(r["lead_id"]) for r in second.rows("email = %s", (email,))] == [answer.json()["lead_id"]]
    finally:
        second.pipeline.stop(drain_seconds=1)
        shutil.rmtree(data_dir, ignore_errors=True)
