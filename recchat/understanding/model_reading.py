"""The model reads the message too (`chat.state_reader` = "model" or "both"): a JSON schema whose enums are the
catalog's own facet values (an audience's groups, colours, values of other facets with few of them), enforced by the
decoding grammar (llama.cpp) or structured outputs (vLLM), so that the model can only choose among them. The rules
still read prices, numeric limits, exclusions, kinds and "any colour"; measured against them in `recchat eval
converse` (README)."""

from __future__ import annotations

import json
import logging

from recchat.errors import BackendUnavailableError
from recchat.llm.guard import GuardedBackend
from recchat.prompts import Prompt
from recchat.understanding.lexicon import COMPATIBLE, CatalogLexicon, audience_group

MAX_ENUM = 30
"""Facets with more values than this are left to the rules: every listed value is prompt time."""
MAX_TOKENS = 96
logger = logging.getLogger(__name__)


def readable_facets(lexicon: CatalogLexicon) -> dict[str, list[str]]:
    """Each facet the model may answer, with what it may answer: an audience's groups, a boolean's true, the values
    of a facet with few of them."""
    readable = {}
    for name, facet in lexicon.facets.items():
        if facet.kind == "audience":
            groups = {audience_group(value) for value in facet.values} - {None}
            readable[name] = [group for group in COMPATIBLE if group in groups]
        elif facet.kind == "boolean":
            readable[name] = ["true"]
        elif facet.kind not in ("numeric", "name") and len(facet.values) <= MAX_ENUM:
            readable[name] = [value.lower() for value in facet.values]
    return readable


def reading_schema(readable: dict[str, list[str]]) -> dict:
    return {
        "type": "object",
        "properties": {name: {"enum": [*values, None]} for name, values in readable.items()},
        "required": list(readable),
        "additionalProperties": False,
    }


def read_with_model(
    llm: GuardedBackend, prompt: Prompt, lexicon: CatalogLexicon, message: str
) -> dict[str, list[str]] | None:
    """What the model reads of the message, as facet wants (as the rules give them); None when no model answered or
    its answer did not parse (the rules' reading then stands alone)."""
    readable = readable_facets(lexicon)
    if not readable:
        return {}
    attributes = "\n".join(f"{name}: {' | '.join(values)}" for name, values in readable.items())
    messages = prompt.messages(attributes=attributes, message=message)
    try:
        answer = "".join(llm.stream(messages, reading_schema(readable), MAX_TOKENS))
        read = json.loads(answer)
    except (BackendUnavailableError, json.JSONDecodeError) as error:
        logger.info("the model did not read the message (%s): the rules' reading stands", error)
        return None
    if not isinstance(read, dict):
        return None
    return {
        name: [str(value).lower()] for name, value in read.items()
        if name in readable and value is not None and str(value).lower() in readable[name]
    }
