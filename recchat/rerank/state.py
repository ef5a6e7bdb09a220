"""What the feedback log implies, kept current event by event (microseconds) and caught up from the store before
every ranking, so what another process wrote counts too:
- per user (long-term) and per session (short-term), a `Profile`: the latest like, dislike or purchase of each item
  by event time (a late-arriving older event never overrides a newer one), else a click; from these a Rocchio
  preference vector, category affinities and the centre of liked prices;
- per item, how many users hold it positive or negative, and how often it was shown;
- the co-occurrence of positive opinions (`CoOccurrence`), updated pair by pair;
- the learned collaborative model (`LearnedModel`), fitted on the whole log and refitted in the background."""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from recchat.background import BackgroundJob
from recchat.catalog import Catalog
from recchat.collaborative import LearnedModel, TrainingLog
from recchat.config import LearnedSettings, RerankSettings
from recchat.errors import BackgroundStoppedError, FeedbackStoreError
from recchat.feedback import FeedbackEvent, FeedbackStore
from recchat.models import Item
from recchat.rerank.cooccurrence import CoOccurrence
from recchat.rerank.profiles import OPINION_WEIGHTS, Profile

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

logger = logging.getLogger(__name__)
MAX_SESSIONS = 10_000
REPLAY_PAGE = 1000
FORGOTTEN_WAIT_S = 2.0
"""How long the turn that notices a deletion waits for the replay (a log of about 75k events replays in 1-3 s on 2
cores); a longer replay finishes beside later turns."""
"""Events read per query when replaying: the store's lock is never held long for one read."""
REPLAY_STRIDE, REPLAY_PAUSE_S = 100, 0.0002
"""A replay beside turns pauses this long after this many events (about a millisecond of work): Python runs one
thread at a time, and a turn coming back from its store or socket would otherwise wait up to the interpreter's 5 ms
switch interval each time. Without the pause, turns during a 75k-event replay took 0.8-1 s instead of 36 ms; a
yield (`sleep(0)`) did not hand over."""
REPLAYED_STATE = ("generation", "last_seq", "users", "sessions", "liked_by", "disliked_by", "impressions",
                  "co_occurrence")
"""What a rebuild replays from the store, and swaps in whole."""


