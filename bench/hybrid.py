"""Exact names against meaning (issue #26): does the BM25 fusion (`retrieval.lexical_weight`) find an item by its
exact title, its model code or its SKU, where the dense index alone finds its neighbours?

A generated electronics export (raw columns: sku, name, brand, category, "$1,299.00" prices, TRUE/FALSE flags,
barcodes, stock) with model lines that differ by one character (WH-1000XM5 / XM6), as real shops have. For 300
sampled items, three requests each; the share whose item comes first, and in the first five, with the dense index
alone and with the fusion, in the same process over the same index:

    HF_HUB_OFFLINE=1 python bench/hybrid.py [--items 1500] [--queries 300]
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
from pathlib import Path

LINES = {
    "Headphones": [("Sony", "WH-1000XM{}"), ("Bose", "QuietComfort {}"), ("Sennheiser", "Momentum {}")],
    "Earbuds": [("Sony", "WF-1000XM{}"), ("Samsung", "Galaxy Buds{} Pro"), ("Anker", "Liberty {} NC")],
    "Smartphones": [("Samsung", "Galaxy S{}"), ("Google", "Pixel {}"), ("Motorola", "Edge {}")],
    "Laptops": [("Asus", "ZenBook {} OLED"), ("Dell", "XPS {}"), ("Lenovo", "ThinkPad X{}")],
    "Monitors": [("LG", "UltraGear {}GR75Q"), ("Dell", "S{}DGF"), ("Samsung", "Odyssey G{}")],
    "Tablets": [("Apple", "iPad Air {}"), ("Samsung", "Galaxy Tab S{}"), ("Lenovo", "Tab P{}")],
    "Smartwatches": [("Garmin", "Forerunner {}"), ("Apple", "Watch Series {}"), ("Samsung", "Galaxy Watch{}")],
    "Speakers": [("JBL", "Flip {}"), ("Bose", "SoundLink Flex {}"), ("Sonos", "Era {}")],
    "Cameras": [("Canon", "EOS R{}"), ("Sony", "Alpha {}"), ("Fujifilm", "X-T{}")],
    "Keyboards": [("Logitech", "MX Keys {}"), ("Keychron", "K{} Pro"), ("Razer", "BlackWidow V{}")],
    "Mice": [("Logitech", "MX Master {}S"), ("Razer", "DeathAdder V{}"), ("SteelSeries", "Rival {}")],
    "Routers": [("TP-Link", "Archer AX{}"), ("Netgear", "Nighthawk RAX{}"), ("Asus", "RT-AX{}U")],
    "Chargers": [("Anker", "Nano {} 65W"), ("Belkin", "BoostCharge {}"), ("Ugreen", "Nexode {}")],
}
COLOURS = ["Black", "Silver", "Blue", "White", "Green"]


EDITIONS = ["", " Pro", " Max", " Lite", " Plus", " Ultra"]
VARIANTS = ["", ", 64 GB", ", 128 GB", ", 256 GB", ", 512 GB", ", 1 TB"]


def write_export(path: Path, items: int, seed: int = 0) -> list[dict]:
    """A shop's raw export of `items` products (at most about 130k distinct ones), as Excel writes it."""
    rng = random.Random(seed)
    models = [(category, brand, line.format(number) + edition)
              for category, lines in LINES.items() for brand, line in lines
              for number in range(2, 21) for edition in EDITIONS]
    titles = [(category, brand, model, colour, variant)
              for category, brand, model in models for colour in COLOURS for variant in VARIANTS]
    if items > len(titles):
        raise ValueError(f"at most {len(titles)} distinct items")
    rows: list[dict] = []
    skus: set[str] = set()
    for category, brand, model, colour, variant in rng.sample(titles, items):
        sku = f"{brand[:3].upper()}-{''.join(ch for ch in model if ch.isalnum()).upper()[:10]}-{colour[:3].upper()}"
        if sku in skus:
            sku += f"-{len(rows)}"
        skus.add(sku)
        rows.append({
            "sku": sku, "name": f"{brand} {model} ({colour}{variant})", "brand": brand, "category": category,
            "price": f"${rng.choice([29.99, 149, 259, 449, 799, 1299]):,.2f}",
            "wireless": rng.choice(["TRUE", "FALSE"]), "noise_cancelling": rng.choice(["TRUE", "FALSE"]),
            "battery_life_hours": rng.choice([8, 12, 20, 30]), "weight_g": rng.choice([52, 198, 250, 1290]),
            "colour": colour, "stock_qty": rng.choice([3, 12, 40]),
            "barcode": str(rng.randint(10**12, 10**13 - 1)),
        })
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1500)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--weight", type=float, default=None, help="the fusion's weight (default: the setting's)")
    args = parser.parse_args()

    from recchat.catalog import load_catalog
    from recchat.config import RetrievalSettings, Settings
    from recchat.retrieval import Retriever, synced_index

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "electronics.csv"
        rows = write_export(path, args.items)
        catalog = load_catalog(path)
        started = time.perf_counter()
        index = synced_index(Settings(data_dir=Path(folder), catalog=str(path)), catalog)
        print(f"{len(catalog)} items indexed in {time.perf_counter() - started:.1f} s")
        fused = RetrievalSettings() if args.weight is None else RetrievalSettings(lexical_weight=args.weight)
        systems = {"dense only": RetrievalSettings(lexical_weight=0), f"fused (w={fused.lexical_weight})": fused}
        sample = random.Random(1).sample(rows, min(args.queries, len(rows)))
        def model(row: dict) -> str:  # "Sony WH-1000XM6 (Black)" -> "WH-1000XM6"
            return row["name"].split(" (")[0].split(" ", 1)[1]

        requests = {
            "exact title": [(row["name"], {row["sku"]}) for row in sample],
            # a model code names every colour of it: any of them counts
            "model code": [(model(row), {other["sku"] for other in rows if model(other) == model(row)})
                           for row in sample],
            "sku": [(row["sku"], {row["sku"]}) for row in sample],
        }
        print(f"{'requests':<12} {'system':<18} {'first':>6} {'top 5':>6} {'p50 ms':>7}")
        for kind, pairs in requests.items():
            for name, settings in systems.items():
                retriever = Retriever(catalog, index, settings)
                first = top5 = 0
                times = []
                for text, wanted in pairs:
                    started = time.perf_counter()
                    found = [candidate.item.id for candidate in retriever.search(text, k=5)]
                    times.append(time.perf_counter() - started)
                    first += bool(found) and found[0] in wanted
                    top5 += bool(wanted & set(found))
                times.sort()
                print(f"{kind:<12} {name:<18} {first / len(pairs):>6.2f} {top5 / len(pairs):>6.2f} "
                      f"{1000 * times[len(times) // 2]:>7.1f}")


if __name__ == "__main__":
    main()
