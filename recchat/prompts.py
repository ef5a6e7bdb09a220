"""Versioned prompt templates, stored as TOML files under prompts/NAME/vN.toml and loaded by name."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from langchain_core.prompts import ChatPromptTemplate

from recchat.config import PROMPTS_DIR
from recchat.errors import RecChatError

REQUIRED_FIELDS = ("version", "system", "example_user", "example_assistant", "user")
DEFAULT_REASON_MAX_CHARS = 200


class PromptNotFoundError(RecChatError, FileNotFoundError):
    """No prompt file for the asked name or version."""


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    description: str
    template: ChatPromptTemplate
    reason_max_chars: int = DEFAULT_REASON_MAX_CHARS
    """Longest reason the output schema allows: every character is decoding time."""
    job: Literal["write", "choose"] = "write"
    """'write': the model writes each reason (kept only if it passes the grounding check); 'choose': it chooses
    each reason's fact phrases from the item's own (true by construction)."""

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def messages(self, **values: str) -> list[dict[str, str]]:
        """Chat messages in the OpenAI shape, ready for any backend."""
        roles = {"system": "system", "human": "user", "ai": "assistant"}
        return [
            {"role": roles[message.type], "content": str(message.content)}
            for message in self.template.invoke(values).to_messages()
        ]


def available_versions(name: str, prompts_dir: Path = PROMPTS_DIR) -> list[int]:
    folder = prompts_dir / name
    found = (re.fullmatch(r"v(\d+)\.toml", path.name) for path in folder.glob("v*.toml"))
    return sorted(int(match.group(1)) for match in found if match)


def load_prompt(name: str, version: int | None = None, prompts_dir: Path = PROMPTS_DIR) -> Prompt:
    """The prompt `name` at `version`, or its newest version."""
    versions = available_versions(name, prompts_dir)
    if not versions:
        raise PromptNotFoundError(f"no prompt named {name!r} in {prompts_dir}")
    version = versions[-1] if version is None else version
    if version not in versions:
        raise PromptNotFoundError(f"prompt {name!r} has versions {versions}, not {version}")
    path = prompts_dir / name / f"v{version}.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    missing = [field for field in REQUIRED_FIELDS if field not in data]
    if missing or data["version"] != version:
        raise PromptNotFoundError(f"{path} must define {', '.join(REQUIRED_FIELDS)} with version = {version}")
    template = ChatPromptTemplate.from_messages(
        [
            ("system", data["system"]),
            ("human", data["example_user"]),
            ("ai", data["example_assistant"]),
            ("human", data["user"]),
        ],
        template_format="mustache",
    )
    job = data.get("job", "write")
    if job not in ("write", "choose"):
        raise PromptNotFoundError(f"{path}: job must be 'write' or 'choose', not {job!r}")
    return Prompt(
        name, version, data.get("description", ""), template, data.get("reason_max_chars", DEFAULT_REASON_MAX_CHARS),
        job,
    )
