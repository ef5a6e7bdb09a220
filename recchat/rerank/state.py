"""What the feedback log implies, kept current event by event (microseconds) and caught up from the store before
every ranking, so what another process wrote counts too:
- per user (long-term) and per session (short-term), a `Profile`: the latest like, dislike or purchase of each item
  by event time (a late-arriving older event never overrides a newer one), else a click; from these a Rocchio
  preference vector, category affinities and the centre of liked prices. Memory holds the profiles of the
  `rerank.max_profiles` users active last; another user's profile is read back from the store when it is needed;
- per item, how many users hold it positive or negative, and how often it was shown;
- the co-occurrence of positive opinions (`CoOccurrence`), updated pair by pair;
- the learned collaborative model (`LearnedModel`), fitted on the whole log and refitted in the background.

A rebuild replays the store user by user, so it too holds at most `max_profiles` profiles at a time (a quarter more
before a trim), not one per user in the log."""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from recchat.background import BackgroundJob
from recchat.catalog import Catalog
from recchat.collaborative import LearnedModel, TrainingLog
from recchat.config import LearnedSettings, RerankSettings
from recchat.errors import BackgroundStoppedError, FeedbackStoreError
from recchat.feedback import FeedbackEvent, FeedbackStore, StoredEvent
from recchat.models import Item
from recchat.rerank.cooccurrence import CoOccurrence
from recchat.rerank.profiles import OPINION_WEIGHTS, Profile

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

logger = logging.getLogger(__name__)
MAX_SESSIONS = 10_000
REPLAY_PAGE = 1000
"""Events read per query when replaying: the store's lock is never held long for one read."""
FORGOTTEN_WAIT_S = 2.0
"""How long the turn that notices a deletion waits for the replay (a log of about 75k events replays in 1-3 s on 2
cores); a longer replay finishes beside later turns."""
REPLAY_STRIDE, REPLAY_PAUSE_S = 100, 0.0002
"""A replay beside turns pauses this long after this many events (about a millisecond of work): Python runs one
thread at a time, and a turn coming back from its store or socket would otherwise wait up to the interpreter's 5 ms
switch interval each time. Without the pause, turns during a 75k-event replay took 0.8-1 s instead of 36 ms; a
yield (`sleep(0)`) did not hand over."""
REPLAYED_STATE = ("generation", "last_seq", "users", "sessions", "liked_by", "disliked_by", "impressions",
                  "co_occurrence")
