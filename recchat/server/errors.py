"""Errors as the HTTP API returns them: JSON `{"error": {"type", "message"}}` with the status that fits. A traceback
never reaches a client: anything unexpected is logged here and answered with a plain 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recchat.errors import (
    BackendUnavailableError,
    FeedbackOffError,
    FeedbackStoreError,
    ForbiddenError,
    LLMBusyError,
    RecChatError,
    SessionOwnerError,
    UnknownItemError,
    UnknownSessionError,
    VectorStoreError,
)

logger = logging.getLogger("recchat.server")

STATUS = (  # the first class that matches wins: subclasses before their bases
    (UnknownItemError, 404),
    (UnknownSessionError, 404),
    (SessionOwnerError, 409),
    (ForbiddenError, 403),
    (FeedbackStoreError, 503),
    (FeedbackOffError, 503),
    (VectorStoreError, 503),
    (LLMBusyError, 429),
    (BackendUnavailableError, 503),
    (RecChatError, 400),
)
HTTP_TYPES = {401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed", 413: "BodyTooLarge"}
UNPARSABLE_BODIES = (  # what FastAPI's JSON reading raises besides a syntax error, which it answers as a bare 400
    (UnicodeDecodeError, "it is not UTF-8"),
    (RecursionError, "it nests too deep"),
    (ValueError, "a number in it is too long"),  # over Python's int digit limit (4,300 digits)
)


def error_response(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)


def status_of(error: RecChatError) -> int:
    return next(status for kind, status in STATUS if isinstance(error, kind))


def install(app: FastAPI, on_error=None) -> None:
    """The handlers; `on_error(type)` counts each error answered (for /metrics)."""

    def answered(response: JSONResponse, kind: str) -> JSONResponse:
        if on_error is not None:
            on_error(kind)
        return response

    @app.exception_handler(RecChatError)
    async def recchat_error(request: Request, error: RecChatError) -> JSONResponse:
        kind = type(error).__name__
        headers = {"Retry-After": str(error.retry_after_s)} if isinstance(error, LLMBusyError) else None
        return answered(error_response(status_of(error), kind, str(error), headers), kind)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        if any(problem.get("type") == "json_invalid" for problem in problems):
            return answered(error_response(400, "InvalidJSON", "the request body is not valid JSON"), "InvalidJSON")
        message = "; ".join(
            f"{'.'.join(str(part) for part in problem.get('loc', ()) if part != 'body') or 'body'}: {problem['msg']}"
            for problem in problems
        )
        return answered(error_response(422, "ValidationError", message), "ValidationError")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 400:
            why = next((why for cause, why in UNPARSABLE_BODIES if isinstance(error.__cause__, cause)), None)
            if why is not None:
                return answered(error_response(400, "InvalidJSON", f"the request body is not valid JSON: {why}"),
                                "InvalidJSON")
        kind = HTTP_TYPES.get(error.status_code, "HTTPError")
        return answered(error_response(error.status_code, kind, str(error.detail), error.headers), kind)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return answered(error_response(500, "InternalError", "internal error; it is logged on the server"), "Internal")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"the request body is over {limit:,} bytes; send less")


class BodyLimit:
    """Refuses request bodies over `limit` bytes with a JSON 413: at once when Content-Length says so, else as soon
    as the bytes read pass it (a chunked upload). Starlette's own limiter answers in plain text."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            error = BodyTooLarge(self.limit)
            return await error_response(413, HTTP_TYPES[413], error.detail)(scope, receive, send)
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge(self.limit)  # an HTTPException: FastAPI lets it through to `http_error`
            return message

        await self.app(scope, limited, send)
