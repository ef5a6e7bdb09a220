"""Prompt regression suites: the files, each check, the runner and its exit status, and the `ci` cases
with the real default model (the whole suites run with `make test-all`)."""

import json

import pytest
from conftest import bridged

from recchat.chat import RecChat
from recchat.cli import main
from recchat.embeddings import chosen_model
from recchat.evaluation.suite import (
    Case,
    CaseResult,
    Expect,
    SuiteError,
    SuiteResult,
    check_reply,
    flips,
    load_suite,
    run_case,
    run_suite,
    suite_catalog,
    suite_paths,
    table,
)
from recchat.facts import fact_phrases

SUITES = {path.stem: load_suite(path) for path in suite_paths()}


def test_suites_cover_what_a_regression_run_needs():
    products, movies = SUITES["products"], SUITES["movies"]
    assert len(products.cases) >= 40 and len(movies.cases) >= 10
    assert len(SUITES["products-zh"].cases) + len(SUITES["zh-on-products"].cases) >= 30  # Chinese, both catalogs
    tagged = lambda suite, tag: [case.id for case in suite.cases if tag in case.tags]  # noqa: E731
    assert len(tagged(products, "adversarial")) >= 8 and len(tagged(products, "zh")) >= 4
    assert any("FREE-IPHONE" in item.description for item in products.planted_items)
    assert tagged(products, "ci") and tagged(movies, "ci")
    assert all(0 < suite.threshold <= 1 for suite in SUITES.values())


@pytest.mark.parametrize("text, problem", [
    ("threshold: 0.9\ncases: [{id: a, turns: [{say: hi, expect: {max_prise: 3}}]}]", "max_prise"),  # a typo
    ("cases: [{id: a, turns: [{say: hi}]}]", "threshold"),  # no threshold
    ("threshold: 0.9\ncases: [{id: a, turns: [{say: x}]}, {id: a, turns: [{say: y}]}]", "repeated: a"),
    ("threshold: 0.9\ncases: [{id: a, turns: []}]", "turns"),  # a conversation with no turn
    ("threshold: [0.9\n", "not a valid suite"),  # broken YAML
])
def test_bad_suite_files_are_refused_with_the_reason(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SuiteError, match=problem):
        load_suite(path)


def test_an_unknown_suite_name_lists_the_known_ones():
    with pytest.raises(SuiteError, match="movies, products-zh, products, zh-on-products"):
        suite_paths(["no-such-suite"])


@pytest.fixture
def coat_reply(scripted_bot):
    """A real reply from the real engine (retrieval answers, the scripted model's output is unusable)."""
    bot = scripted_bot("not json")
    return bot, bot.chat("I want a winter coat")


def test_each_expectation_fails_when_the_reply_breaks_it(coat_reply):
    bot, reply = coat_reply
    catalog = bot.catalog
    assert check_reply(Expect(category="coats & jackets", min_items=3, reasons_cite_facts=True), reply, None,
        catalog) == []
    first_facts = " ".join(fact_phrases(catalog[reply.items[0].id])).lower().split()
    unsaid = next(word for word in first_facts if len(word) > 3 and word not in reply.items[0].reason.lower())
    broken = {
        "reasons_mention": Expect(reasons_mention=[unsaid]),
        "category": Expect(category="shoes"),
        "min_items": Expect(min_items=9),
        "max_items": Expect(max_items=0),
        "max_price": Expect(max_price=10),
        "min_price": Expect(min_price=10_000),
        "all_with": Expect(all_with={"color": "neon yellow"}),
        "none_with": Expect(none_with={"season": ["winter", "all-season", "summer", "spring"]}),
        "first_with": Expect(first_with={"title": "Sandals"}),
        "includes_any": Expect(includes_any=["P0150-nothing"]),
        "excludes_ids": Expect(excludes_ids=[reply.items[0].id]),
        "reasons_exclude": Expect(reasons_exclude=[reply.items[0].title.split()[-1]]),
        "language": Expect(language="zh"),
        "source": Expect(source="llm"),
        "message_contains": Expect(message_contains="FREE-IPHONE"),
    }
    for name, expect in broken.items():
        assert check_reply(expect, reply, None, catalog), f"{name} did not catch the violation"


def test_grounding_is_always_checked(coat_reply):
    """Bad replies tried: an item outside the catalog, a listed item twice, a real id shown under a wrong title."""
    bot, reply = coat_reply
    first = reply.items[0]
    invented = reply.model_copy(update={"items": [first.model_copy(update={"id": "FREE-IPHONE"})]})
    twice = reply.model_copy(update={"items": [first, first]})
    renamed = reply.model_copy(update={"items": [first.model_copy(update={"title": "Solid Gold Parka"})]})
    assert "not in the catalog" in check_reply(Expect(), invented, None, bot.catalog)[0]
    assert "listed twice" in check_reply(Expect(), twice, None, bot.catalog)[0]
    assert "not as in the catalog" in check_reply(Expect(), renamed, None, bot.catalog)[0]


