"""recchat over HTTP: `create_app(bot)` is the ASGI app; `serve(settings)` runs it under uvicorn."""

from __future__ import annotations

import logging

from recchat.config import ApiSettings, Settings
from recchat.server.app import create_app

__all__ = ["app_from_environment", "create_app", "serve"]
logger = logging.getLogger("recchat.server")


def app_from_environment():
    """The app for one worker process, from `Settings()` (RECCHAT_* env and the TOML file): what uvicorn calls in
    each worker when there are several."""
    from recchat.chat import RecChat

    settings = Settings()
    bot = RecChat.from_settings(settings)
    bot.read_other_languages()  # shoppers may ask in any language: index for them in the background
    return create_app(bot, settings.api)


def serve(settings: Settings) -> None:
    """Serve until stopped. One worker serves the engine built here; several each build their own from the same
    settings, which the caller has put in the environment (only the index is brought up to date here first, so the
    workers only read it; each fits its own feedback state)."""
    import uvicorn

    from recchat.chat import RecChat

    api = settings.api
    if api.key is None and api.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("serving on %s without api.key: anyone who can reach it can use and forget users", api.host)
    if api.workers == 1:
        bot = RecChat.from_settings(settings, progress=True)
        bot.read_other_languages()  # shoppers may ask in any language: index for them in the background
        uvicorn.run(create_app(bot, api), **uvicorn_options(api))
        return
    from recchat.catalog import load_configured_catalog
    from recchat.retrieval import synced_index

    synced_index(settings, load_configured_catalog(settings), progress=True)
    uvicorn.run("recchat.server:app_from_environment", factory=True, workers=api.workers, **uvicorn_options(api))


def uvicorn_options(api: ApiSettings) -> dict:
    """How uvicorn listens: the h11 parser, which bounds a request's line and headers (`api.max_header_bytes`), and a
    bound on open connections (`api.max_connections`)."""
    return {
        "host": api.host, "port": api.port, "log_level": "info", "http": "h11",
        "h11_max_incomplete_event_size": api.max_header_bytes, "limit_concurrency": api.max_connections,
    }
