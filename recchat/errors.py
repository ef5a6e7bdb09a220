"""Typed errors. Each says what went wrong and what the user can do about it."""

from __future__ import annotations

from dataclasses import dataclass


class RecChatError(Exception):
    """Base class of every error recchat raises on purpose."""


class InvalidMessageError(RecChatError, ValueError):
    """The user's message cannot be answered as given (empty, or too long)."""


class InvalidArgumentError(RecChatError, ValueError):
    """An argument of the Python API has the wrong kind or shape; the message says what to pass."""


class ForbiddenError(RecChatError, PermissionError):
    """The caller may not do this: a user token acts for its own user only."""


class LimitExceededError(InvalidArgumentError):
    """A turn asks for more than recchat's bounds allow (`recchat/bounds.py`): too many excluded items or terms."""


class SessionError(RecChatError, ValueError):
    """A session or user id is malformed, or a session cannot be used as asked."""


class SessionOwnerError(SessionError):
    """A session id was used with a user other than the one it belongs to."""


class PlainKeyError(KeyError):
    """A KeyError whose message reads as written (KeyError's own `str` would quote it)."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownSessionError(SessionError, PlainKeyError):
    """A session id this process does not know, where only a known one will do (the HTTP API's turns)."""


class CatalogNotFoundError(RecChatError, FileNotFoundError):
    """A catalog file or name does not exist."""


@dataclass(frozen=True)
class CatalogProblem:
    """One bad row of a catalog file."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: field '{self.field}': {self.message}"


class CatalogError(RecChatError, ValueError):
    """A catalog file is malformed. Nothing from the file was loaded."""

    def __init__(self, problems: list[CatalogProblem]):
        self.problems = problems
        shown = "\n  ".join(str(p) for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(
            f"catalog has {len(problems)} problem(s); nothing was loaded. Fix these rows:\n  {shown}{more}"
        )


class ModelFilesMissingError(RecChatError, FileNotFoundError):
    """A model (encoder or LLM) cannot be found on disk."""


class ModelFileError(RecChatError, ValueError):
    """A model file exists but cannot be loaded (truncated, corrupt, or not a model)."""


class BackendUnavailableError(RecChatError, ConnectionError):
    """The LLM backend could not produce an answer (down, timed out, or failed)."""


class LLMOffError(BackendUnavailableError):
    """No LLM is configured (llm.backend = 'none'): turns are answered from retrieval by design, not after a failure."""


class LLMBusyError(BackendUnavailableError):
    """More turns are at the LLM than `llm.max_waiting`: the turn is answered from retrieval, or refused (HTTP 429)
    with `llm.when_busy = "refuse"`; `retry_after_s` is about one answer's time."""

    def __init__(self, message: str, retry_after_s: float = 1.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class VectorStoreError(RecChatError, ConnectionError):
    """The vector store (a Chroma server, `vectorstore.url`) cannot be reached; turns work again once it is back."""


class FeedbackError(RecChatError, ValueError):
    """A feedback call cannot be recorded as given (unknown item, malformed event, wrong session)."""


class FeedbackOffError(FeedbackError):
    """Feedback was sent to an engine without a feedback store (feedback.enabled = false)."""


class UnknownItemError(FeedbackError, PlainKeyError):
    """Feedback names an item that is not in the catalog."""


class FeedbackStoreError(RecChatError, OSError):
    """The feedback store cannot be opened, read or written (corrupted, read-only, locked). Nothing was changed."""


class BackgroundStoppedError(RecChatError):
    """Background work (indexing) gave up because its process is exiting; the next start carries on where it
    stopped."""
