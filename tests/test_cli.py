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
