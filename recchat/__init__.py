"""recchat: a generative conversational recommender that names only real catalog items."""

from recchat.catalog import Catalog, load_catalog
from recchat.chat import RecChat
from recchat.config import Settings
from recchat.errors import (
    BackendUnavailableError,
    CatalogError,
    CatalogNotFoundError,
    InvalidMessageError,
    ModelFilesMissingError,
    RecChatError,
)
from recchat.models import Item, RecommendationList, RecommendedItem, StreamEvent

__all__ = [
    "BackendUnavailableError", "Catalog", "CatalogError", "CatalogNotFoundError", "InvalidMessageError", "Item",
    "ModelFilesMissingError", "RecChat", "RecChatError", "RecommendationList", "RecommendedItem", "Settings",
    "StreamEvent", "load_catalog",
]
