"""The simulated-shopper harness (`recchat eval converse`): scripts from a catalog's own lexicon, seeded and without
the target's title; the figures on a conversation worked out by hand; whole runs through the real engine."""

import csv
import json
import re

import pytest

from recchat.catalog import Catalog, load_catalog
from recchat.cli import main
from recchat.evaluation.converse import (
    Conversation,
    Said,
    Script,
    Turn,
    answer_of,
    converse,
    draw_scripts,
    run_converse,
    summarise,
)
from recchat.models import ClarifyingQuestion, Item, QuestionOption
from recchat.understanding import CatalogLexicon
from recchat.understanding.lexicon import words
from recchat.wording import price_ceiling


@pytest.fixture(scope="module")
def products_scripts(products):
    lexicon = CatalogLexicon.from_items(products)
    return lexicon, draw_scripts(products, lexicon, targets=1000, seed=7)


def test_scripts_are_seeded_and_reproducible(products):
    lexicon = CatalogLexicon.from_items(products)
    first = draw_scripts(products, lexicon, targets=10, seed=3)[1]
    again = draw_scripts(products, lexicon, targets=10, seed=3)[1]
    other = draw_scripts(products, lexicon, targets=10, seed=4)[1]
    assert first == again
    assert [script.target for script in first] != [script.target for script in other]
    # one item's script depends on the seed and the item alone, not on which other items were drawn
    writer = draw_scripts(products, lexicon, targets=1, seed=3)[0]
    assert writer.script(products[first[0].target], seed=3) == first[0]


def test_scripts_never_say_the_title_nor_its_brand_and_line_words(products_scripts, products):
    lexicon, (writer, scripts) = products_scripts
    assert writer.slots == ["subject", "audience", "detail", "kind", "limit"] and len(scripts) > 200
    for script in scripts:
        item = products[script.target]
        said = " ".join([turn.message for turn in script.turns] + [script.one_message]).lower()
        assert item.title.lower() not in said
        allowed = set(words(lexicon.kind_words(item))) | set(words(item.category))
        allowed |= {word for values in item.attributes.values() for word in words(str(values))}
        leaked = [word for word in words(item.title) if word not in allowed and re.search(rf"\b{word}\b", said)]
        assert not leaked, (item.title, said)


def test_each_turn_reveals_the_targets_own_values(products_scripts, products):
    lexicon, (_, scripts) = products_scripts
    for script in scripts:
        item = products[script.target]
        subject, audience, detail, kind, limit = script.turns
        said = limit.said
        groups = {lexicon.audience_group(value) for value in lexicon.item_values(item, "for")}
        assert said.audience in groups and (said.audience == "unisex") == ("unisex" in groups)
        assert said.colour in lexicon.item_values(item, "color") and said.colour in detail.message
        assert lexicon.kind_words(item) in kind.message
        assert item.price < said.max_price <= price_ceiling(item.price) and f"${said.max_price:.0f}" in limit.message
        assert lexicon.kind_words(item).split()[-1] in subject.message  # the kind's head noun: "a jacket"
        # what was said before stays said: each turn's Said holds the earlier turns'
        assert subject.said == Said() and audience.said.audience == said.audience and detail.said.colour == said.colour
        assert all(fragment in script.one_message for fragment in (kind.fragment, f"in {said.colour}"))


def test_chinese_scripts_speak_chinese(products_zh):
    lexicon = CatalogLexicon.from_items(products_zh)
    writer, scripts = draw_scripts(products_zh, lexicon, targets=20, seed=1)
    assert writer.language == "zh"
    for script in scripts:
        item = products_zh[script.target]
        messages = [turn.message for turn in script.turns]
        assert item.title not in "".join(messages) + script.one_message
        assert item.category in messages[0] and lexicon.kind_words(item) in messages[3]
        assert re.search(r"\d+元", messages[4]) and script.one_message.startswith("我想要")
        assert not re.search(r"[A-Za-z]", "".join(messages))


