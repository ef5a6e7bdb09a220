"""Understanding a message: what the shopper wants, over the catalog's own facets, turn after turn.

- `lexicon`: the catalog's facets (audience, colour, values, booleans, numbers with units) and kinds of product,
  built when it loads;
- `facets` and `specs`: what a message says of them ("for my wife", "preferably navy", "under 1.5 kg");
- `state`: the dialogue state, each message's change to it, their merge, and the request built from it;
- `rules`: `RequestParser`, one message read in full (prices, exclusions, references, follow-up words);
- `chinese`: Chinese messages and the glossary; `checks`: every turn's arguments checked first.
"""

from recchat.understanding.checks import check_message, check_turn_arguments
from recchat.understanding.chinese import detect_language, is_cjk, translate_zh
from recchat.understanding.lexicon import CatalogLexicon, Facet
from recchat.understanding.rules import RequestParser
from recchat.understanding.state import MAX_SUBJECT_WORDS, StateChange, entries, merge, release, request_parts

__all__ = [
    "MAX_SUBJECT_WORDS", "CatalogLexicon", "Facet", "RequestParser", "StateChange", "check_message",
    "check_turn_arguments", "detect_language", "entries", "is_cjk", "merge", "release", "request_parts",
    "translate_zh",
]
