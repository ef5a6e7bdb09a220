"""The HTTP API, end to end: a real `recchat serve` process on a free localhost port, exercised over real HTTP
with httpx (LLM off: turns take milliseconds, and the items are those an LLM would explain)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import GatedBackend, served_here
from fastapi.testclient import TestClient
from pydantic import ValidationError

from recchat.bounds import MAX_EXCLUDE_IDS, MAX_FILTER_TERMS, MAX_TERM_CHARS
from recchat.chat import RecChat
from recchat.client import RecChatClient
from recchat.config import ApiSettings, Settings
from recchat.errors import (
    ForbiddenError,
    InvalidMessageError,
    SessionOwnerError,
    UnknownItemError,
    UnknownSessionError,
)
from recchat.feedback import FeedbackEvent
from recchat.llm import LLMBackend
from recchat.models import RecommendationList, StreamEvent
from recchat.server import create_app
from recchat.server.process import ApiServer

KEY = "test-key-0123"
COAT = "I want a warm winter coat"
LOCAL = "http://localhost"
"""Where in-process test clients say they call (TestClient's own 'testserver' is not a name the server answers)."""


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """`recchat serve` with its own data folder and an API key, as a user starts it; its base URL."""
    data = tmp_path_factory.mktemp("served")
    log = data / "server.log"
    env = {"RECCHAT_DATA_DIR": str(data), "RECCHAT_LLM__BACKEND": "none", "RECCHAT_API__KEY": KEY}
    with ApiServer(env, log) as served:
        yield served.base_url
    assert "Traceback" not in log.read_text()  # nothing failed unexpectedly on the way


@pytest.fixture(scope="module")
def http(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
        yield client


def error_of(response: httpx.Response, status: int) -> dict:
    """The JSON error of a response that must have `status`; never a traceback."""
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"} and body["error"]["message"]
    return body["error"]


def test_a_turn_over_http_is_the_python_apis_reply_naming_real_items(http):
    response = http.post("/v1/chat", json={"message": COAT + " under $200"})
    assert response.status_code == 200
    reply = RecommendationList.model_validate(response.json())
    assert reply.items and reply.metadata.source == "retrieval"  # LLM off: the reply says it is search alone
    for item in reply.items:
        assert item.price is not None and item.price <= 200
        assert http.get(f"/v1/items/{item.id}").json()["title"] == item.title


def test_the_feedback_loop_over_http_removes_a_disliked_item_from_the_next_answer(http):
    session = http.post("/v1/sessions", json={"user_id": "ann"})
    assert session.status_code == 201
    session_id = session.json()["session_id"]
    first = http.post("/v1/chat", json={"message": COAT, "session_id": session_id}).json()
    disliked = first["items"][0]["id"]
    recorded = http.post("/v1/feedback", json={
        "kind": "dislike", "item_id": disliked, "session_id": session_id, "turn": 1, "key": "ann-1",
    })
    assert recorded.json() == {"recorded": True}
    assert http.post("/v1/feedback", json={"kind": "dislike", "item_id": disliked, "key": "ann-1", "user_id": "ann"}
                     ).json() == {"recorded": False}  # a retry changes nothing
    second = http.post("/v1/chat", json={"message": COAT, "session_id": session_id}).json()
    assert disliked not in [item["id"] for item in second["items"]]
    assert disliked in second["metadata"]["hidden_ids"]
    assert http.delete("/v1/users/ann").json()["deleted"] >= 2
    third = http.post("/v1/chat", json={"message": COAT, "user_id": "ann"}).json()
    assert disliked in [item["id"] for item in third["items"]]  # forgotten: the dislike no longer hides it


def read_events(response: httpx.Response) -> list[StreamEvent]:
    assert response.headers["content-type"].startswith("text/event-stream")
    events, kind = [], None
    for line in response.iter_lines():
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            event = StreamEvent.model_validate_json(line.split(":", 1)[1])
            assert event.kind == kind
            events.append(event)
    return events


def comparable(event: StreamEvent) -> dict:
    """An event without what differs between two runs of the same turn: ids and timings."""
    data = event.model_dump()
    if data["reply"] is not None:
        meta = data["reply"]["metadata"]
        for varying in ("session_id", "user_id", "timings_ms"):
            meta.pop(varying)
    return data


def test_the_server_sent_events_are_the_events_of_astream(http, settings, encoder, tmp_path):
    with http.stream("POST", "/v1/chat/stream", json={"message": COAT}) as response:
        streamed = read_events(response)
    assert [event.kind for event in streamed] == ["message", *["item"] * (len(streamed) - 2), "done"]
    local = RecChat.from_settings(
        Settings(data_dir=tmp_path, llm={"backend": "none"}), encoder=encoder
    )  # the same engine in this process, with its own empty feedback log: a new user's turn is the same

    async def in_process() -> list[StreamEvent]:
        return [event async for event in local.astream(COAT)]

    assert [comparable(event) for event in streamed] == [comparable(event) for event in asyncio.run(in_process())]


def test_fifty_concurrent_clients_three_turns_each_never_see_each_others_sessions(server):
    messages = ["a warm winter coat", "running shoes", "a leather handbag", "a cotton t-shirt", "a wool scarf"]
    headers = {"Authorization": f"Bearer {KEY}"}

    async def client(n: int, http: httpx.AsyncClient) -> list[dict]:
        session_id = (await http.post("/v1/sessions", json={"user_id": f"c{n}"})).json()["session_id"]
        replies = []
        for turn in range(3):
            message = messages[(n + turn) % len(messages)]
            response = await http.post("/v1/chat", json={"message": message, "session_id": session_id})
            assert response.status_code == 200, response.text
            replies.append({"session": session_id, "user": f"c{n}", "turn": turn + 1, "message": message,
                            "reply": response.json()})
        return replies

    async def everyone() -> list[list[dict]]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=server, headers=headers, timeout=120, limits=limits) as http:
            return await asyncio.gather(*(client(n, http) for n in range(50)))

    results = [turn for replies in asyncio.run(everyone()) for turn in replies]
    assert len(results) == 150
    for result in results:
        meta = result["reply"]["metadata"]
        assert (meta["session_id"], meta["user_id"]) == (result["session"], result["user"])
        assert meta["turn"] == result["turn"]
    # a turn's items depend on its own message only (and its session's earlier turns: none shown twice)
    assert len({result["session"] for result in results}) == 50


@pytest.mark.parametrize(
    ("what", "request_args", "status", "error_type"),
    [
        ("bad JSON", {"content": b'{"message": "coat"', "headers": {"content-type": "application/json"}}, 400,
         "InvalidJSON"),
        ("wrong types", {"json": {"message": 5, "exclude_ids": "p1"}}, 422, "ValidationError"),
        ("a misspelt field", {"json": {"message": "a coat", "sesion_id": "x"}}, 422, "ValidationError"),
        ("a 1 MB body", {"json": {"message": "a" * 1_000_000}}, 413, "BodyTooLarge"),
        ("an empty message", {"json": {"message": "  "}}, 400, "InvalidMessageError"),
        ("a message over the limit", {"json": {"message": "coat " * 1000}}, 400, "InvalidMessageError"),
        ("an unknown session", {"json": {"message": "a coat", "session_id": "never-made"}}, 404,
         "UnknownSessionError"),
        ("a negative price filter", {"json": {"message": "a coat", "filters": {"max_price": -1}}}, 422,
         "ValidationError"),
        ("a control character in a user id", {"json": {"message": "a coat", "user_id": "a\u0000b"}}, 400,
         "SessionError"),
    ],
)
def test_bad_chat_requests_get_a_json_error_with_the_right_status(http, what, request_args, status, error_type):
    assert error_of(http.post("/v1/chat", **request_args), status)["type"] == error_type


@pytest.mark.parametrize(
    ("what", "request_args", "why"),
    [
        ("4,500 excluded ids", {"exclude_ids": [f"P{n:05}" for n in range(4500)]}, "at most 500 items"),
        ("excluded ids split between the fields", {
            "exclude_ids": [f"P{n:05}" for n in range(300)], "filters": {"excluded_ids": [f"Q{n}" for n in range(201)]},
        }, "excludes 501"),
        ("6,000 excluded terms", {"filters": {"excluded_terms": [f"w{n}" for n in range(6000)]}}, "at most 32 terms"),
        ("facet values", {"filters": {"facets": {"color": [f"c{n}" for n in range(40)]}}}, "these hold 41"),
        ("a term of 1,000 characters", {"filters": {"excluded_terms": ["x" * 1000]}}, "at most 100 characters"),
    ],
)
def test_a_turn_asking_past_the_bounds_is_refused_with_a_typed_400(http, what, request_args, why):
    """Issue #27: 6,000 excluded terms took a turn 4.4 s and its reply repeated every one; thousands of excluded ids a
    turn made replies of megabytes."""
    started = time.perf_counter()
    error = error_of(http.post("/v1/chat", json={"message": COAT, **request_args}), 400)
    assert error["type"] == "LimitExceededError" and why in error["message"], error["message"]
    assert time.perf_counter() - started < 2  # refused before anything is searched


def test_follow_ups_at_the_bounds_keep_replies_small(http):
    """Every turn of a conversation excludes as many items and terms as it may: the replies stay the same size."""
    session, sizes = None, []
    for turn in range(6):
        response = http.post("/v1/chat", json={
            "message": COAT if turn == 0 else "something else", "session_id": session,
            "exclude_ids": [f"P{turn}-{n:04}" for n in range(MAX_EXCLUDE_IDS)],
            "filters": {"excluded_terms": [f"{'w' * (MAX_TERM_CHARS - 3)}{n:02}" for n in range(MAX_FILTER_TERMS)]},
        })
        assert response.status_code == 200, response.text
        session = response.json()["metadata"]["session_id"]
        sizes.append(len(response.content))
    assert max(sizes) < 1.2 * sizes[0] and max(sizes) < 64 * 1024, sizes


def test_exclude_ids_did_not_carry_to_follow_ups_although_documented_to(http):
    """Issue #27: `exclude_ids` left items out of their own turn only; "cheaper ones" then offered them again. They
    now join the dialogue state: the follow-ups that refine the request leave them out, the state shows them, and
    taking them out of the state brings the items back."""
    shown = [item["id"] for item in http.post("/v1/chat", json={"message": COAT}).json()["items"]]
    owned = shown[:2]
    first = http.post("/v1/chat", json={"message": COAT, "exclude_ids": owned}).json()
    session = first["metadata"]["session_id"]
    assert not set(owned) & {item["id"] for item in first["items"]}
    for follow_up in ("a warm one please", "in wool"):
        reply = http.post("/v1/chat", json={"message": follow_up, "session_id": session}).json()
        assert reply["items"] and not set(owned) & {item["id"] for item in reply["items"]}, follow_up
        assert set(owned) <= set(reply["metadata"]["request"]["state"]["excluded_ids"])
    released = http.delete(f"/v1/sessions/{session}/state/excluded_ids")
    assert released.status_code == 200 and released.json()["excluded_ids"] == []
    again = http.post("/v1/chat", json={"message": COAT, "session_id": session}).json()
    assert set(owned) & {item["id"] for item in again["items"]}


@pytest.mark.parametrize(
    ("what", "body", "why"),
    [
        ("invalid UTF-8", b'{"message": "a coat \xff"}', "not UTF-8"),
        ("60,000 nested [", b"[" * 60_000, "nests too deep"),
        ("a 5,000-digit integer", b'{"message": "a coat", "turn": ' + b"9" * 5000 + b"}", "too long"),
    ],
)
def test_bodies_json_cannot_read_are_a_typed_invalid_json_error(http, what, body, why):
    """Issue #27: these got an untyped HTTPError."""
    response = http.post("/v1/chat", content=body, headers={"content-type": "application/json"})
    error = error_of(response, 400)
    assert error["type"] == "InvalidJSON" and why in error["message"]


@pytest.mark.parametrize("key", ["", "   "])
def test_an_empty_api_key_is_refused_at_start_up(key):
    """Issue #27: an empty api.key let an empty bearer token through."""
    with pytest.raises(ValidationError, match="api.key is empty: set a key"):
        Settings(api={"key": key})


def test_a_session_used_by_another_user_is_refused_with_409(http):
    session_id = http.post("/v1/sessions", json={"user_id": "owner"}).json()["session_id"]
    stealing = {"message": "a coat", "session_id": session_id, "user_id": "thief"}
    error = error_of(http.post("/v1/chat", json=stealing), 409)
    assert error["type"] == "SessionOwnerError" and "belongs to user 'owner'" in error["message"]
    stolen = http.post("/v1/feedback", json={"kind": "like", "item_id": "P0007-wool-overcoat", "session_id": session_id,
                                             "user_id": "thief"})
    assert error_of(stolen, 409)["type"] == "SessionOwnerError"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", f"Basic {KEY}", "Bearer"])
def test_a_missing_or_wrong_api_key_is_refused_and_nothing_happens(server, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.post(f"{server}/v1/feedback", headers=headers,
                          json={"kind": "like", "item_id": "P0007-wool-overcoat", "user_id": "intruder"})
    assert error_of(response, 401)["type"] == "Unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server}/healthz").status_code == 200  # health and metrics need no key
    forgotten = httpx.delete(f"{server}/v1/users/intruder", headers={"Authorization": f"Bearer {KEY}"})
    assert forgotten.json() == {"deleted": 0}  # the refused like was never stored


def test_a_key_holder_could_act_for_any_user_and_a_user_token_now_acts_for_its_own_user_only(server, http):
    """#27 item 12: the key is one shared secret, so whoever held it could read any user's history. A token minted
    with the key acts for one user: it asks, gives feedback, releases state and forgets for that user, and is refused
    (403) for any other, while the key still acts for all."""
    minted = http.post("/v1/users/tok-ann/token", json={"ttl_s": 600})
    assert minted.status_code == 201 and minted.json()["user_id"] == "tok-ann"
    assert minted.json()["expires_at"] == pytest.approx(time.time() + 600, abs=5)
    as_ann = {"Authorization": f"Bearer {minted.json()['token']}"}
    with httpx.Client(base_url=server, headers=as_ann, timeout=60) as ann:
        own = ann.post("/v1/sessions", json={}).json()["session_id"]
        reply = ann.post("/v1/chat", json={"message": COAT + " under $200", "session_id": own}).json()
        assert reply["metadata"]["user_id"] == "tok-ann"  # the token's user, though the body named none
        assert ann.post("/v1/feedback", json={"kind": "dislike", "item_id": reply["items"][0]["id"],
                                              "session_id": own}).json() == {"recorded": True}
        assert ann.delete(f"/v1/sessions/{own}/state/price").json()["max_price"] is None  # hers to change
        bob_session = http.post("/v1/sessions", json={"user_id": "tok-bob"}).json()["session_id"]
        refused = [
            (403, ann.post("/v1/chat", json={"message": COAT, "user_id": "tok-bob"})),
            (409, ann.post("/v1/chat", json={"message": COAT, "session_id": bob_session})),
            (403, ann.post("/v1/sessions", json={"user_id": "tok-bob"})),
            (403, ann.post("/v1/feedback", json={"kind": "like", "item_id": "P0007-wool-overcoat",
                                                 "user_id": "tok-bob"})),
            (409, ann.post("/v1/feedback", json={"kind": "like", "item_id": "P0007-wool-overcoat",
                                                 "session_id": bob_session})),
            (409, ann.delete(f"/v1/sessions/{bob_session}/state/price")),
            (403, ann.delete("/v1/users/tok-bob")),
            (403, ann.post("/v1/users/tok-ann/token")),  # a token mints none, not even its own
        ]
        for status, response in refused:
            error_of(response, status)
        assert ann.get("/v1/items/P0007-wool-overcoat").status_code == 200  # the catalog is everyone's
        assert http.delete("/v1/users/tok-bob").json()["deleted"] == 0  # nothing was stored for bob
        assert ann.delete("/v1/users/tok-ann").json()["deleted"] > 0  # her own data she may forget
    expired = http.post("/v1/users/tok-ann/token", json={"ttl_s": 0.001}).json()["token"]
    time.sleep(1.1)
    forged = minted.json()["token"].replace(".", ".x", 1)
    for token, why in ((expired, "expired"), (forged, "not valid"), (minted.json()["token"][:-2], "not valid")):
        answer = httpx.post(f"{server}/v1/chat", json={"message": COAT}, headers={"Authorization": f"Bearer {token}"})
        assert why in error_of(answer, 401)["message"]
    error_of(http.post("/v1/users/tok-ann/token", json={"ttl_s": 10**9}), 400)  # past api.user_token_ttl_s
    with RecChatClient(server, api_key=KEY) as shop, RecChatClient(server, api_key=shop.user_token("tok-cy")) as cy:
        assert cy.chat(COAT).metadata.user_id == "tok-cy"
        with pytest.raises(ForbiddenError, match="acts for user 'tok-cy' only"):
            cy.forget_user("tok-ann")


def test_a_body_sent_without_the_key_is_refused_with_401_before_it_is_read(server):
    for body in (b'{"message": "coat"', b"\xff\xfe", b"[" * 60_000):
        response = httpx.post(f"{server}/v1/chat", content=body, headers={"content-type": "application/json"})
        assert error_of(response, 401)["type"] == "Unauthorized"


def test_the_ui_needs_the_api_key_when_one_is_set(server):
    """Issue #27: with api.key set, /v1 answered 401 but /ui let anyone run turns, store likes and upload files."""
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    browser = {"accept": "text/html,application/xhtml+xml"}
    assert httpx.get(f"{server}/ui/", headers=browser).headers["location"] == "/ui/login"  # asked for the key
    assert 'type="password"' in httpx.get(f"{server}/ui/login", headers=browser).text
    like = {"data": [None, "P0007-wool-overcoat"], "fn_index": 0, "session_hash": "intruder"}
    for method, path, args in [
        ("GET", "/ui/", {}), ("GET", "/ui/config", {}), ("GET", "/ui/gradio_api/info", {}),
        ("POST", "/ui/gradio_api/queue/join", {"json": like}), ("POST", "/ui/gradio_api/call/ask", {"json": {}}),
        ("GET", "/ui/gradio_api/queue/data?session_hash=intruder", {}),
        ("POST", "/ui/login", {"data": {"username": "me", "password": "wrong-key"}}),
    ]:
        assert error_of(httpx.request(method, f"{server}{path}", **args), 401)["type"] == "Unauthorized", path
    with pytest.raises(AuthenticationError):
        Client(f"{server}/ui/", verbose=False, analytics_enabled=False)
    bearer = {"Authorization": f"Bearer {KEY}"}
    with_key = Client(f"{server}/ui/", headers=bearer, verbose=False, analytics_enabled=False)
    answered = with_key.predict("a warm winter coat", [], "products", "any category", 0, 0, api_name="/ask")
    reply = answered[0][-1]
    assert reply["role"] == "assistant" and "1. **" in reply["content"][0]["text"]  # a turn ran
    signed_in = Client(f"{server}/ui/", auth=("anyone", KEY), verbose=False, analytics_enabled=False)  # the cookie
    assert signed_in.view_api(print_info=False, return_format="dict")["named_endpoints"]["/ask"]
    with httpx.Client(base_url=server) as tab:  # a browser: the key typed once into the form
        assert tab.post("/ui/login", data={"password": KEY}, headers=browser).headers["location"] == "/ui/"
        assert "gradio" in tab.get("/ui/").text.lower()
    for headers in ({}, bearer):  # the page takes no files: no upload route is open, with the key or without
        upload = httpx.post(f"{server}/ui/gradio_api/upload", headers=headers, files={"files": ("a.txt", b"hi")})
        assert error_of(upload, 404)["type"] == "NotFound"


@pytest.mark.parametrize(
    ("what", "body", "status", "error_type"),
    [
        ("an unknown item", {"kind": "like", "item_id": "no-such-item", "user_id": "u"}, 404, "UnknownItemError"),
        ("an unknown kind", {"kind": "love", "item_id": "P0007-wool-overcoat", "user_id": "u"}, 400, "FeedbackError"),
        ("an impression", {"kind": "impression", "item_id": "P0007-wool-overcoat", "user_id": "u"}, 400,
         "FeedbackError"),
        ("no user or session", {"kind": "like", "item_id": "P0007-wool-overcoat"}, 400, "FeedbackError"),
        ("a turn of 0", {"kind": "like", "item_id": "P0007-wool-overcoat", "user_id": "u", "turn": 0}, 422,
         "ValidationError"),
        # Found by the adversarial test: 2**63 overflowed SQLite's INTEGER mid-write (PostgreSQL's ends at 2**31 - 1).
        ("a turn of 2**63", {"kind": "like", "item_id": "P0007-wool-overcoat", "user_id": "u", "turn": 2**63}, 422,
         "ValidationError"),
        ("a turn of 2**31", {"kind": "like", "item_id": "P0007-wool-overcoat", "user_id": "u", "turn": 2**31}, 422,
         "ValidationError"),
    ],
)
def test_bad_feedback_gets_a_json_error_and_is_not_stored(http, what, body, status, error_type):
    assert error_of(http.post("/v1/feedback", json=body), status)["type"] == error_type
    assert http.delete("/v1/users/u").json() == {"deleted": 0}


def test_feedback_naming_a_session_the_server_does_not_know_is_404_and_not_stored(http):
    """Issue #27: it was stored under user_id = the session id and answered recorded: true, and deleting the real
    user left it behind."""
    for who in ({}, {"user_id": "ann-2"}):
        like = {"kind": "like", "item_id": "P0007-wool-overcoat", "session_id": "evicted-or-elsewhere", **who}
        error = error_of(http.post("/v1/feedback", json=like), 404)
        assert error["type"] == "UnknownSessionError" and "POST /v1/sessions" in error["message"]
        assert "several workers" in error["message"] and "feedback.url names a PostgreSQL" in error["message"]
    assert http.delete("/v1/users/evicted-or-elsewhere").json() == {"deleted": 0}
    assert http.delete("/v1/users/ann-2").json() == {"deleted": 0}


@pytest.mark.parametrize(
    "path", ["/v1/items/..%2F..%2Fetc%2Fpasswd", "/v1/items/../../etc/passwd", "/v1/items/%00", "/v1/items/P0007%2F.."]
)
def test_path_tricks_in_item_ids_find_nothing(http, path):
    assert error_of(http.get(path), 404)["type"] in {"UnknownItemError", "NotFound"}


def test_path_tricks_in_user_ids_are_refused_or_match_no_one_and_ids_with_slashes_work(server, http):
    assert error_of(http.delete("/v1/users/%01%7F"), 400)["type"] == "SessionError"  # control characters
    assert http.delete("/v1/users/..%2Fadmin").json() == {"deleted": 0}
    with RecChatClient(server, api_key=KEY) as bot:
        assert bot.feedback("like", "P0007-wool-overcoat", user_id="team/ann")
        assert bot.forget_user("team/ann") == 1


def test_catalog_search_without_chat_filters_and_scores(http):
    found = http.get("/v1/items", params={"q": "winter coat", "max_price": 200, "limit": 5}).json()["items"]
    assert 0 < len(found) <= 5 and all(hit["item"]["price"] <= 200 and 0 <= hit["score"] <= 1 for hit in found)
    listed = http.get("/v1/items", params={"category": "coats & jackets", "limit": 100}).json()["items"]
    assert listed and all(hit["item"]["category"] == "coats & jackets" and hit["score"] is None for hit in listed)
    assert error_of(http.get("/v1/items", params={"category": "spaceships"}), 400)["type"] == "InvalidArgumentError"
    assert error_of(http.get("/v1/items", params={"max_price": "nan"}), 400)["type"] == "InvalidArgumentError"
    assert error_of(http.get("/v1/items", params={"limit": 1000}), 422)["type"] == "ValidationError"


def test_health_metrics_docs_and_ui_are_served(server, http):
    health = httpx.get(f"{server}/healthz").json()
    assert health["status"] == "ok" and health["llm"]["backend"] == "none" and health["store"]["status"] == "ok"
    assert health["catalog"]["items"] > 100
    http.post("/v1/chat", json={"message": COAT})
    http.post("/v1/feedback", json={"kind": "click", "item_id": "P0007-wool-overcoat", "user_id": "metrics-user"})
    http.post("/v1/chat", json={"message": ""})
    metrics = httpx.get(f"{server}/metrics").text
    assert float(metric(metrics, 'recchat_turns_total{source="retrieval"}')) >= 1
    assert float(metric(metrics, 'recchat_feedback_events_total{kind="click"}')) >= 1
    assert float(metric(metrics, 'recchat_errors_total{type="InvalidMessageError"}')) >= 1
    assert float(metric(metrics, 'recchat_turn_seconds_bucket{le="+Inf"}')) >= 1
    assert "/v1/chat" in httpx.get(f"{server}/openapi.json").json()["paths"]
    assert httpx.get(f"{server}/docs").status_code == 200
    page = http.get("/ui/", follow_redirects=True)
    assert page.status_code == 200 and "gradio" in page.text.lower()


def test_with_the_model_off_health_says_off_and_no_turn_is_a_fallback(server, http):
    """Issue #27: with llm.backend 'none', /healthz said the model was resting, most turns counted as fallbacks, and
    replies said it failed recently. No model is not a failing model."""
    for message in (COAT, "running shoes", COAT, "cheaper ones"):
        meta = http.post("/v1/chat", json={"message": message}).json()["metadata"]
        assert meta["source"] == "retrieval" and meta["fallback_reason"].startswith("the language model is off")
        assert not {"fail", "unavailable", "retrying"} & set(meta["fallback_reason"].split())
    llm = httpx.get(f"{server}/healthz").json()["llm"]
    assert llm["status"] == "off" and llm["resting"] is False and llm["loaded"] is False
    assert float(metric(httpx.get(f"{server}/metrics").text, "recchat_fallbacks_total")) == 0


def test_the_openapi_schema_states_the_key_and_what_the_server_enforces(server, http, settings, encoder):
    """Issue #27: the schema had no security scheme (so /docs could not send the key) and stated no constraint the
    server enforces; "include_hidden": "yes" was taken; an unknown filters.category on /v1/chat was silently taken
    (/v1/items refuses it); /metrics was documented as JSON."""
    schema = httpx.get(f"{server}/openapi.json").json()
    assert schema["components"]["securitySchemes"] == {"HTTPBearer": {"type": "http", "scheme": "bearer"}}
    assert all(operation["security"] == [{"HTTPBearer": []}]
               for path, operations in schema["paths"].items() if path.startswith("/v1/")
               for operation in operations.values())
    assert "security" not in schema["paths"]["/healthz"]["get"]
    asked = schema["components"]["schemas"]["ChatRequest"]["properties"]
    assert asked["message"]["minLength"] == 1 and asked["exclude_ids"]["maxItems"] == MAX_EXCLUDE_IDS
    assert asked["session_id"]["maxLength"] == 200 and asked["include_hidden"]["type"] == "boolean"
    assert schema["components"]["schemas"]["Constraints"]["properties"]["min_price"]["anyOf"][0]["minimum"] == 0
    searched = {p["name"]: p["schema"] for p in schema["paths"]["/v1/items"]["get"]["parameters"]}
    assert searched["min_price"]["minimum"] == 0 and searched["max_price"]["minimum"] == 0
    assert list(schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    assert error_of(http.post("/v1/chat", json={"message": COAT, "include_hidden": "yes"}), 422)["type"] == \
        "ValidationError"
    error = error_of(http.post("/v1/chat", json={"message": COAT, "filters": {"category": "spaceships"}}), 400)
    assert error["type"] == "InvalidArgumentError" and "no category 'spaceships'; choose one of" in error["message"]
    assert http.post("/v1/chat", json={"message": COAT, "filters": {"category": "Coats & Jackets"}}).status_code == 200
    assert error_of(http.get("/v1/items", params={"min_price": -1}), 400)["type"] == "InvalidArgumentError"
    keyless = settings.model_copy(update={
        "llm": settings.llm.model_copy(update={"backend": "none"}),
        "api": settings.api.model_copy(update={"ui": False}),
    })
    with TestClient(create_app(RecChat.from_settings(keyless, encoder=encoder)), base_url=LOCAL) as client:
        open_schema = client.get("/openapi.json").json()
    assert "securitySchemes" not in open_schema["components"]
    assert "security" not in open_schema["paths"]["/v1/chat"]["post"]


def test_any_host_header_was_accepted_so_a_rebinding_page_could_reach_the_localhost_server(server):
    """Issue #27, item 11: a page whose name an attacker rebinds to 127.0.0.1 made the browser call the server with
    its own name as the Host; the server answered it. Now it answers only its own names, whatever the key."""
    port = server.rsplit(":", 1)[1]
    foreign_hosts = (
        f"evil.example:{port}", "evil.example", f"localhost.evil.example:{port}", f"evil.example@localhost:{port}", "",
        "localhost:port",
    )
    for foreign in foreign_hosts:
        for path in ("/healthz", "/docs", "/v1/items"):
            refused = httpx.get(f"{server}{path}", headers={"Host": foreign, "Authorization": f"Bearer {KEY}"})
            error = error_of(refused, 400)
            assert error["type"] == "InvalidHost" and "api.allowed_hosts" in error["message"], foreign
    for own in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}", "localhost"):
        assert httpx.get(f"{server}/healthz", headers={"Host": own}).status_code == 200, own
    assert float(metric(httpx.get(f"{server}/metrics").text, 'recchat_errors_total{type="InvalidHost"}')) >= 1


@pytest.mark.parametrize("host", ["http://shop.example.com", "shop.example.com:8080", "shop.example.com/", ""])
def test_allowed_hosts_that_no_request_could_match_are_refused_at_start_up(host):
    with pytest.raises(ValidationError, match="api.allowed_hosts takes host names without scheme, port or path"):
        Settings(api={"allowed_hosts": [host]})


def test_configured_allowed_hosts_replace_the_bound_names_and_every_address_answers_any(settings, encoder, caplog):
    model_off = settings.model_copy(update={"llm": settings.llm.model_copy(update={"backend": "none"})})
    bot = RecChat.from_settings(model_off, encoder=encoder)
    named = ApiSettings(ui=False, allowed_hosts=["Shop.Example.com", "[::1]"])
    with TestClient(create_app(bot, named), base_url="http://shop.example.com:8080") as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/healthz", headers={"Host": "[::1]:8080"}).status_code == 200
        assert error_of(client.get("/healthz", headers={"Host": "localhost"}), 400)["type"] == "InvalidHost"
    with caplog.at_level(logging.WARNING, "recchat.server"):
        everywhere = create_app(bot, ApiSettings(ui=False, host="0.0.0.0"))
    assert "any Host header is answered" in caplog.text and "api.allowed_hosts" in caplog.text
    with TestClient(everywhere, base_url="http://192.0.2.7:8080") as client:
        assert client.get("/healthz", headers={"Host": "anything.example"}).status_code == 200
    with TestClient(create_app(bot, ApiSettings(ui=False, host="10.0.0.5")), base_url="http://10.0.0.5") as client:
        assert client.get("/healthz").status_code == 200
        assert error_of(client.get("/healthz", headers={"Host": "localhost"}), 400)["type"] == "InvalidHost"


def test_the_docs_pages_loaded_their_assets_from_a_cdn_and_now_load_them_from_the_server(server):
    """Issue #27: /docs took Swagger UI's script and style from a CDN, so it was blank with no internet. The pages
    (and ReDoc's) now name only this server's paths, and each answers (/docs's "Authorize" is tested in a browser in
    test_ui_browser.py)."""
    assert '"validatorUrl": null' in httpx.get(f"{server}/docs").text  # else Swagger UI shows a badge from swagger.io
    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{server}{page}")
        assert html.status_code == 200
        referenced = re.findall(r'(?:src|href|spec-url)="([^"]+)"|url: \'([^\']+)\'', html.text)
        urls = [one or other for one, other in referenced]
        assert len(urls) >= 3 and not [url for url in urls if not url.startswith("/") or url.startswith("//")]
        for url in urls:
            assert httpx.get(f"{server}{url}").status_code == 200, url  # no key needed: docs and schema are open


def metric(text: str, name: str) -> str:
    return next(line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(name + " "))


def test_the_client_has_recchats_method_names_and_raises_its_typed_errors(server):
    with RecChatClient(server, api_key=KEY) as bot:
        session_id = bot.new_session(user_id="bea")
        reply = bot.chat(COAT, session_id)
        assert reply.items and reply.metadata.user_id == "bea"
        events = list(bot.stream("cheaper ones", session_id))
        assert events[-1].kind == "done" and events[-1].reply.metadata.turn == 2
        assert bot.feedback("like", reply.items[0].id, session_id=session_id) is True
        assert bot.item(reply.items[0].id).title == reply.items[0].title
        assert bot.search("winter coat", limit=3)[0][1] is not None
        with pytest.raises(InvalidMessageError):
            bot.chat("")
        with pytest.raises(UnknownSessionError):
            bot.chat(COAT, "not-a-session")
        with pytest.raises(SessionOwnerError):
            bot.chat(COAT, session_id, user_id="someone-else")
        with pytest.raises(UnknownItemError):
            bot.feedback("like", "no-such-item", user_id="bea")
        with pytest.raises(InvalidMessageError):
            list(bot.stream("", session_id))
        assert bot.forget_user("bea") >= 1

    async def remote() -> tuple[RecommendationList, list[StreamEvent]]:
        client = RecChatClient(server, api_key=KEY)
        try:
            return await client.achat(COAT), [event async for event in client.astream(COAT)]
        finally:
            await client.aclose()

    answered, streamed = asyncio.run(remote())
    assert [item.id for item in answered.items] == [item.id for item in streamed[-1].reply.items]


def test_the_sse_wire_format_is_one_json_line_per_event(http):
    with http.stream("POST", "/v1/chat/stream", json={"message": "a wool scarf"}) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[0] == "event: message" and lines[-2] == "event: done"
    assert all(line.startswith(("event: ", "data: ")) for line in lines)
    assert json.loads(lines[-1].removeprefix("data: "))["reply"]["items"]


@pytest.mark.parametrize("when_busy", ["retrieval", "refuse"])
def test_turns_past_llm_max_waiting_are_answered_from_search_or_refused_with_429(settings, encoder, when_busy):
    """Issue #27 (what a public API is expected to have): a bounded queue in front of the model, so that a flood of
    turns does not make every user wait 15 s. One turn holds the model (llm.max_waiting = 1); the next is answered from
    search at once, marked, or refused with 429 and Retry-After, as llm.when_busy says."""
    slow = SlowBackend()
    tuned = settings.model_copy(update={
        "llm": settings.llm.model_copy(update={"max_waiting": 1, "when_busy": when_busy, "timeout_s": 30}),
        "api": settings.api.model_copy(update={"ui": False}),
    })
    bot = RecChat.from_settings(tuned, encoder=encoder, backend=slow)
    with served_here(create_app(bot)) as base:
        def hold_the_model() -> None:
            with pytest.raises(httpx.ReadTimeout):  # then this client leaves, and its turn stops
                httpx.post(f"{base}/v1/chat", json={"message": COAT}, timeout=httpx.Timeout(60, read=4))

        holding = threading.Thread(target=hold_the_model)
        holding.start()
        assert slow.started.wait(timeout=30) and bot.llm.waiting == 1
        started = time.perf_counter()
        busy = httpx.post(f"{base}/v1/chat", json={"message": "running shoes"}, timeout=60)
        streamed = httpx.post(f"{base}/v1/chat/stream", json={"message": "running shoes"}, timeout=60)
        assert time.perf_counter() - started < 3  # nobody waited for the model
        if when_busy == "retrieval":
            meta = busy.json()["metadata"]
            assert busy.status_code == 200 and busy.json()["items"] and meta["source"] == "retrieval"
            assert meta["fallback_reason"].startswith("the language model is busy: 1 turns are at it")
            assert streamed.status_code == 200 and "the language model is busy" in streamed.text
            assert float(metric(httpx.get(f"{base}/metrics").text, "recchat_fallbacks_total")) == 2
        else:
            for refused in (busy, streamed):
                error = error_of(refused, 429)
                assert error["type"] == "LLMBusyError" and "llm.max_waiting = 1" in error["message"]
                assert int(refused.headers["retry-after"]) >= 1
        holding.join()
        assert slow.stopped.wait(timeout=5) and bot.llm.waiting == 0  # the place is free again


def test_with_feedback_off_feedback_is_503_and_health_says_so(tmp_path):
    off = {
        "RECCHAT_DATA_DIR": str(tmp_path / "off"), "RECCHAT_LLM__BACKEND": "none", "RECCHAT_FEEDBACK__ENABLED": "false",
    }
    with ApiServer(off, tmp_path / "off.log") as server:
        refused = httpx.post(f"{server.base_url}/v1/feedback", json={"kind": "like", "item_id": "P0007-wool-overcoat",
                                                                      "user_id": "u"})
        assert error_of(refused, 503)["type"] == "FeedbackOffError"
        assert httpx.get(f"{server.base_url}/healthz").json()["store"] == {"enabled": False}


def test_a_store_failing_mid_run_is_503_for_feedback_and_health_while_turns_still_answer(settings, encoder, tmp_path):
    """The feedback log goes away under a running server (its connection closed, as when the disk goes): the app over
    that engine, served by uvicorn in this process so the test can break the store, over real HTTP."""
    tuned = settings.model_copy(update={
        "llm": settings.llm.model_copy(update={"backend": "none"}),
        "feedback": settings.feedback.model_copy(update={"path": tmp_path / "feedback.sqlite3"}),
        "api": settings.api.model_copy(update={"ui": False}),
    })
    bot = RecChat.from_settings(tuned, encoder=encoder)
    with served_here(create_app(bot)) as base:
        assert httpx.get(f"{base}/healthz").status_code == 200
        bot.feedback_store.close()  # the disk went away
        health = httpx.get(f"{base}/healthz")
        assert health.status_code == 503 and health.json()["store"]["status"] == "unavailable"
        like = {"kind": "like", "item_id": "P0007-wool-overcoat", "user_id": "u"}
        liked = httpx.post(f"{base}/v1/feedback", json=like)
        assert error_of(liked, 503)["type"] == "FeedbackStoreError"
        answered = httpx.post(f"{base}/v1/chat", json={"message": COAT}, timeout=60)
        assert answered.status_code == 200 and answered.json()["items"]  # unlogged, but answered


class SlowBackend(LLMBackend):
    """A model that talks slowly and never finishes by itself (a long generation), and notes when its reader stopped
    it."""

    name = "slow"

    def __init__(self) -> None:
        self.started, self.stopped = threading.Event(), threading.Event()

    def stream(self, messages, *, schema=None, max_tokens=256) -> Iterator[str]:
        self.started.set()
        try:
            for _ in range(600):
                time.sleep(0.05)
                yield " "
        finally:
            self.stopped.set()


def test_a_client_that_leaves_a_non_streamed_turn_stops_its_generation(settings, encoder):
    """Issue #27: ten abandoned POST /v1/chat kept the server busy for 17 s; the stream already stopped its turn."""
    slow = SlowBackend()
    tuned = settings.model_copy(update={"api": settings.api.model_copy(update={"ui": False})})
    bot = RecChat.from_settings(tuned, encoder=encoder, backend=slow)
    with served_here(create_app(bot)) as base:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{base}/v1/chat", json={"message": COAT}, timeout=httpx.Timeout(60, read=1))
        assert slow.started.is_set()
        left = time.perf_counter()
        assert slow.stopped.wait(timeout=5), "the abandoned turn is still generating"
        assert time.perf_counter() - left < 2
        assert 'recchat_errors_total{type="ClientGone"} 1.0' in httpx.get(f"{base}/metrics").text


def test_a_streamed_turn_running_when_its_user_is_forgotten_writes_nothing_for_them_afterwards(settings, encoder,
                                                                                             tmp_path):
    """Issue #27 (forgetting is final): a streamed turn still running when DELETE /v1/users/{id} returned logged its
    5 impressions after it, so the user was back in the log."""
    gated = GatedBackend()
    logged = {"path": tmp_path / "feedback.sqlite3", "store_messages": True}
    tuned = settings.model_copy(update={
        "feedback": settings.feedback.model_copy(update=logged), "api": settings.api.model_copy(update={"ui": False}),
    })
    bot = RecChat.from_settings(tuned, encoder=encoder, backend=gated)
    with served_here(create_app(bot)) as base, httpx.Client(base_url=base, timeout=60) as http:
        with http.stream("POST", "/v1/chat/stream", json={"message": COAT, "user_id": "ann"}) as streamed:
            lines = streamed.iter_lines()
            assert next(lines) == "event: message"
            assert gated.started.wait(timeout=30)  # the turn is at the model
            assert http.delete("/v1/users/ann").json() == {"deleted": 0}
            gated.gate.set()
            rest = list(lines)
        assert "event: done" in rest  # its reader still gets the reply
    assert bot.feedback_store.count("ann") == 0 and bot.feedback_store.messages("ann") == []
    assert "ann" not in bot.feedback_model.users


@pytest.fixture
def logged_bot(settings, encoder, tmp_path) -> RecChat:
    """An engine (LLM off, no UI) over a feedback log of 20,000 events by 500 users."""
    tuned = settings.model_copy(update={
        "llm": settings.llm.model_copy(update={"backend": "none"}),
        "feedback": settings.feedback.model_copy(update={"path": tmp_path / "feedback.sqlite3"}),
        "api": settings.api.model_copy(update={"ui": False}),
    })
    bot = RecChat.from_settings(tuned, encoder=encoder)
    items = [item.id for item in bot.catalog]
    bot.feedback_store.add([
        FeedbackEvent(kind="like" if n % 3 else "impression", user_id=f"u{n % 500}", item_id=items[n % len(items)],
                      key=f"k{n}", time=1e9 + n)
        for n in range(20_000)
    ])
    bot.feedback_model.sync(bot.feedback_store)
    bot.feedback_model.learned.wait()
    return bot


def test_deleting_a_user_who_never_existed_does_not_refit_and_returns_at_once(logged_bot):
    """Issue #27: every DELETE ran a VACUUM, a replay of the whole log and a refit of the learned models, even for a
    user who never existed (2.6 s at 75k events)."""
    bot, model = logged_bot, logged_bot.feedback_model
    fits, generation = model.learned.fits, bot.feedback_store.generation()
    with TestClient(create_app(bot), base_url=LOCAL) as client:
        took = []
        for _ in range(5):
            started = time.perf_counter()
            assert client.delete("/v1/users/never-seen").json() == {"deleted": 0}
            took.append(time.perf_counter() - started)
        model.learned.wait()
        assert model.learned.fits == fits and bot.feedback_store.generation() == generation  # nothing to redo
        assert sorted(took)[2] < 0.2
        held = bot.feedback_store.count("u7")
        assert client.delete("/v1/users/u7").json() == {"deleted": held} and held == 40
        assert bot.feedback_store.count("u7") == 0 and "u7" not in model.users
        model.learned.wait()
        assert model.learned.fits == fits + 1  # someone was deleted: the models forget them too, in the background


def test_deleting_a_user_replays_the_log_beside_other_users_turns(logged_bot):
    """Issue #27: turns went from 51 ms to 5.2 s while users were deleted: the replay held the lock every turn
    needs. Now the replay runs on a copy, and turns go on with the state before it until it is swapped in."""
    bot, model = logged_bot, logged_bot.feedback_model
    with TestClient(create_app(bot), base_url=LOCAL) as client:
        deleting = threading.Thread(target=lambda: client.delete("/v1/users/u8"))
        deleting.start()
        while not model.rebuilding and deleting.is_alive():
            time.sleep(0.001)
        assert model.rebuilding, "the replay ran on the request, not beside it"
        assert model.lock.acquire(timeout=0.1)  # a turn's lock is free while the log replays
        model.lock.release()
        answered = client.post("/v1/chat", json={"message": COAT, "user_id": "u9"})
        assert answered.status_code == 200 and answered.json()["items"]
        deleting.join()
    assert bot.feedback_store.count("u8") == 0 and "u8" not in model.users and not model.rebuilding


@pytest.mark.slow
def test_two_workers_share_the_feedback_log(tmp_path):
    """`recchat serve --workers 2`: each worker has its own engine over the same feedback log, so a dislike taken by
    either hides the item in every answer after it, whichever worker gives it."""
    env = {"RECCHAT_DATA_DIR": str(tmp_path), "RECCHAT_LLM__BACKEND": "none"}
    with ApiServer(env, tmp_path / "server.log", args=("--workers", "2", "--no-ui")) as server, \
            httpx.Client(base_url=server.base_url, timeout=60) as http:
        first = http.post("/v1/chat", json={"message": COAT, "user_id": "w"}).json()["items"][0]["id"]
        assert http.post("/v1/feedback", json={"kind": "dislike", "item_id": first, "user_id": "w"}).json()["recorded"]
        for _ in range(8):  # new connections: the workers take turns accepting them
            with httpx.Client(base_url=server.base_url, timeout=60) as fresh:
                reply = fresh.post("/v1/chat", json={"message": COAT, "user_id": "w"}).json()
            assert first not in [item["id"] for item in reply["items"]] and first in reply["metadata"]["hidden_ids"]
    assert (tmp_path / "server.log").read_text().count("Started server process") == 2


def test_a_clarifying_question_comes_over_http_and_its_option_answers_it(http):
    first = http.post("/v1/chat", json={"message": "I need a jacket"}).json()
    question = first["question"]
    assert question is not None and question["options"] and {"value", "label", "message", "count"} <= set(
        question["options"][0]
    )
    session = first["metadata"]["session_id"]
    answered = http.post("/v1/chat", json={"message": question["options"][0]["message"], "session_id": session})
    state = answered.json()["metadata"]["request"]["state"]
    assert question["facet"] in state["wants"] and "jacket" in state["subject"]


def test_megabytes_of_headers_got_a_200_and_half_sent_requests_had_no_bound(tmp_path):
    """#27 item 8: 32 MB of headers were read and answered 200; 1,000 half-sent requests all stayed open. Now the
    headers stop at `api.max_header_bytes` (400, the rest unread) and past `api.max_connections` a new connection
    gets 503 at once, while the server goes on answering once the half-sent ones go."""
    import socket

    env = {"RECCHAT_DATA_DIR": str(tmp_path), "RECCHAT_LLM__BACKEND": "none", "RECCHAT_API__MAX_CONNECTIONS": "8"}
    with ApiServer(env, tmp_path / "server.log", args=("--no-ui",)) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as big:
            sent = 0
            try:
                big.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ")
                while sent < 8 * 1024 * 1024:
                    big.sendall(b"a" * 65536)
                    sent += 65536
            except OSError:  # the server closed the connection before the headers ended: what is wanted
                pass
            answer = big.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400") and sent < 8 * 1024 * 1024

        half_sent = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(8)]
        for connection in half_sent:
            connection.sendall(b"POST /v1/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
        time.sleep(0.5)
        assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 503
        for connection in half_sent:
            connection.close()
        time.sleep(0.5)
        assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200