REPLAY_SLACK = 1.25
"""A replay keeps up to this many times `max_profiles` (and `MAX_SESSIONS`) profiles between two trims."""
Kept = dict[str, tuple[int, Profile]]
"""During a replay, the profiles kept so far, each with the arrival number of its latest event."""
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
        self.users: OrderedDict[str, Profile] = OrderedDict()
        """The profiles of the users active last, least recent first (see `user`)."""
        self.sessions: OrderedDict[str, Profile] = OrderedDict()
        self.store: FeedbackStore | None = None
        """The store this state follows, where profiles left out of memory are read back from."""
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
            self.store = store
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
        """Everything from the store, now: opinions user by user, co-occurrence in one sparse product, and the
        learned model (fitted now at start-up, else refitted in the background)."""
        with self.lock:
            self.store = store
            log = self._replay(store)
        if self.learned.current is None:  # at start-up: fitted before the first turn
            self.learned.fit(log)
        else:
            self.learned.note(self.learned.settings.refit_events, lambda: log)

    def _replay(self, store: FeedbackStore, beside_turns: bool = False) -> TrainingLog:
        """Replay the store user by user: each user's events in arrival order give their profile and its share of
        the item counts, and the profile is kept only if the user is among the `max_profiles` active last. Returns
        the training log gathered on the way, so a fit after the replay need not read the store again."""
        self.generation = store.generation()
        through = store.last_seq()  # what arrives meanwhile, the next sync applies
        self._reset_counts()
        users: Kept = {}
        sessions: Kept = {}
        positives, sequences = [], []
        replayed = 0
        for history in self._histories(store, through):
            if beside_turns and self._rebuild.stop_requested.is_set():
                raise BackgroundStoppedError("the process is exiting: the feedback replay stops, and is not swapped in")
            profile = Profile()
            for event in history:
                self._apply(event, profile, pairs=False, sessions=sessions)
            if profile.engaged_at:
                _keep(users, history[0].user_id, history[-1].seq, profile, self.settings.max_profiles)
                positives.append(np.array(self._positions(profile.positives()), dtype=np.int32))
                sequences.append(np.array(self._positions(profile.in_time_order()), dtype=np.int64))
            _trim(sessions, MAX_SESSIONS)
            replayed += len(history)
            if beside_turns and replayed >= REPLAY_STRIDE:
                replayed = 0
                time.sleep(REPLAY_PAUSE_S)  # a waiting turn takes the interpreter now
        self.users = _newest(users, self.settings.max_profiles)
        self.sessions = _newest(sessions, MAX_SESSIONS)
        self.last_seq = through
        self.co_occurrence.rebuild(self._matrix(positives))
        return TrainingLog(self._matrix(sequences), sequences)

    @staticmethod
    def _histories(store: FeedbackStore, through: int) -> Iterator[list[StoredEvent]]:
        """Each user's events numbered up to `through`, in arrival order, one user at a time; read a page of
        `REPLAY_PAGE` events per query, so the store's lock is never held long for one read."""
        history: list[StoredEvent] = []
        after = ("", 0)
        while page := store.events_by_user(after, through, REPLAY_PAGE):
            for event in page:
                if history and event.user_id != history[0].user_id:
                    yield history
                    history = []
                history.append(event)
            after = (page[-1].user_id, page[-1].seq)
        if history:
            yield history

    def _rebuild_beside_turns(self, store: FeedbackStore) -> None:
        """After a deletion: replay the store into a copy without holding the lock turns need (at 75k events the
        replay takes a second or more), then swap it in. A copy that is already stale (another deletion, or new
        catalog items meanwhile) is replayed again."""
        try:
            while True:
                with self.lock:
                    fresh = copy.copy(self)
                    fresh.ids, fresh.position, fresh.lock = list(self.ids), dict(self.position), threading.RLock()
                log = fresh._replay(store, beside_turns=True)
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
        self.learned.note(self.learned.settings.refit_events, lambda: log)

    @property
    def rebuilding(self) -> bool:
        """Whether a rebuild after a deletion is running now."""
        return self._rebuild.running

    def wait(self, timeout: float | None = None) -> None:
        """Until a rebuild after a deletion, if one runs, is swapped in (not the learned refit it starts)."""
        self._rebuild.wait(timeout)

    def training_log(self) -> TrainingLog:
        """What the learned models are fitted on: every item each user engaged with, liked or not, and in what order,
        read from the store (memory holds only the profiles of the users active last). Which items a user chose to
        look at says much about what they look at next: on ML-1M, EASE fitted on likes and dislikes reached HR@10
        0.245 against 0.232 on likes alone (recency-weighted likes as the history in both)."""
        if self.store is None:  # a state fed event by event, without a store: what it holds is all there is
            with self.lock:
                profiles = list(self.users.values())
        else:
            profiles = []
            for history in self._histories(self.store, self.store.last_seq()):
                profile = Profile()
                for event in history:
                    if event.kind != "impression":
                        profile.engage(event.item_id, event.time)
                profiles.append(profile)
        sequences = [np.array(self._positions(profile.in_time_order()), dtype=np.int64) for profile in profiles]
        return TrainingLog(self._matrix(sequences), sequences)

    def _positions(self, items: Iterable[str]) -> list[int]:
        """The catalog positions of those of `items` in the catalog."""
        return [self.position[item] for item in items if item in self.position]

    def _matrix(self, per_user: Sequence[Sequence[int]]) -> csr_matrix:
        from scipy.sparse import csr_matrix

        rows = [row for row, positions in enumerate(per_user) for _ in positions]
        cols = [position for positions in per_user for position in positions]
        shape = (max(1, len(per_user)), len(self.ids))
        return csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)

    def apply(self, event: FeedbackEvent, pairs: bool = True) -> None:
        """One event's effect. `pairs=False` skips co-occurrence (a rebuild computes it in bulk)."""
        with self.lock:
            if event.kind == "impression":
                self._apply(event, None)
                return
            # new, or left out of memory: their profile as it stood before this event
            user = self.users.get(event.user_id) or self._read_back(event.user_id) or Profile()
            self._remember(event.user_id, user)
            self._apply(event, user, pairs, self.sessions)

    def _apply(
        self, event: FeedbackEvent, user: Profile | None, pairs: bool = True, sessions: dict | None = None
    ) -> None:
        """One event's effect on the item counts, on its user's profile and on its session's (in `sessions`: the
        live ones, or those a replay keeps)."""
        position = self.position.get(event.item_id)
        if event.kind == "impression":
            if position is not None:
                self.impressions[position] += 1
            return
        assert user is not None and sessions is not None
        before, after = self._update(user, event)
        if position is not None and before != after:
            self.liked_by[position] += (after > 0) - (before > 0)
            self.disliked_by[position] += (after < 0) - (before < 0)
            if pairs and (before > 0) != (after > 0):
                others = self._positions(user.positives())
                self.co_occurrence.change(position, others, 1 if after > 0 else -1)
        if not event.session_id:
            return
        if isinstance(sessions, OrderedDict):  # live: the most recent last, the oldest dropped
            session = sessions.get(event.session_id) or Profile()
            sessions[event.session_id] = session
            sessions.move_to_end(event.session_id)
            while len(sessions) > MAX_SESSIONS:
                sessions.popitem(last=False)
        else:
            seq, session = sessions.get(event.session_id, (0, Profile()))
            sessions[event.session_id] = (max(seq, getattr(event, "seq", 0)), session)
        self._update(session, event)

    def _remember(self, user_id: str, profile: Profile) -> None:
        """Keep the profile as the most recent; past `max_profiles`, the least recent leaves memory, when it can be
        read back from a store."""
        self.users[user_id] = profile
        self.users.move_to_end(user_id)
        while self.store is not None and len(self.users) > self.settings.max_profiles:
            self.users.popitem(last=False)

    def _read_back(self, user_id: str) -> Profile | None:
        """The user's profile from their events in the store up to the last one applied; None when they have none
        (and without a store)."""
        if self.store is None:
            return None
        events = self.store.user_events(user_id, self.last_seq + 1)
        if not events:
            return None
        profile = Profile()
        for event in events:
            self._update(profile, event)
        return profile

    def _update(self, profile: Profile, event: FeedbackEvent) -> tuple[float, float]:
        item = event.item_id
        before = profile.weight(item)
        profile.engage(item, event.time)
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

    def vectors_in_order(self, item_ids: list[str]) -> np.ndarray:
        """The items' unit vectors, in the order given (as the index's `vectors_in_order`, without reading it)."""
        with self.lock:
            return self.vectors[[self.position[item_id] for item_id in item_ids]]

    def user(self, user_id: str) -> Profile | None:
        """The user's long-term profile, read back from the store when it is not in memory (None for a user without
        clicks or opinions, or when the store cannot be read: the turn is then ranked without it)."""
        with self.lock:
            profile = self.users.get(user_id)
            if profile is None:
                try:
                    profile = self._read_back(user_id)
                except FeedbackStoreError as error:
                    logger.warning("ranking without the profile of user %r: %s", user_id, error)
                    return None
                if profile is None:
                    return None
            self._remember(user_id, profile)
            return profile

    def session_likes(self, session_id: str) -> list[str]:
        """Items liked or bought in this session, latest first."""
        with self.lock:
            session = self.sessions.get(session_id)
            return session.recent_likes() if session else []

    def hidden(self, user_id: str) -> set[str]:
        """Items not to show this user again: disliked and bought ones, as the settings say."""
        with self.lock:
            profile = self.user(user_id)
            if profile is None:
                return set()
            hidden = profile.disliked() if self.settings.hide_disliked else set()
            return hidden | (profile.purchased if self.settings.hide_purchased else set())


def _keep(kept: Kept, key: str, seq: int, profile: Profile, most: int) -> None:
    """Keep a replayed profile (or one updated again)."""
    kept[key] = (seq, profile)
    _trim(kept, most)


def _trim(kept: Kept, most: int) -> None:
    """Past `REPLAY_SLACK` x `most` kept, only the `most` latest stay: one sort per `most` / 4 profiles added."""
    if len(kept) > REPLAY_SLACK * most:
        for key, _ in sorted(kept.items(), key=lambda pair: pair[1][0])[: len(kept) - most]:
            del kept[key]


def _newest(kept: Kept, most: int) -> OrderedDict[str, Profile]:
    """The `most` latest of the replayed profiles, least recent first (the order the live state keeps)."""
    ordered = sorted(kept.items(), key=lambda pair: pair[1][0])[-most:]
    return OrderedDict((key, profile) for key, (_, profile) in ordered)
