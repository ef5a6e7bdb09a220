"""A Python client of the HTTP API with `RecChat`'s method names, so code moves from in-process to remote by
changing one line:

    bot = RecChat.from_settings()                                  # in-process
    bot = RecChatClient("http://127.0.0.1:8080", api_key="...")    # over HTTP

Errors come back as the same typed exceptions (`InvalidMessageError`, `UnknownItemError`, ...)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import httpx

from recchat import errors
from recchat.models import Constraints, Item, RecommendationList, StreamEvent


class RecChatClient:
    def __init__(self, base_url: str = "http://127.0.0.1:8080", api_key: str | None = None, timeout: float = 120.0):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        self._async = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    async def aclose(self) -> None:
        await self._async.aclose()

    def __enter__(self) -> RecChatClient:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    # --- the RecChat methods ---------------------------------------------------------------

    def new_session(self, user_id: str | None = None) -> str:
        return _json(self._http.post("/v1/sessions", json={"user_id": user_id}))["session_id"]

    def chat(
        self, message: str, session_id: str | None = None, *, user_id: str | None = None,
        exclude_ids: Iterable[str] = (), include_hidden: bool = False, filters: Constraints | None = None,
    ) -> RecommendationList:
        body = _turn(message, session_id, user_id, exclude_ids, include_hidden, filters)
        return RecommendationList.model_validate(_json(self._http.post("/v1/chat", json=body)))

    async def achat(
        self, message: str, session_id: str | None = None, *, user_id: str | None = None,
        exclude_ids: Iterable[str] = (), include_hidden: bool = False, filters: Constraints | None = None,
    ) -> RecommendationList:
        body = _turn(message, session_id, user_id, exclude_ids, include_hidden, filters)
        return RecommendationList.model_validate(_json(await self._async.post("/v1/chat", json=body)))

    def stream(
        self, message: str, session_id: str | None = None, *, user_id: str | None = None,
        exclude_ids: Iterable[str] = (), include_hidden: bool = False, filters: Constraints | None = None,
    ) -> Iterator[StreamEvent]:
        body = _turn(message, session_id, user_id, exclude_ids, include_hidden, filters)
        with self._http.stream("POST", "/v1/chat/stream", json=body) as response:
            if response.is_error:
                response.read()
                _json(response)
            yield from _events(response.iter_lines())

    async def astream(
        self, message: str, session_id: str | None = None, *, user_id: str | None = None,
        exclude_ids: Iterable[str] = (), include_hidden: bool = False, filters: Constraints | None = None,
    ) -> AsyncIterator[StreamEvent]:
        body = _turn(message, session_id, user_id, exclude_ids, include_hidden, filters)
        async with self._async.stream("POST", "/v1/chat/stream", json=body) as response:
            if response.is_error:
                await response.aread()
                _json(response)
            lines = [line async for line in response.aiter_lines()]  # a turn's events are few and small
            for event in _events(lines):
                yield event

    def feedback(
        self, kind: str, item_id: str, *, session_id: str | None = None, user_id: str | None = None,
        turn: int | None = None, key: str | None = None, time: float | None = None,
    ) -> bool:
        body = {
            "kind": kind, "item_id": item_id, "session_id": session_id, "user_id": user_id, "turn": turn, "key": key,
            "time": time,
        }
        return _json(self._http.post("/v1/feedback", json=body))["recorded"]

    def forget_user(self, user_id: str) -> int:
        return _json(self._http.delete(f"/v1/users/{_path(user_id)}"))["deleted"]

    def user_token(self, user_id: str, ttl_s: float | None = None) -> str:
        """A token that acts for `user_id` only (this client must hold the key): hand it to that user's app, whose
        `RecChatClient(url, api_key=token)` then asks, gives feedback and forgets for that user, and nobody else."""
        return _json(self._http.post(f"/v1/users/{_path(user_id)}/token", json={"ttl_s": ttl_s}))["token"]

    def item(self, item_id: str) -> Item:
        return Item.model_validate(_json(self._http.get(f"/v1/items/{_path(item_id)}")))

    def search(self, q: str | None = None, *, limit: int = 10, **filters: Any) -> list[tuple[Item, float | None]]:
        """Catalog search without chat (`category`, `min_price`, `max_price` filters): (item, score) pairs."""
        params = {"q": q, "limit": limit, **filters}
        found = _json(self._http.get("/v1/items", params={k: v for k, v in params.items() if v is not None}))
        return [(Item.model_validate(hit["item"]), hit["score"]) for hit in found["items"]]


def _turn(message, session_id, user_id, exclude_ids, include_hidden, filters) -> dict:
    return {
        "message": message, "session_id": session_id, "user_id": user_id, "exclude_ids": list(exclude_ids),
        "include_hidden": include_hidden, "filters": filters.model_dump() if filters is not None else None,
    }


def _path(value: str) -> str:
    """An id as one path segment: '/' and the like escaped, so an id never reaches another route."""
    from urllib.parse import quote

    return quote(value, safe="")


def _events(lines: Iterable[str]) -> Iterator[StreamEvent]:
    """Server-sent events -> `StreamEvent`s; an `error` event raises its typed error."""
    kind = None
    for line in lines:
        if line.startswith("event:"):
            kind = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data = json.loads(line.partition(":")[2])
            if kind == "error":
                raise _typed(data["error"]["type"], data["error"]["message"])
            yield StreamEvent.model_validate(data)


def _json(response: httpx.Response) -> dict:
    """The body of a successful response; an error body raised as the server's typed error."""
    if response.is_success:
        return response.json()
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        raise errors.RecChatError(f"HTTP {response.status_code} from {response.url}: {response.text[:200]}") from None
    typed = _typed(error["type"], error["message"])
    if isinstance(typed, errors.LLMBusyError) and response.headers.get("retry-after", "").isdigit():
        typed.retry_after_s = int(response.headers["retry-after"])
    raise typed


def _typed(kind: str, message: str) -> Exception:
    """The recchat error class of that name, else `RecChatError` (validation, auth and body-size errors)."""
    error_class = getattr(errors, kind, None)
    if isinstance(error_class, type) and issubclass(error_class, errors.RecChatError):
        return error_class(message)
    return errors.RecChatError(f"{kind}: {message}")
