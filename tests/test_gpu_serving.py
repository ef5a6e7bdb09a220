"""bench/gpu_serving.py (issue #28): the recorded requests are still what recchat sends, and answers are checked right.

The GPU run replays bench/data/requests.jsonl; if `OpenAICompatibleBackend.request` changes, the recording must be
made again (`python bench/gpu_serving.py record`), and this test says so."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gpu_serving", ROOT / "bench" / "gpu_serving.py")
gpu_serving = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_serving)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return [json.loads(line) for line in gpu_serving.DATA.read_text().splitlines()]


def test_recorded_requests_are_what_recchat_sends_to_vllm(records):
    kinds = {record["kind"] for record in records}
    assert kinds == {"recommend", "read-state"}
    assert len(records) >= 40
    for record in records:
        assert gpu_serving.body_for(record, "vllm", gpu_serving.MODEL_NAME) == record["body"], record["id"]


def test_each_engine_gets_its_own_form_of_the_schema(records):
    record = records[0]
    vllm = gpu_serving.body_for(record, "vllm", "m")
    assert vllm["extra_body"] == {"structured_outputs": {"json": record["schema"]}}
    assert vllm["response_format"]["json_schema"]["schema"] == record["schema"]
    generic = gpu_serving.body_for(record, "transformers", "m")
    assert "extra_body" not in generic and generic["response_format"]["type"] == "json_schema"
    llamacpp = gpu_serving.body_for(record, "llamacpp", "m")
    assert llamacpp["response_format"] == {"type": "json_object", "schema": record["schema"]}


def test_answers_are_checked_against_the_schema_and_the_candidates(records):
    in_order = next(r for r in records if r["kind"] == "recommend" and "prefixItems" in json.dumps(r["schema"]))
    prefix = in_order["schema"]["properties"]["items"]["prefixItems"]
    valid = {"items": [options["anyOf"][0]["const"] for options in prefix]}
    assert gpu_serving.check(json.dumps(valid), in_order) == {"parsed": True, "valid": True, "grounded": True}
    assert gpu_serving.check(json.dumps(valid)[:-5], in_order)["parsed"] is False  # cut at max_tokens
    made_up = {"items": [["in every colour"]]}
    assert gpu_serving.check(json.dumps(made_up), in_order) == {"parsed": True, "valid": False, "grounded": False}

    by_id = next(r for r in records if r["kind"] == "recommend" and r["ranking"] == "llm")
    assert by_id["candidates"] == [f"A{n + 1}" for n in range(len(by_id["candidates"]))]
    assert gpu_serving.check('{"items": [{"id": "A99", "facts": ["x"]}]}', by_id)["grounded"] is False

    reading = next(r for r in records if r["kind"] == "read-state")
    answer = {name: None for name in reading["schema"]["properties"]}
    assert gpu_serving.check(json.dumps(answer), reading) == {"parsed": True, "valid": True, "grounded": True}
    answer[next(iter(answer))] = "plaid"
    assert gpu_serving.check(json.dumps(answer), reading)["valid"] is False


def test_the_device_script_serves_vllm_as_recchat_does():
    from recchat.llm.server import VLLM_COMPACT_JSON

    script = (ROOT / "bench" / "gpu_run.sh").read_text()
    flag, config = VLLM_COMPACT_JSON
    assert f"COMPACT=({flag} '{config}')" in script
