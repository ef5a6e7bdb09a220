import json

from recchat.cli import main


def test_index_then_one_shot_json_chat(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECCHAT_DATA_DIR", str(tmp_path))
    assert main(["index"]) == 0
    assert "added 230" in capsys.readouterr().out
    assert main(["index"]) == 0
    assert "added 0, updated 0, removed 0, unchanged 230 (0 embedded" in capsys.readouterr().out

    assert main(["chat", "--json", "I want a winter coat"]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert {"message", "items", "metadata"} <= reply.keys() and 3 <= len(reply["items"]) <= 5
    assert all({"id", "title", "reason", "score"} <= item.keys() for item in reply["items"])


def test_cli_errors_are_clear_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECCHAT_DATA_DIR", str(tmp_path))
    assert main(["chat", "--catalog", "movies", "a comedy"]) == 2
    assert "recchat catalog build-movies" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "title": "x", "category": "y", "price": "free"}\n')
    assert main(["index", "--catalog", str(bad)]) == 2
    assert f"{bad}:1: field 'price'" in capsys.readouterr().err


def test_feedback_cli_records_once_refuses_unknown_items_and_forgets(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECCHAT_DATA_DIR", str(tmp_path))
    assert main(["feedback", "add", "like", "P0004-down-parka", "--user", "ann", "--key", "k1"]) == 0
    assert "recorded: like P0004-down-parka by ann" in capsys.readouterr().out
    assert main(["feedback", "add", "like", "P0004-down-parka", "--user", "ann", "--key", "k1"]) == 0
    assert "already recorded" in capsys.readouterr().out
    assert main(["feedback", "add", "like", "NOPE-1", "--user", "ann"]) == 2
    assert "no item 'NOPE-1'" in capsys.readouterr().err
    assert main(["feedback", "add", "like", "P0004-down-parka"]) == 2  # whose?
    assert "give a session_id or a user_id" in capsys.readouterr().err
    assert main(["feedback", "forget", "ann"]) == 0
    assert "deleted 1 rows of user 'ann'" in capsys.readouterr().out


def test_interactive_chat_takes_feedback_by_number(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECCHAT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RECCHAT_LLM__BACKEND", "none")
    typed = iter(["a warm winter coat", "/dislike 1", "/like 9", "a warm winter coat", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(typed))
    assert main(["chat", "--user", "ann"]) == 0
    out = capsys.readouterr().out
    first_answer, second_answer = out.split("noted: dislike ")[0], out.split("noted: dislike ")[1]
    disliked = first_answer.split("\n1. ")[1].split(":")[0]
    assert second_answer.startswith(disliked)
    assert "the last answer has 5 item(s)" in second_answer
    assert f"\n1. {disliked}:" not in second_answer and disliked + ":" not in second_answer.split("\n", 1)[1]


def test_importing_movielens_twice_adds_nothing_the_second_time(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECCHAT_DATA_DIR", str(tmp_path))
    assert main(["feedback", "import", "--dataset", "ml-100k"]) == 0
    first = capsys.readouterr().out
    imported = int(first.split(": ")[1].split(" events")[0])
    assert imported > 50_000 and ", 0 already there" in first
    assert main(["feedback", "import", "--dataset", "ml-100k"]) == 0
    assert f"ml-100k: 0 events imported, {imported} already there" in capsys.readouterr().out


def test_a_request_nothing_matches_says_why_no_model_was_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECCHAT_DATA_DIR", str(tmp_path))
    assert main(["chat", "a winter coat under $1"]) == 0
    out = capsys.readouterr().out
    assert "Nothing in the products catalog matches" in out
    assert "(answered from search results only: no item matched, so the model had nothing to explain)" in out
    assert "None" not in out