class FeedbackModel:
    """What the feedback log implies, kept current event by event."""

    def __init__(
        self, catalog: Catalog, vectors: np.ndarray, settings: RerankSettings, learned: LearnedSettings | None = None
    ):
        """`vectors`: unit-length item vectors in catalog order; `learned`: the model fitted on the whole log."""
        self.catalog = catalog
        self.settings = settings
        self.learned = LearnedModel(learned or LearnedSettings())
        self.ids: list[str] = [item.id for item in catalog]
        self.position: dict[str, int] = {item_id: i for i, item_id in enumerate(self.ids)}
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.users: dict[str, Profile] = {}
        self.sessions: OrderedDict[str, Profile] = OrderedDict()
        self._reset_counts()
        self.lock = threading.RLock()
        self.last_seq = 0
        self.generation: int | None = None
        self._rebuild = BackgroundJob("feedback-replay")

    def _reset_counts(self) -> None:
        n = len(self.ids)
        self.liked_by = np.zeros(n)
        self.disliked_by = np.zeros(n)
        self.impressions = np.zeros(n)
        self.co_occurrence = CoOccurrence()

    def add_items(self, items: Sequence[Item], vectors: np.ndarray) -> None:
        """New catalog items: rankable at once, with empty statistics (exploration gives them their chance)."""
        with self.lock:
            for item in items:
                self.position[item.id] = len(self.ids)
                self.ids.append(item.id)
            grow = len(items)
            self.vectors = np.vstack([self.vectors, np.asarray(vectors, dtype=np.float32)])
            for name in ("liked_by", "disliked_by", "impressions"):
                setattr(self, name, np.concatenate([getattr(self, name), np.zeros(grow)]))

    # --- keeping current ------------------------------------------------------------------

    def sync(self, store: FeedbackStore) -> None:
        """Apply what arrived in the store since the last call. When events were deleted, a rebuild starts in the
        background (see `wait`); until it is swapped in, turns read the current state, kept current as before."""
        started = False
        with self.lock:
            if store.generation() != self.generation and not self.rebuilding:
                self._rebuild.start(self._rebuild_beside_turns, store)
                started = True
            events = store.events_after(self.last_seq)
            for event in events:
                self.apply(event)
                self.last_seq = event.seq
        if started:  # someone was forgotten (maybe through another worker): this turn should not show their traces
            self.wait(FORGOTTEN_WAIT_S)
        learned = sum(event.kind != "impression" for event in events)
        if learned:
            self.learned.note(learned, self.training_log)

    def rebuild(self, store: FeedbackStore) -> None:
        """Everything from the store, now: opinions event by event, co-occurrence in one sparse product, and the
        learned model (fitted now at start-up, else refitted in the background)."""
        with self.lock:
            self._replay(store)
        if self.learned.current is None:  # at start-up: fitted before the first turn
            self.learned.fit(self.training_log())
        else:
            self.learned.note(self.learned.settings.refit_events, self.training_log)

    def _replay(self, store: FeedbackStore, beside_turns: bool = False) -> None:
        self.generation = store.generation()
        self.users, self.sessions = {}, OrderedDict()
        self._reset_counts()
        self.last_seq = 0
        while events := store.events_after(self.last_seq, limit=REPLAY_PAGE):
            if beside_turns and self._rebuild.stop_requested.is_set():
                raise BackgroundStoppedError("the process is exiting: the feedback replay stops, and is not swapped in")
            for n, event in enumerate(events):
                self.apply(event, pairs=False)
                if beside_turns and n % REPLAY_STRIDE == 0:
                    time.sleep(REPLAY_PAUSE_S)  # a waiting turn takes the interpreter now
            self.last_seq = events[-1].seq
        self.co_occurrence.rebuild(self.interactions(Profile.positives))

    def _rebuild_beside_turns(self, store: FeedbackStore) -> None:
        """After a deletion: replay the store into a copy without holding the lock turns need (at 75k events the
        replay takes a second or more), then swap it in. A copy that is already stale (another deletion, or new
        catalog items meanwhile) is replayed again."""
        try:
            while True:
                with self.lock:
                    fresh = copy.copy(self)
                    fresh.ids, fresh.position, fresh.lock = list(self.ids), dict(self.position), threading.RLock()
                fresh._replay(store, beside_turns=True)
                with self.lock:
                    if fresh.generation == store.generation() and len(fresh.ids) == len(self.ids):
                        for name in REPLAYED_STATE:
                            setattr(self, name, getattr(fresh, name))
                        break
        except FeedbackStoreError as error:  # the next sync starts another
            logger.warning("feedback state not rebuilt after a deletion, ranking from the one before: %s", error)
            return
        except BackgroundStoppedError:
            return
        self.learned.note(self.learned.settings.refit_events, self.training_log)

    @property
    def rebuilding(self) -> bool:
        """Whether a rebuild after a deletion is running now."""
        return self._rebuild.running

    def wait(self, timeout: float | None = None) -> None:
        """Until a rebuild after a deletion, if one runs, is swapped in (not the learned refit it starts)."""
        self._rebuild.wait(timeout)

    def training_log(self) -> TrainingLog:
        """What the learned models are fitted on: every item each user engaged with, liked or not, and in what order.
        Which items a user chose to look at says much about what they look at next: on ML-1M, EASE fitted on likes
        and dislikes reached HR@10 0.245 against 0.232 on likes alone (recency-weighted likes as the history in
        both)."""
        per_user = self._positions_per_user(Profile.in_time_order)
        return TrainingLog(self._matrix(per_user), [np.array(positions, dtype=np.int64) for positions in per_user])

    def interactions(self, items_of: Callable[[Profile], Iterable[str]]) -> csr_matrix:
        """Users x items, 1 where `items_of(profile)` holds the item."""
        return self._matrix(self._positions_per_user(items_of))

    def _positions_per_user(self, items_of: Callable[[Profile], Iterable[str]]) -> list[list[int]]:
        """Per user, the catalog positions of `items_of(profile)`. The lock is taken per user, so a background refit
        copying a large log never holds up a turn for long."""
        with self.lock:
            users = list(self.users.values())
        per_user = []
        for profile in users:
            with self.lock:
                per_user.append([self.position[item] for item in items_of(profile) if item in self.position])
        return per_user

    def _matrix(self, per_user: list[list[int]]) -> csr_matrix:
        from scipy.sparse import csr_matrix

        rows = [row for row, positions in enumerate(per_user) for _ in positions]
        cols = [position for positions in per_user for position in positions]
        shape = (max(1, len(per_user)), len(self.ids))
        return csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)

    def apply(self, event: FeedbackEvent, pairs: bool = True) -> None:
        """One event's effect. `pairs=False` skips co-occurrence (a rebuild computes it in bulk)."""
        with self.lock:
            position = self.position.get(event.item_id)
            if event.kind == "impression":
                if position is not None:
                    self.impressions[position] += 1
                return
            user = self.users.setdefault(event.user_id, Profile())
            before, after = self._update(user, event)
            if position is not None and before != after:
                self.liked_by[position] += (after > 0) - (before > 0)
                self.disliked_by[position] += (after < 0) - (before < 0)
                if pairs and (before > 0) != (after > 0):
                    others = (self.position.get(other) for other in user.positives())
                    self.co_occurrence.change(position, [p for p in others if p is not None], 1 if after > 0 else -1)
            if event.session_id:
                session = self.sessions.get(event.session_id) or Profile()
                self.sessions[event.session_id] = session
                self.sessions.move_to_end(event.session_id)
                while len(self.sessions) > MAX_SESSIONS:
                    self.sessions.popitem(last=False)
                self._update(session, event)

    def _update(self, profile: Profile, event: FeedbackEvent) -> tuple[float, float]:
        item = event.item_id
        before = profile.weight(item)
        profile.engaged_at[item] = max(event.time, profile.engaged_at.get(item, event.time))
        if event.kind == "click":
            profile.clicked.add(item)
        else:
            if event.kind == "purchase":
                profile.purchased.add(item)
            latest = profile.explicit.get(item)
            if latest is None or event.time >= latest[1]:
                profile.explicit[item] = (OPINION_WEIGHTS[event.kind], event.time)
        after = profile.weight(item)
        position = self.position.get(item)
        if position is not None and before != after:
            vector = self.vectors[position]
            contribution = self._rocchio(after) - self._rocchio(before)
            profile.preference = (profile.preference if profile.preference is not None else 0) + contribution * vector
            catalog_item = self.catalog[item]
            profile.categories[catalog_item.category] += after - before
            profile.weight_total += abs(after) - abs(before)
            if catalog_item.price:
                liked_change = max(after, 0) - max(before, 0)
                profile.log_price_sum += liked_change * math.log(catalog_item.price)
                profile.priced_weight += liked_change
        return before, after

    def _rocchio(self, weight: float) -> float:
        return weight if weight >= 0 else weight * self.settings.disliked

    # --- reading --------------------------------------------------------------------------

    def session_likes(self, session_id: str) -> list[str]:
        """Items liked or bought in this session, latest first."""
        with self.lock:
            session = self.sessions.get(session_id)
            return session.recent_likes() if session else []

    def hidden(self, user_id: str) -> set[str]:
        """Items not to show this user again: disliked and bought ones, as the settings say."""
        with self.lock:
            profile = self.users.get(user_id)
            if profile is None:
                return set()
            hidden = profile.disliked() if self.settings.hide_disliked else set()
            return hidden | (profile.purchased if self.settings.hide_purchased else set())
