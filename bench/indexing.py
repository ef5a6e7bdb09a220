"""Indexing speed and what it costs in quality (issue #26): all-MiniLM-L6-v2 run by torch (sentence-transformers)
against the same model exported to ONNX and quantised to int8 (`embedding.backend = "onnx-int8"`), in one process.

For each catalog: items encoded per second (a warm encoder, no cache), the vectors' cosine to torch's, and for the
prompt suite's requests on the demo shop the share whose nearest item is the same and the overlap of the five
nearest:

    HF_HUB_OFFLINE=1 python bench/indexing.py [--items 1500] [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def speed(encoder, texts: list[str], repeat: int) -> tuple[float, np.ndarray]:
    encoder.encode(texts[:16])  # warm: the first call loads kernels
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        vectors = encoder.encode(texts)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best, vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1500, help="items of the generated electronics export")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    from hybrid import write_export

    from recchat.catalog import load_catalog
    from recchat.config import BUNDLED_CATALOG_DIR, EmbeddingSettings
    from recchat.embeddings import load_encoder

    with tempfile.TemporaryDirectory() as folder:
        export = Path(folder) / "electronics.csv"
        write_export(export, args.items)
        catalogs = {
            "demo shop (230, with descriptions)": load_catalog(BUNDLED_CATALOG_DIR / "products.jsonl"),
            f"electronics export ({args.items})": load_catalog(export),
        }
        started = time.perf_counter()
        encoders = {
            "torch": load_encoder(EmbeddingSettings(model="all-MiniLM-L6-v2")),
            "onnx-int8": load_encoder(EmbeddingSettings(model="all-MiniLM-L6-v2", backend="onnx-int8"), (),
                                      Path(folder)),
        }
        print(f"encoders ready in {time.perf_counter() - started:.1f} s (the ONNX export and quantisation included)")
        print(f"{'catalog':<36} {'encoder':<10} {'items/s':>8} {'x torch':>8} {'cosine to torch: mean / min':>28}")
        for name, catalog in catalogs.items():
            texts = [item.embedding_text() for item in catalog]
            rates, vectors = {}, {}
            for kind, encoder in encoders.items():
                rates[kind], vectors[kind] = speed(encoder, texts, args.repeat)
                cosine = (vectors[kind] * vectors["torch"]).sum(axis=1)
                print(f"{name:<36} {kind:<10} {rates[kind]:>8.1f} {rates[kind] / rates['torch']:>8.2f} "
                      f"{cosine.mean():>19.4f} / {cosine.min():.4f}")

        demo = catalogs["demo shop (230, with descriptions)"]
        suite = yaml.safe_load((ROOT / "prompts" / "recommend" / "cases" / "products.yaml").read_text())
        requests = [turn["say"] for case in suite["cases"] for turn in case["turns"]]
        texts = [item.embedding_text() for item in demo]
        top = {}
        for kind, encoder in encoders.items():
            similarity = encoder.encode_queries(requests) @ encoder.encode(texts).T
            top[kind] = np.argsort(-similarity, axis=1)[:, :5]
        for kind in ("onnx-int8",):
            same_first = float(np.mean(top["torch"][:, 0] == top[kind][:, 0]))
            overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top["torch"], top[kind], strict=True)])
            print(f"{len(requests)} suite requests on the demo shop, {kind} against torch: the same nearest item "
                  f"{same_first:.2f}, overlap of the five nearest {overlap:.2f}")


if __name__ == "__main__":
    main()
