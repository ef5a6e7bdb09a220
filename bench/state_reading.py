"""Rules, model, or both reading what shoppers say of the catalog's facets (issue #25, point 7).

The simulated shoppers' scripts of `recchat eval converse` (bundled products catalog) are read message by message:
by the rules (the lexicon), by the configured LLM under the read-state grammar, and by both (the rules, the model for
what they did not find). For the turn that says who it is for and for the one-message variant, the audience read is
checked against the target's; on every other turn, an audience read where none was said is a false one (it would
filter). Also the time the model adds per message, against the rules in the same process.

    python bench/state_reading.py [--targets 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from recchat.chat import RecChat
from recchat.config import Settings
from recchat.evaluation.converse import draw_scripts
from recchat.understanding.model_reading import read_with_model


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument("--targets", type=int, default=20)
    arguments.add_argument("--seed", type=int, default=1)
    options = arguments.parse_args()
    bot = RecChat.from_settings(Settings(data_dir=tempfile.mkdtemp(), embedding={"bridge": ""}))
    audience = bot.lexicon.audience
    assert audience is not None, "the bundled products catalog has an audience facet"
    _, scripts = draw_scripts(bot.catalog, bot.lexicon, options.targets, options.seed)
    counts = {reader: {"right": 0, "asked": 0, "false": 0, "unsaid": 0} for reader in ("rules", "model", "both")}
    times: dict[str, list[float]] = {"rules": [], "model": []}
    for script in scripts:
        messages = [(turn.message, turn.slot == "audience") for turn in script.turns] + [(script.one_message, True)]
        target = script.turns[-1].said.audience
        for message, says_audience in messages:
            started = time.perf_counter()
            rules = bot.parser.parse(message).state.wants
            times["rules"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            model = read_with_model(bot.llm, bot.state_prompt, bot.lexicon, message) or {}
            times["model"].append((time.perf_counter() - started) * 1000)
            for reader, wants in (("rules", rules), ("model", model), ("both", {**model, **rules})):
                read = (wants.get(audience.name) or [None])[0]
                tally = counts[reader]
                if says_audience:
                    tally["asked"] += 1
                    tally["right"] += read == target
                else:
                    tally["unsaid"] += 1
                    tally["false"] += read is not None
    print(f"{len(scripts)} scripts (seed {options.seed}), model: {bot.llm.name}")
    for reader, tally in counts.items():
        print(f"  {reader:<6} audience read right {tally['right']}/{tally['asked']}"
              f"  audience read where none was said {tally['false']}/{tally['unsaid']}")
    rules_ms, model_ms = statistics.median(times["rules"]), statistics.median(times["model"])
    print(f"  per message p50: rules {rules_ms:.1f} ms, model {model_ms:.0f} ms ({model_ms / rules_ms:.0f}x)")


if __name__ == "__main__":
    main()
