"""The HTTP API's request and response bodies. Replies are the Python API's own models (`RecommendationList`,
`StreamEvent`, `Item`); these are only what HTTP adds around them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from recchat.bounds import MAX_EXCLUDE_IDS
from recchat.feedback.events import MAX_COUNT
from recchat.models import Constraints, Item
from recchat.session import MAX_ID_CHARS

STATED_ID = {"minLength": 1, "maxLength": MAX_ID_CHARS}
"""What the schema says of a session or user id. The server checks more (printable text) and answers with a 400
`SessionError` saying what to send, so these bounds are stated, not enforced by the schema's validation."""


class Body(BaseModel):
    """Unknown fields are refused: a misspelt `sesion_id` must not silently start a new session."""

    model_config = ConfigDict(extra="forbid")


class ChatRequest(Body):
    message: str = Field(
        description="What the shopper wrote: not blank (else a 400 InvalidMessageError), at most "
        "chat.max_message_chars characters.",
        json_schema_extra={"minLength": 1, "pattern": r"\S"},
    )
    session_id: str | None = Field(
        default=None, json_schema_extra=STATED_ID,
        description="A session from POST /v1/sessions (or an earlier reply); none starts one.",
    )
    user_id: str | None = Field(
        default=None, json_schema_extra=STATED_ID, description="Whose feedback personalises the answer."
    )
    filters: Constraints | None = Field(
        default=None, description="Category and price limits on top of what the message says (a UI's controls)."
    )
    exclude_ids: list[str] = Field(
        default_factory=list, json_schema_extra={"maxItems": MAX_EXCLUDE_IDS},
        description=f"Items never to offer in this turn and the follow-ups that refine it (at most {MAX_EXCLUDE_IDS}, "
        "with filters.excluded_ids): they join the session's dialogue state (`excluded_ids`, the newest "
        f"{MAX_EXCLUDE_IDS} kept; DELETE /v1/sessions/{{id}}/state/excluded_ids takes them out); a new subject starts "
        "without them.",
    )
    include_hidden: bool = Field(
        default=False, strict=True, description="Also offer items the user disliked or bought (true or false only)."
    )


class SessionRequest(Body):
    user_id: str | None = Field(
        default=None, json_schema_extra=STATED_ID, description="Ties the session to a user; none: anonymous."
    )


class SessionCreated(BaseModel):
    session_id: str


class FeedbackRequest(Body):
    kind: str = Field(description="click, like, dislike or purchase (accept: purchase).")
    item_id: str
    session_id: str | None = Field(default=None, json_schema_extra=STATED_ID)
    user_id: str | None = Field(
        default=None, json_schema_extra=STATED_ID, description="Whose event it is; none: the session's user."
    )
    turn: int | None = Field(default=None, ge=1, le=MAX_COUNT, description="The reply that showed the item.")
    key: str | None = Field(default=None, description="Idempotency key: the same key again records nothing.")
    time: float | None = Field(default=None, description="When it happened, Unix seconds; none: now.")


class TokenRequest(Body):
    ttl_s: float | None = Field(
        default=None, gt=0, description="How long the token stays valid, at most api.user_token_ttl_s (its default)."
    )


class UserToken(BaseModel):
    token: str = Field(description="Send as 'Authorization: Bearer <token>': it acts for this user only.")
    user_id: str
    expires_at: float = Field(description="Unix seconds.")


class FeedbackRecorded(BaseModel):
    recorded: bool = Field(description="False when the key was recorded before (a retry): nothing changed.")


class UserForgotten(BaseModel):
    deleted: int = Field(description="Stored rows deleted (events and messages).")


class Found(BaseModel):
    item: Item
    score: float | None = Field(description="Similarity to `q`, 0..1; none when listing without a query.")


class SearchResults(BaseModel):
    items: list[Found]


class ErrorDetail(BaseModel):
    type: str = Field(description="The error's class, e.g. InvalidMessageError, UnknownItemError, ValidationError.")
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
