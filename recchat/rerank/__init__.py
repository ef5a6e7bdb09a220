"""Real-time personalization: feedback events -> online state -> candidates re-ranked by weighted scorers.

- `profiles`: one user's or one session's opinions (`Profile`);
- `cooccurrence`: item-item co-occurrence of likes, updated pair by pair;
- `state`: `FeedbackModel`, everything the log implies (profiles, item counts, co-occurrence, the learned model),
  kept current event by event;
- `scorers`: the `Scorer` protocol and one scorer per weight in `RerankSettings`;
- `ranker`: `Reranker`, the weighted sum of the scorers and the "because you liked / bought / looked at" note.
"""

from recchat.rerank.profiles import Profile
from recchat.rerank.ranker import Ranked, Reranker
from recchat.rerank.scorers import CatalogScorer, RankingContext, Scorer, default_scorers
from recchat.rerank.state import FeedbackModel

__all__ = [
    "CatalogScorer", "FeedbackModel", "Profile", "Ranked", "RankingContext", "Reranker", "Scorer", "default_scorers",
]