def write_furniture(path) -> None:
    """A shop recchat has never seen, with its own column names: 40 pieces of furniture."""
    kinds = {"chairs": ["Dining Chair", "Armchair"], "tables": ["Coffee Table", "Side Table"],
             "beds": ["Bunk Bed", "Platform Bed"], "storage": ["Bookcase", "Wardrobe"]}
    shades = ["white", "black", "grey", "navy", "green"]
    woods = ["oak", "pine", "walnut", "birch"]
    brands = ["Nordhem", "Lundby", "Tarvik", "Holmsund", "Ekeby"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "category", "price", "suitable_for", "finish", "wood"])
        for number in range(40):
            category = list(kinds)[number % 4]
            kind = kinds[category][number // 4 % 2]
            writer.writerow([
                f"F{number:03d}", f"{brands[number % 5]} {kind} {number}", category, 49 + number * 13.5,
                "kids" if number % 3 == 0 else "adults", shades[number % 5], woods[number % 4],
            ])


def test_an_unseen_catalog_gets_scripts_by_facet_kind_and_runs_end_to_end(tmp_path, settings, encoder):
    path = tmp_path / "furniture.csv"
    write_furniture(path)
    catalog = load_catalog(path)
    lexicon = CatalogLexicon.from_items(catalog)
    assert (lexicon.audience.name, lexicon.colour.name) == ("suitable_for", "finish")
    writer, scripts = draw_scripts(catalog, lexicon, targets=40, seed=0)
    assert writer.slots == ["subject", "audience", "detail", "kind", "limit"] and scripts
    for script in scripts:
        item = catalog[script.target]
        said = script.turns[-1].said
        assert said.audience == ("kids" if item.attributes["suitable_for"] == "kids" else "unisex")
        assert said.colour == item.attributes["finish"] and said.max_price > item.price
        assert lexicon.kind_words(item) in script.turns[3].message.lower()

    report, paths = run_converse(settings, str(path), targets=4, seed=0, out_dir=tmp_path / "out", encoder=encoder)
    assert report["catalog"] == "furniture" and len(report["details"]) == 4
    assert {path.name for path in paths.values()} == {"report.json", "report.md", "success.png"}


def item(number: int, audience: str, price: float, colour: str) -> Item:
    return Item(id=f"I{number}", title=f"Thing {number}", category="things", price=price,
                attributes={"for": audience, "color": colour})


@pytest.fixture
def tiny():
    """Five items the conversations show, and ten more so that "for" and "color" have few values for many items:
    the lexicon finds them as the audience and the colour facets."""
    shown = [
        item(1, "women", 100, "navy"), item(2, "men", 90, "navy"), item(3, "unisex", 300, "black"),
        item(4, "kids", 50, "red"), item(5, "women", 80, "black"),
    ]
    more = [item(number, ["women", "men"][number % 2], 10, ["navy", "black"][number % 2]) for number in range(6, 16)]
    catalog = Catalog("tiny", shown + more)
    lexicon = CatalogLexicon.from_items(catalog)
    assert (lexicon.audience.name, lexicon.colour.name) == ("for", "color")
    return catalog, lexicon


def script(target: str, *said: Said) -> Script:
    return Script(target, "", [Turn("slot", "", "", asked) for asked in said], "")


def test_figures_by_hand(tiny):
    catalog, lexicon = tiny
    women = Said(audience="women")
    navy_women = Said(audience="women", colour="navy")
    budget = Said(audience="women", colour="navy", max_price=120)
    scripts = [script("I1", Said(), women, navy_women, budget), script("I5", Said(), women, navy_women, budget)]
    conversations = [
        # found at turn 2, lost at turn 4
        Conversation("I1", [["I2"], ["I1", "I3"], ["I1", "I2"], ["I5"]], one_message=["I1", "I4"]),
        # never found
        Conversation("I5", [["I3"], ["I2", "I4"], ["I3"], ["I3", "I4"]], one_message=["I3"]),
    ]
    figures = summarise(conversations, scripts, catalog, lexicon)
    turns = figures["turns"]
    assert [turn["success"] for turn in turns] == [0.0, 0.5, 0.5, 0.0]
    assert [turn["found"] for turn in turns] == [0.0, 0.5, 0.5, 0.5]
    assert figures["average_turns"] == (2 + 5) / 2  # a failure counts as the 4 turns + 1
    # turn 1: nothing hard said; turn 2: I1, unisex I3 fit women, men's I2 and kids' I4 do not
    assert turns[0]["contradictions"] is None and turns[1]["contradictions"] == 2 / 4
    # turn 3: I2 (men's) of I1, I2, I3; navy: I1 and I2 of the three
    assert turns[2]["contradictions"] == 1 / 3 and turns[2]["colour_match"] == 2 / 3
    # turn 4, budget 120: I5 fits; I3 costs 300, I4 is a kid's (and cheap)
    assert turns[3]["contradictions"] == 2 / 3 and turns[3]["colour_match"] == 0.0
    assert figures["one_message"] == {"success": 0.5, "contradictions": 2 / 3, "colour_match": 1 / 3}


def test_unisex_and_kids_rules(tiny):
    catalog, lexicon = tiny
    scripts = [script("I4", Said(audience="kids")), script("I3", Said(audience="unisex"))]
    conversations = [Conversation("I4", [["I4", "I3"]], []), Conversation("I3", [["I3", "I1"]], [])]
    # an adult's unisex item is no kid's; a women's item is not for anyone
    assert summarise(conversations, scripts, catalog, lexicon)["turns"][0]["contradictions"] == 2 / 4


def test_cli_runs_every_system_on_the_bundled_products_and_writes_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECCHAT_DATA_DIR", str(tmp_path))
    out = tmp_path / "report"
    assert main(["eval", "converse", "--catalog", "products", "--targets", "5", "--seed", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| recchat | 5 | limit |" in printed and "| embedding |" in printed and "AT" in printed
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(report["systems"]) == {"recchat", "recchat-no-questions", "recchat-stateless", "embedding"}
    assert report["seed"] == 2 and report["targets"] == 5 and "never its title" in report["protocol"]
    assert all(len(figures["turns"]) == 5 for figures in report["systems"].values())
    for detail in report["details"]:
        assert len(detail["messages"]) == 5 and all(len(shown) <= 5 for shown in detail["systems"]["recchat"]["shown"])
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# Simulated shoppers: products, 5 targets")
    assert (out / "success.png").stat().st_size > 0


def asked(facet: str, *values: str) -> ClarifyingQuestion:
    return ClarifyingQuestion(
        facet=facet, text="?", options=[QuestionOption(value=v, label=v, message=f"say {v}", count=1) for v in values]
    )


def test_a_shopper_answers_a_question_with_its_targets_option_and_skips_that_turn_later(tiny):
    catalog, lexicon = tiny
    target = catalog["I1"]  # women's, navy
    turns = [
        Turn("subject", "a thing", "", Said()),
        Turn("audience", "for my wife", "", Said(audience="women"), "for", {"audience": "women"}),
        Turn("detail", "in navy", "", Said(audience="women", colour="navy"), "color", {"colour": "navy"}),
    ]
    waiting = turns[1:]
    assert answer_of(asked("color", "black", "navy"), target, waiting, lexicon) == ("say navy", {"colour": "navy"})
    assert waiting == turns[1:2]  # the colour was said early: its turn is not said again
    assert answer_of(asked("for", "men", "kids"), target, waiting, lexicon) is None  # no option is the target's
    assert answer_of(asked("category", "things", "other"), target, waiting, lexicon) == ("say things", {})
    assert answer_of(None, target, waiting, lexicon) is None and waiting == turns[1:2]


class Asking:
    """A system that asks the colour first, and shows the target once the colour was said."""

    name = "asking"

    def start(self) -> None:
        self.said: list[str] = []

    def reply(self, message: str):
        self.said.append(message)
        found = ["I1"] if "say navy" in self.said else ["I2"]
        return found, asked("color", "navy", "black") if len(self.said) == 1 else None


def test_an_answered_question_shortens_the_conversation_and_what_was_said_follows_the_answers(tiny):
    catalog, lexicon = tiny
    turns = [
        Turn("subject", "a thing", "", Said()),
        Turn("audience", "for my wife", "", Said(audience="women"), "for", {"audience": "women"}),
        Turn("detail", "in navy", "", Said(audience="women", colour="navy"), "color", {"colour": "navy"}),
    ]
    [conversation] = converse(Asking(), [Script("I1", "", turns, "a navy thing for women")], catalog, lexicon)
    assert conversation.messages == ["a thing", "say navy", "for my wife"]
    assert conversation.answered == [False, True, False] and conversation.first_hit() == 2
    assert [said.colour for said in conversation.said] == [None, "navy", "navy"]
    assert [said.audience for said in conversation.said] == [None, None, "women"]
