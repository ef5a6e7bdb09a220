"""One user's or one session's opinions of items, and the sums the scorers read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

OPINION_WEIGHTS = {"like": 1.0, "purchase": 1.0, "dislike": -1.0}
CLICK_WEIGHT = 0.5
"""A click says less than a like; it counts only while the item has no like, dislike or purchase."""
DONE_WITH = ("looked at", "liked", "bought")
"""What a user did with an item they hold positive, weakest first, as a recommendation's `because` says it."""


@dataclass
class Profile:
    """One user's or one session's opinions of items, and the sums the ranking reads."""

    explicit: dict[str, tuple[float, float]] = field(default_factory=dict)
    """item -> (weight, event time) of the latest like, dislike or purchase."""
    clicked: set[str] = field(default_factory=set)
    engaged_at: dict[str, float] = field(default_factory=dict)
    """item -> time of the latest event of any kind on it (impressions aside), in order of arrival."""
    purchased: set[str] = field(default_factory=set)
    preference: np.ndarray | None = None
    """Sum of liked item vectors minus `disliked` x the disliked ones (Rocchio)."""
    categories: Counter = field(default_factory=Counter)
    weight_total: float = 0.0
    log_price_sum: float = 0.0
    """Sum over liked items with a price of weight x log(price): the centre of the prices the user likes."""
    priced_weight: float = 0.0

    def engage(self, item_id: str, time: float) -> None:
        """An event of any kind but an impression on the item at `time`: the latest time counts."""
        self.engaged_at[item_id] = max(time, self.engaged_at.get(item_id, time))

    def weight(self, item_id: str) -> float:
        if item_id in self.explicit:
            return self.explicit[item_id][0]
        return CLICK_WEIGHT if item_id in self.clicked else 0.0

    def positives(self) -> list[str]:
        return [item for item in {*self.explicit, *self.clicked} if self.weight(item) > 0]

    def done_with(self, item_id: str) -> str:
        """What the user did with an item of `positives()`, one of `DONE_WITH`: a purchase is not a like."""
        if item_id in self.purchased:
            return "bought"
        return "liked" if item_id in self.explicit else "looked at"

    def engaged(self) -> set[str]:
        """Every item with an opinion or a click: liked, disliked, bought or clicked."""
        return {*self.explicit, *self.clicked}

    def in_time_order(self) -> list[str]:
        """Every engaged item, earliest engagement first; of two at the same time, the one that arrived first."""
        return [item for item, _ in sorted(self.engaged_at.items(), key=lambda pair: pair[1])]  # stable: keeps ties

    def recent_likes(self) -> list[str]:
        """Liked and bought items, latest first; of two at the same time, the one that arrived later."""
        liked = [(time, item) for item, (weight, time) in reversed(self.explicit.items()) if weight > 0]
        return [item for _, item in sorted(liked, key=lambda pair: pair[0], reverse=True)]  # stable: keeps ties

    def disliked(self) -> set[str]:
        return {item for item, (weight, _) in self.explicit.items() if weight < 0}


Scaled = list[tuple[Profile, float]]
"""The user's long-term profile (x 1) and the session's (x `rerank.session`), those that exist."""
