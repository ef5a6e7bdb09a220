"""Schema fuzzing of the HTTP API with Schemathesis: requests generated from `/openapi.json` (valid and invalid
bodies, paths and queries) against a real `recchat serve`, one without `api.key` and one with it.

It fails on any 5xx, a documented response that breaks its schema, or a request left unanswered for
`ANSWER_TIMEOUT_S`. Bounded for CI: `EXAMPLES` generated cases per operation and per server, derandomized (the same
cases every run), about a minute in all with the LLM off. Every new route or field is fuzzed from the day it appears
in the schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from recchat.server.process import ApiServer

KEY = "fuzz-key-0123"
EXAMPLES = 25
ANSWER_TIMEOUT_S = 30
CHECKS = [not_a_server_error, response_schema_conformance]
FUZZ = settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)


def serve(tmp_path_factory, name: str, env: dict[str, str]) -> Iterator[str]:
    data = tmp_path_factory.mktemp(name)
    log = data / "server.log"
    with ApiServer({"RECCHAT_DATA_DIR": str(data), "RECCHAT_LLM__BACKEND": "none", **env}, log) as served:
        yield served.base_url
    assert "Traceback" not in log.read_text()  # nothing failed inside, even where the answer was an error


@pytest.fixture(scope="module")
def open_server(tmp_path_factory) -> Iterator[str]:
    yield from serve(tmp_path_factory, "open", {})


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory) -> Iterator[str]:
    yield from serve(tmp_path_factory, "keyed", {"RECCHAT_API__KEY": KEY})


def fuzz(base_url: str, call) -> None:
    """Every operation of the server's schema, `EXAMPLES` generated cases each, through `call(case)`. (Schemathesis's
    own pytest plugin does not load under pytest 9 here, so Hypothesis runs its strategies directly.)"""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10  # the schema was read: chat, sessions, feedback, items, users...
    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy())
        def run(case) -> None:
            call(case)

        try:
            run()
        except Exception as error:
            raise AssertionError(f"{operation.label}: {error}") from error


def test_fuzzing_the_api_without_a_key_finds_no_server_error(open_server):
    fuzz(open_server, lambda case: case.call_and_validate(checks=CHECKS, timeout=ANSWER_TIMEOUT_S))


def test_fuzzing_the_api_with_its_key_finds_no_server_error(keyed_server):
    key = {"Authorization": f"Bearer {KEY}"}
    fuzz(keyed_server, lambda case: case.call_and_validate(checks=CHECKS, headers=key, timeout=ANSWER_TIMEOUT_S))


def test_fuzzing_the_keyed_api_without_the_key_is_refused_or_public(keyed_server):
    def refused(case) -> None:
        response = case.call(timeout=ANSWER_TIMEOUT_S)
        assert response.status_code < 500, response.text
        if case.path.startswith("/v1/"):  # nothing there succeeds without the key
            assert response.status_code >= 400, (case.path, response.status_code)

    fuzz(keyed_server, refused)
