"""Measuring recchat: prompt regression suites (`suite`) and offline ranking evaluation on real data (`offline`)."""

SYSTEMS = ("recchat", "popularity", "item-knn", "embedding", "ease", "ease-recency", "als", "sequential-rules")
"""What `recchat eval offline` and `recchat eval replay` compare by default (light to import for the CLI)."""
