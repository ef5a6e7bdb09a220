"""Writes products.jsonl, recchat's demo shop catalog, from the product types below.

Run `python vectorstore/catalogs/make_products.py` after editing; a test checks the committed
file matches. Each type is hand-written; variants differ in brand line, material, colour,
fit and price, so facts stay consistent (a down parka is always warm, sandals never are).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

BRANDS = ["Northwind", "Ridgeway", "Fjell & Co", "Harbor Lane", "Kestrel", "Atlas Trail",
          "Maple Row", "Solstice", "Urban Fern", "Granite Peak", "Tidewater", "Ember & Oak"]
LINES = ["Summit", "Classic", "Metro", "Trailhead", "Coastal", "Everyday", "Alpine", "Heritage",
         "Drift", "Nordic", "Canyon", "Studio"]

# (type, category, audience, (min, max) USD, materials, colours, season, warmth, waterproof, variants,
#  what it is, details to pick from)
TYPES = [
    ("Down Parka", "coats & jackets", ["women", "men"], (180, 420), ["goose down and recycled nylon", "duck down and polyester"],
     ["black", "navy", "olive", "burgundy"], "winter", "very warm", True, 5,
     "A thigh-length parka filled with {material} for deep-winter cold.",
     ["Rated to about -25°C with a fur-free hood ruff.", "Storm flap over a two-way zip keeps wind out.",
      "Fleece-lined hand pockets and an inner phone pocket.", "Water-repellent shell sheds snow and light rain."]),
    ("Wool Overcoat", "coats & jackets", ["women", "men"], (160, 380), ["wool and cashmere blend", "Italian wool"],
     ["camel", "charcoal", "black", "navy"], "winter", "warm", False, 4,
     "A tailored knee-length overcoat in {material} that dresses up any winter outfit.",
     ["Fully lined with a notch lapel and two flap pockets.", "Cut to fit over a suit jacket or a sweater.",
      "Dry clean only; a brush keeps the nap smooth."]),
    ("Puffer Jacket", "coats & jackets", ["women", "men", "kids"], (80, 220), ["recycled polyester insulation", "down and nylon"],
     ["black", "red", "silver", "forest green"], "winter", "warm", False, 5,
     "A hip-length quilted puffer with {material}, light enough to pack into its own pocket.",
     ["Elastic cuffs and a drawcord hem trap heat.", "Weighs about 400 g.", "Machine washable on a gentle cycle."]),
    ("Rain Jacket", "coats & jackets", ["women", "men"], (60, 190), ["3-layer nylon", "recycled polyester with a PU membrane"],
     ["yellow", "navy", "black", "teal"], "spring/autumn", "light", True, 4,
     "A waterproof, breathable shell in {material} with taped seams for all-day rain.",
     ["Adjustable hood with a stiffened brim.", "Pit zips let heat out on climbs.", "Packs down to the size of a water bottle."]),
    ("Trench Coat", "coats & jackets", ["women", "men"], (120, 300), ["cotton gabardine", "water-repellent cotton twill"],
     ["beige", "black", "navy"], "spring/autumn", "light", False, 3,
     "A double-breasted trench in {material} with a belted waist.",
     ["Storm flap and buckled cuffs in the classic style.", "Removable quilted liner for cooler days."]),
    ("Fleece Jacket", "coats & jackets", ["women", "men", "kids"], (40, 120), ["recycled polyester fleece", "heavyweight sherpa fleece"],
     ["grey", "navy", "cream", "rust"], "all-season", "medium", False, 4,
     "A full-zip jacket in {material}, soft on the inside and quick to dry.",
     ["Works as a mid layer under a shell.", "Zip chest pocket and stand-up collar."]),
    ("Softshell Jacket", "coats & jackets", ["women", "men"], (90, 190), ["stretch softshell with a fleece back"],
     ["black", "blue", "grey"], "spring/autumn", "medium", False, 3,
     "A wind-resistant {material} jacket that moves with you on hikes and rides.",
     ["Water-repellent finish handles showers.", "Helmet-compatible hood."]),
    ("Denim Jacket", "coats & jackets", ["women", "men"], (55, 130), ["12 oz cotton denim", "organic cotton denim"],
     ["light wash", "dark indigo", "black"], "spring/autumn", "light", False, 3,
     "A classic trucker jacket in {material} that softens with every wear.",
     ["Button chest pockets and adjustable waist tabs.", "Sherpa-lined collar on the warmer cut."]),
    ("Leather Jacket", "coats & jackets", ["women", "men"], (220, 520), ["lambskin leather", "vegetable-tanned cowhide"],
     ["black", "brown"], "spring/autumn", "medium", False, 3,
     "A moto-style jacket in {material} with an asymmetric zip.",
     ["Quilted satin lining.", "Breaks in and shapes to you over time."]),
    ("Insulated Ski Jacket", "coats & jackets", ["women", "men"], (190, 450), ["PrimaLoft insulation with a waterproof membrane"],
     ["white", "red", "black", "royal blue"], "winter", "very warm", True, 3,
     "A ski jacket with {material}, rated 20,000 mm waterproof.",
     ["Powder skirt and a pass pocket on the sleeve.", "Helmet-compatible hood and wrist gaiters."]),
    ("Peacoat", "coats & jackets", ["women", "men"], (130, 280), ["melton wool blend"],
     ["navy", "charcoal", "camel"], "winter", "warm", False, 3,
     "A double-breasted naval peacoat in heavy {material}.",
     ["Wide collar turns up against the wind.", "Anchor-embossed buttons."]),
    ("Quilted Vest", "coats & jackets", ["women", "men"], (50, 140), ["down fill", "synthetic fill"],
     ["black", "olive", "navy"], "spring/autumn", "medium", False, 3,
     "A lightweight vest with {material} to keep your core warm without bulk.",
     ["Layers under a coat or over a fleece."]),
    ("Merino Crewneck Sweater", "sweaters", ["women", "men"], (70, 150), ["extra-fine merino wool"],
     ["oatmeal", "navy", "charcoal", "bottle green"], "winter", "warm", False, 4,
     "A fine-gauge crewneck in {material}: warm, breathable and itch-free.",
     ["Resists odour, so it needs washing less often.", "Hand wash cold or use a wool cycle."]),
    ("Cashmere Sweater", "sweaters", ["women", "men"], (120, 280), ["Grade-A Mongolian cashmere"],
     ["camel", "grey", "black", "ivory"], "winter", "very warm", False, 4,
     "A soft V-neck in {material}, three times warmer than wool for its weight.",
     ["Ribbed cuffs and hem hold their shape.", "Comes with a cedar storage bag."]),
    ("Cable-Knit Sweater", "sweaters", ["women", "men"], (60, 140), ["chunky lambswool", "cotton and wool blend"],
     ["cream", "forest green", "grey"], "winter", "warm", False, 3,
     "A chunky fisherman sweater in {material} with traditional cable stitches.",
     ["Relaxed fit for layering over a shirt."]),
    ("Cardigan", "sweaters", ["women", "men"], (45, 130), ["cotton and cashmere blend", "merino wool"],
     ["navy", "mustard", "grey", "black"], "all-season", "medium", False, 3,
     "A button-front cardigan in {material}, easy to throw on at the office.",
     ["Two patch pockets.", "Lightweight enough for air-conditioned summers."]),
    ("Hoodie", "sweaters", ["women", "men", "kids"], (35, 90), ["brushed cotton fleece", "organic cotton terry"],
     ["heather grey", "black", "sage", "navy"], "all-season", "medium", False, 4,
     "A pullover hoodie in {material} with a lined hood.",
     ["Kangaroo pocket and ribbed cuffs.", "Pre-shrunk so it keeps its size."]),
    ("Turtleneck", "sweaters", ["women", "men"], (45, 120), ["merino wool", "ribbed cotton"],
     ["black", "cream", "brown"], "winter", "warm", False, 3,
     "A slim turtleneck in {material} that layers under blazers and coats.", ["Folded neck stays up all day."]),
    ("Crew T-Shirt", "tops", ["women", "men", "kids"], (15, 45), ["organic cotton", "cotton and linen blend", "supima cotton"],
     ["white", "black", "navy", "olive", "coral"], "summer", "light", False, 5,
     "An everyday crew-neck tee in {material} with a relaxed fit.", ["Breathable for hot days.", "Keeps its shape wash after wash."]),
    ("Linen Shirt", "tops", ["women", "men"], (40, 95), ["European linen"],
     ["white", "sky blue", "sand", "sage"], "summer", "light", False, 4,
     "A breezy button-down in {material}, cool in summer heat.", ["Gets softer with every wash.", "Roll-tab sleeves."]),
    ("Flannel Shirt", "tops", ["women", "men"], (35, 85), ["brushed cotton flannel"],
     ["red plaid", "green plaid", "grey check"], "winter", "medium", False, 3,
     "A heavyweight shirt in {material} for cold mornings.", ["Double-brushed for softness."]),
    ("Oxford Shirt", "tops", ["men", "women"], (40, 90), ["cotton oxford cloth"],
     ["white", "light blue", "pink"], "all-season", "light", False, 3,
     "A button-down collar shirt in {material}, smart enough for work.", ["Easy-iron finish."]),
    ("Thermal Base Layer Top", "tops", ["women", "men"], (35, 95), ["merino wool", "polyester grid fleece"],
     ["black", "charcoal", "blue"], "winter", "warm", False, 4,
     "A close-fitting long-sleeve base layer in {material} that wicks sweat and holds warmth.",
     ["Flatlock seams avoid chafing under a pack.", "Wear under ski or hiking layers."]),
    ("Slim Jeans", "trousers & jeans", ["women", "men"], (45, 120), ["stretch cotton denim", "rigid selvedge denim"],
     ["indigo", "black", "mid wash", "grey"], "all-season", "medium", False, 5,
     "Slim-fit five-pocket jeans in {material}.", ["Mid rise with a tapered leg.", "Reinforced rivets at stress points."]),
    ("Chinos", "trousers & jeans", ["men", "women"], (40, 95), ["cotton twill with stretch"],
     ["khaki", "navy", "olive", "stone"], "all-season", "light", False, 4,
     "Straight-leg chinos in {material} that go from office to weekend.", ["Hidden coin pocket."]),
    ("Hiking Pants", "trousers & jeans", ["women", "men"], (55, 130), ["ripstop nylon with stretch"],
     ["khaki", "grey", "black"], "all-season", "light", False, 4,
     "Quick-drying trail pants in {material} with UPF 50 sun protection.",
     ["Zip-off legs convert them to shorts.", "Articulated knees for scrambling."]),
    ("Corduroy Trousers", "trousers & jeans", ["men", "women"], (50, 110), ["8-wale cotton corduroy"],
     ["brown", "rust", "navy"], "winter", "medium", False, 3,
     "Relaxed trousers in {material} with a vintage feel.", ["Soft brushed finish."]),
    ("Thermal Leggings", "trousers & jeans", ["women", "men"], (30, 80), ["merino wool", "fleece-backed polyester"],
     ["black", "charcoal"], "winter", "warm", False, 3,
     "Base-layer leggings in {material} for skiing, winter runs or a cold commute.", ["Flat waistband sits under other layers."]),
    ("Shorts", "trousers & jeans", ["women", "men", "kids"], (25, 65), ["cotton twill", "linen blend"],
     ["khaki", "navy", "white"], "summer", "light", False, 3,
     "Knee-length shorts in {material} for warm days.", ["Elastic back waist."]),
    ("Sundress", "dresses", ["women"], (45, 120), ["cotton voile", "viscose", "linen"],
     ["floral print", "white", "yellow", "sky blue"], "summer", "light", False, 4,
     "A midi sundress in {material} with adjustable straps.", ["Lined bodice and pockets in the skirt.", "Floats in the breeze."]),
    ("Knit Dress", "dresses", ["women"], (70, 160), ["merino wool", "ribbed cotton knit"],
     ["black", "camel", "burgundy"], "winter", "warm", False, 3,
     "A long-sleeve knit dress in {material}, cosy with boots and tights.", ["Falls just below the knee."]),
    ("Wrap Dress", "dresses", ["women"], (60, 150), ["silk crepe", "jersey"],
     ["emerald", "navy", "print"], "all-season", "light", False, 3,
     "A flattering wrap dress in {material} that ties at the waist.", ["Wrinkle-resistant for travel."]),
    ("Winter Boots", "shoes", ["women", "men", "kids"], (90, 230), ["waterproof leather with wool lining", "nylon with Thinsulate insulation"],
     ["black", "brown", "tan"], "winter", "very warm", True, 5,
     "Insulated snow boots in {material}, rated to -30°C.", ["Lugged rubber soles grip on ice.", "Removable felt liners dry overnight.",
                                                             "Speed laces work with gloves on."]),
    ("Hiking Boots", "shoes", ["women", "men"], (110, 240), ["nubuck leather with a waterproof membrane", "synthetic mesh"],
     ["brown", "grey", "olive"], "all-season", "medium", True, 4,
     "Mid-cut hiking boots in {material} with ankle support for rough trails.",
     ["Vibram outsole.", "Cushioned EVA midsole for long days."]),
    ("Running Shoes", "shoes", ["women", "men"], (80, 180), ["engineered mesh"],
     ["white", "black", "neon green", "blue"], "all-season", "light", False, 5,
     "Neutral road running shoes with an {material} upper and a responsive foam midsole.",
     ["8 mm heel-to-toe drop.", "Reflective details for evening runs."]),
    ("Canvas Sneakers", "shoes", ["women", "men", "kids"], (40, 90), ["cotton canvas"],
     ["white", "black", "navy", "red"], "summer", "light", False, 4,
     "Low-top sneakers in {material} with a vulcanised rubber sole.", ["Cushioned insole.", "Machine washable."]),
    ("Leather Loafers", "shoes", ["men", "women"], (90, 210), ["polished calf leather", "suede"],
     ["brown", "black", "burgundy"], "all-season", "light", False, 3,
     "Slip-on penny loafers in {material}, hand-stitched.", ["Leather sole with a rubber heel."]),
    ("Sandals", "shoes", ["women", "men", "kids"], (30, 110), ["leather straps on a cork footbed", "recycled webbing"],
     ["tan", "black", "white"], "summer", "light", False, 4,
     "Open sandals with {material} that mould to your feet.", ["Adjustable buckles.", "Water-friendly."]),
    ("Rain Boots", "shoes", ["women", "men", "kids"], (40, 120), ["natural rubber"],
     ["yellow", "green", "black", "navy"], "spring/autumn", "light", True, 4,
     "Knee-high wellies in {material}, fully waterproof for puddles and mud.", ["Pull-on tabs.", "Fleece sock liner sold separately."]),
    ("Chelsea Boots", "shoes", ["men", "women"], (120, 260), ["suede", "oiled leather"],
     ["tan", "black", "dark brown"], "spring/autumn", "medium", False, 3,
     "Ankle Chelsea boots in {material} with elastic side panels.", ["Stacked heel.", "Pull tab at the back."]),
    ("Wool Slippers", "shoes", ["women", "men"], (30, 80), ["boiled wool with a felt sole", "sheepskin"],
     ["grey", "natural", "red"], "winter", "warm", False, 3,
     "House slippers in {material} that keep feet warm on cold floors.", ["Non-slip sole."]),
    ("Knit Scarf", "accessories", ["unisex"], (25, 120), ["merino wool", "cashmere", "alpaca wool"],
     ["grey", "camel", "red", "navy"], "winter", "warm", False, 4,
     "A long scarf in {material}, soft enough to wear against the skin.", ["Fringed ends.", "190 cm long."]),
    ("Beanie", "accessories", ["unisex", "kids"], (18, 55), ["merino wool", "recycled acrylic"],
     ["black", "mustard", "grey", "orange"], "winter", "warm", False, 4,
     "A ribbed beanie in {material} with a fold-up cuff.", ["One size fits most."]),
    ("Touchscreen Gloves", "accessories", ["unisex"], (20, 60), ["wool with conductive fingertips", "fleece"],
     ["black", "grey"], "winter", "warm", False, 3,
     "Gloves in {material}, so you can use your phone without taking them off.", ["Silicone grip on the palm."]),
    ("Insulated Mittens", "accessories", ["unisex", "kids"], (30, 90), ["leather with down insulation", "waterproof nylon"],
     ["black", "red"], "winter", "very warm", True, 3,
     "Mittens in {material}, the warmest choice for ski days.", ["Long gauntlet cuffs seal over jacket sleeves."]),
    ("Sunglasses", "accessories", ["unisex"], (40, 180), ["acetate frames with polarised lenses", "titanium frames"],
     ["tortoiseshell", "black", "gold"], "summer", None, False, 4,
     "Sunglasses with {material} and full UV400 protection.", ["Comes with a hard case.", "Anti-glare coating."]),
    ("Leather Belt", "accessories", ["unisex"], (30, 90), ["full-grain leather"],
     ["brown", "black"], "all-season", None, False, 3,
     "A 35 mm belt in {material} with a brushed brass buckle.", ["Develops a patina with age."]),
    ("Tote Bag", "accessories", ["unisex"], (25, 160), ["heavy cotton canvas", "pebbled leather"],
     ["natural", "black", "navy"], "all-season", None, False, 4,
     "A roomy tote in {material} that fits a laptop.", ["Inner zip pocket.", "Reinforced handles."]),
    ("Travel Umbrella", "accessories", ["unisex"], (20, 60), ["windproof fibreglass frame"],
     ["black", "navy", "yellow"], "spring/autumn", None, True, 3,
     "A compact umbrella with a {material} that flexes in gusts instead of breaking.", ["Auto open and close."]),
    ("Wool Hiking Socks", "accessories", ["unisex"], (15, 35), ["merino wool blend"],
     ["grey", "green", "blue"], "all-season", "warm", False, 3,
     "Cushioned crew socks in {material} that stay dry and don't smell.", ["Reinforced heel and toe."]),
    ("Baseball Cap", "accessories", ["unisex"], (18, 45), ["washed cotton twill"],
     ["navy", "khaki", "black"], "summer", None, False, 3,
     "A six-panel cap in {material} with an adjustable strap.", ["Curved brim shades the eyes."]),
    ("Backpacking Tent", "outdoor gear", ["unisex"], (150, 480), ["ripstop nylon"],
     ["green", "orange", "grey"], "spring/autumn", None, True, 4,
     "A freestanding {material} tent for two people, pitched in five minutes.",
     ["Packed weight about 1.6 kg.", "Two doors and two vestibules.", "Rated for three seasons."]),
    ("Sleeping Bag", "outdoor gear", ["unisex"], (90, 380), ["duck down", "synthetic insulation"],
     ["blue", "red", "green"], "winter", "very warm", False, 4,
     "A mummy sleeping bag with {material}, comfortable to -7°C.", ["Draft collar and hood.", "Compression sack included."]),
    ("Daypack", "outdoor gear", ["unisex"], (50, 150), ["recycled nylon", "waxed canvas"],
     ["black", "orange", "olive", "blue"], "all-season", None, False, 4,
     "A 25-litre daypack in {material} with a padded laptop sleeve.", ["Hydration sleeve and side bottle pockets.", "Ventilated back panel."]),
    ("Trekking Poles", "outdoor gear", ["unisex"], (50, 160), ["carbon fibre", "aluminium"],
     ["black", "grey"], "all-season", None, False, 3,
     "Adjustable telescoping poles in {material} with cork grips.", ["Fold to 38 cm."]),
    ("Headlamp", "outdoor gear", ["unisex"], (25, 90), ["USB-C rechargeable"],
     ["black", "orange"], "all-season", None, True, 3,
     "A {material} headlamp with a 400-lumen beam and a red night mode.", ["IPX4 splash-proof.", "Runs 40 hours on low."]),
    ("Camping Stove", "outdoor gear", ["unisex"], (40, 130), ["stainless steel and aluminium"],
     ["silver"], "all-season", None, False, 3,
     "A compact canister stove in {material} that boils a litre in three minutes.", ["Piezo igniter.", "Folds into a pot."]),
    ("Insulated Water Bottle", "outdoor gear", ["unisex"], (20, 50), ["double-wall stainless steel"],
     ["black", "white", "teal", "pink"], "all-season", None, False, 4,
     "A 750 ml {material} bottle that keeps drinks cold 24 hours or hot 12.", ["Leak-proof lid.", "Dishwasher safe."]),
    ("Sleeping Pad", "outdoor gear", ["unisex"], (50, 190), ["insulated air chambers", "closed-cell foam"],
     ["orange", "green"], "all-season", None, False, 3,
     "A camping mattress made of {material}, R-value 4 for cold ground.", ["Packs small."]),
    ("Swim Shorts", "activewear", ["men", "kids"], (25, 70), ["quick-dry recycled polyester"],
     ["navy", "coral", "print"], "summer", None, False, 4,
     "Mid-length swim shorts in {material} with a mesh lining.", ["Zip back pocket."]),
    ("Swimsuit", "activewear", ["women", "kids"], (35, 110), ["chlorine-resistant recycled nylon"],
     ["black", "red", "print"], "summer", None, False, 4,
     "A one-piece swimsuit in {material} with UPF 50+.", ["Removable soft cups."]),
    ("Yoga Leggings", "activewear", ["women"], (40, 110), ["buttery nylon-spandex"],
     ["black", "plum", "sage", "navy"], "all-season", "light", False, 4,
     "High-rise leggings in {material}, squat-proof and sweat-wicking.", ["Hidden waistband pocket."]),
    ("Running Jacket", "activewear", ["women", "men"], (60, 150), ["ultralight ripstop"],
     ["neon yellow", "black", "blue"], "spring/autumn", "light", True, 3,
     "A packable running shell in {material}, water-resistant and reflective.", ["Weighs 110 g.", "Thumb loops."]),
    ("Sports Bra", "activewear", ["women"], (30, 75), ["moisture-wicking nylon"],
     ["black", "white", "pink"], "all-season", None, False, 3,
     "A high-support sports bra in {material} for running and HIIT.", ["Racerback straps."]),
]

FITS = ["regular fit", "relaxed fit", "slim fit"]


def variants(types: list[tuple], brands: list[str], lines: list[str], rng: random.Random, title) -> Iterator[tuple]:
    """Each type's variants in order, as (variant number, title, type row): brand and line rotate, and a title
    already taken gets another line. `title(brand, line, kind)` writes one. Shared with make_products_zh.py."""
    used_titles: set[str] = set()
    made = 0
    for row in types:
        kind, count = row[0], row[9]
        for variant in range(count):
            brand = brands[(made * 7 + variant) % len(brands)]
            line = lines[(made * 5 + variant * 3) % len(lines)]
            while title(brand, line, kind) in used_titles:
                line = rng.choice(lines)
            used_titles.add(title(brand, line, kind))
            made += 1
            yield variant, title(brand, line, kind), row


def build_items() -> list[dict]:
    rng = random.Random(20261122)
    items = []
    for variant, title, row in variants(TYPES, BRANDS, LINES, rng, lambda brand, line, kind: f"{brand} {line} {kind}"):
        (kind, category, audiences, (low, high), materials, colours, season, warmth, waterproof, _, what,
         details) = row
        material = materials[variant % len(materials)]
        colour = colours[variant % len(colours)]
        audience = audiences[variant % len(audiences)]
        price = round(rng.uniform(low, high)) - 0.01 if variant % 2 else float(round(rng.uniform(low, high) / 5) * 5)
        picked = rng.sample(details, k=min(2, len(details)))
        for_whom = {"women": "Women's", "men": "Men's", "kids": "Kids'", "unisex": "Unisex"}[audience]
        description = " ".join([what.format(material=material), *picked, f"{for_whom} sizing, {FITS[variant % 3]}."])
        attributes: dict = {"material": material, "color": colour, "season": season, "for": audience}
        if warmth:
            attributes["warmth"] = warmth
        if waterproof:
            attributes["waterproof"] = True
        slug = kind.lower().replace(" ", "-").replace("/", "-")
        items.append({
            "id": f"P{len(items) + 1:04d}-{slug}",
            "title": title,
            "description": description,
            "category": category,
            "price": price,
            "currency": "USD",
            "attributes": attributes,
        })
    return items


def render(items: list[dict]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


if __name__ == "__main__":
    out = Path(__file__).with_name("products.jsonl")
    items = build_items()
    out.write_text(render(items), encoding="utf-8")
    print(f"wrote {len(items)} items to {out}")