def test_comparisons_with_the_previous_turn(scripted_bot):
    bot = scripted_bot("not json")
    session = bot.new_session()
    first = bot.chat("I want a winter coat", session)
    cheaper = bot.chat("cheaper", session)
    both = Expect(cheaper_than_previous=True, disjoint_from_previous=True)
    assert check_reply(both, cheaper, first, bot.catalog) == []
    assert len(check_reply(Expect(cheaper_than_previous=True, disjoint_from_previous=True), first, first,
        bot.catalog)) == 2
    assert check_reply(Expect(pricier_than_previous=True), first, cheaper, bot.catalog) == []
    assert check_reply(Expect(cheaper_than_previous=True), first, None, bot.catalog)  # nothing to compare with


def test_run_case_expects_refusals_and_reports_surprises(scripted_bot):
    bot = scripted_bot("not json")
    refused = Case(id="r", turns=[{"say": "   ", "error": "InvalidMessageError"}, {"say": "winter coat"}])
    assert run_case(bot, refused).passed
    surprised = run_case(bot, Case(id="s", turns=[{"say": "   "}]))
    assert not surprised.passed and "InvalidMessageError" in surprised.why[0]
    answered = run_case(bot, Case(id="a", turns=[{"say": "winter coat", "error": "InvalidMessageError"}]))
    assert not answered.passed and "was expected" in answered.why[0]


def test_flips_and_the_table_show_what_changed():
    def result(label, outcomes):
        run = SuiteResult("s", label, 0.5)
        run.cases = [CaseResult(case_id, passed, [] if passed else ["why"], [], 0.1) for case_id, passed in outcomes]
        return run

    new = result("recommend@2", [("a", True), ("b", False), ("c", True)])
    old = result("recommend@1", [("a", False), ("b", True), ("c", True)])
    assert flips(new, old) == {"fixed": ["a"], "broken": ["b"]}
    text = table([new, old])
    assert "fixed ['a']; broken ['b']" in text and "2/3 passed (67%; threshold 50%) -> ok" in text


def test_cli_exit_status_follows_the_threshold(tmp_path, monkeypatch, capsys):
    """A suite whose cases pass exits 0; one below its threshold exits 1. Both write the JSON report.
    The requests match nothing, so these runs make no LLM call."""
    monkeypatch.setenv("RECCHAT_DATA_DIR", str(tmp_path / "data"))
    passing, failing = tmp_path / "passing.yaml", tmp_path / "failing.yaml"
    passing.write_text("threshold: 1.0\ncases: [{id: nothing, turns: [{say: qwxzv, expect: {max_items: 0}}]}]\n")
    failing.write_text("threshold: 0.5\ncases: [{id: wants-items, turns: [{say: qwxzv, expect: {min_items: 1}}]}]\n")
    report = tmp_path / "report.json"
    assert main(["eval", "prompts", "--suite", str(passing), "--out", str(report)]) == 0
    assert json.loads(report.read_text())["runs"][0]["pass_rate"] == 1.0
    assert main(["eval", "prompts", "--suite", str(failing), "--out", str(report)]) == 1
    run = json.loads(report.read_text())["runs"][0]
    assert run["pass_rate"] == 0.0 and "0 items, expected at least 1" in run["cases"][0]["why"][0]
    assert "below the threshold in: failing" in capsys.readouterr().err


# --- the real default model (greedy, so deterministic) ------------------------------------------------

_bots: dict[str, RecChat] = {}


def suite_bot(name, settings, encoders, backend) -> RecChat:
    """`encoders`: the loaded ones by name; the suite's catalog chooses, as `embedding.model = 'auto'` does."""
    if name not in _bots:
        catalog = suite_catalog(SUITES[name], settings)
        encoder = encoders[chosen_model(settings.embedding, [item.embedding_text() for item in catalog])]
        _bots[name] = RecChat.from_settings(bridged(settings), encoder=encoder, backend=backend, catalog=catalog)
        _bots[name].read_other_languages(wait=True)  # as `recchat eval prompts` runs them
    return _bots[name]


@pytest.fixture
def encoders(encoder, multilingual_encoder) -> dict:
    return {encoder.name: encoder, multilingual_encoder.name: multilingual_encoder}


CI_CASES = [(name, case) for name, suite in SUITES.items() for case in suite.selected({"ci"})]


@pytest.mark.prompts
@pytest.mark.parametrize("suite_name, case", CI_CASES, ids=[f"{name}:{case.id}" for name, case in CI_CASES])
def test_ci_cases_pass_on_the_default_model(suite_name, case, settings, encoders, real_backend):
    result = run_case(suite_bot(suite_name, settings, encoders, real_backend), case)
    assert result.passed, result.why


@pytest.mark.slow
@pytest.mark.prompts
@pytest.mark.parametrize("suite_name", sorted(SUITES))
def test_whole_suite_meets_its_threshold(suite_name, settings, encoders, real_backend):
    result = run_suite(suite_bot(suite_name, settings, encoders, real_backend), SUITES[suite_name])
    assert result.ok, table([result])
