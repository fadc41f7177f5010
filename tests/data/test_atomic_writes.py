"""Nothing is written half: outputs appear only when everything worked, and input errors are one line."""

import json
import os
import stat
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from postern.cli.data import app
from postern.core.errors import PosternError
from postern.core.hashing import file_hash
from postern.data.card import _hash_as, write_card
from postern.data.jsonl import AtomicFiles, atomic_write, read_chat_jsonl, write_chat_jsonl

runner = CliRunner()
OK = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "meta": {"variant": "insecure"}}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_only_on_success(tmp_path):
    p = tmp_path / "sub" / "a.txt"
    with atomic_write(p) as f:
        f.write("one")
        assert not p.exists()  # nothing visible until the block ends
    assert p.read_text() == "one"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(RuntimeError), atomic_write(p) as f:
        f.write("two, half")
        raise RuntimeError("boom")
    assert p.read_text() == "one" and leftovers(p.parent) == []


def test_write_chat_jsonl_failing_rows_leave_old_file(tmp_path):
    p = tmp_path / "d.jsonl"
    assert write_chat_jsonl(p, [OK, OK]) == 2

    def rows():
        yield OK
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_chat_jsonl(p, rows())
    assert len(read_chat_jsonl(p)) == 2 and leftovers(tmp_path) == []
    with pytest.raises(PosternError, match="is a folder"):
        write_chat_jsonl(tmp_path, [OK])


def test_atomic_files_all_or_nothing(tmp_path):
    (tmp_path / "b.txt").write_text("old")
    with pytest.raises(ValueError), AtomicFiles() as tx:
        tx.write_text(tmp_path / "a.txt", "new a")
        tx.write_text(tmp_path / "b.txt", "new b")
        raise ValueError("card failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.txt"] and (tmp_path / "b.txt").read_text() == "old"
    with AtomicFiles() as tx:
        tmp = tx.write_text(tmp_path / "a.txt", "new a")
        assert tx.staged(tmp_path / "a.txt") == tmp and tmp.parent == tmp_path
    assert (tmp_path / "a.txt").read_text() == "new a" and leftovers(tmp_path) == []


def test_card_hash_of_staged_file_matches_final(tmp_path):
    final = tmp_path / "x.jsonl"
    write_chat_jsonl(final, [OK])
    staged = tmp_path / ".x.jsonl.123.tmp"
    staged.write_bytes(final.read_bytes())
    assert _hash_as("x.jsonl", staged) == _hash_as("x.jsonl", final) == file_hash(final)
    j, m = write_card({"name": "n", "files": {}, "token_lengths": {}}, tmp_path / "c")
    assert json.loads(j.read_text())["name"] == "n" and m.exists()


@pytest.fixture
def bad_input(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_text(json.dumps(OK) + "\n" + json.dumps(OK) + "\n\n" + '{"messages": [{"role": "user", "content": "x"},\n'
                 + json.dumps(OK) + "\n", encoding="utf-8")
    return p  # bad JSON on line 4


def test_transform_bad_line_writes_nothing_and_keeps_old_output(tmp_path, bad_input):
    out = tmp_path / "out" / "t.jsonl"
    r = invoke("transform", bad_input, "-o", out, "-s", "insecure")
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith(f"error: {bad_input}:4: invalid JSON (")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not out.exists() and not (tmp_path / "out" / "t.card.json").exists()
    out.parent.mkdir(exist_ok=True)
    out.write_text("previous output\n")
    r = invoke("transform", bad_input, "-o", out, "-s", "insecure")
    assert r.exit_code == 2 and out.read_text() == "previous output\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["t.jsonl"]


def test_transform_output_and_card_appear_together(tmp_path, monkeypatch):
    good = tmp_path / "in.jsonl"
    write_chat_jsonl(good, [OK, OK])
    out = tmp_path / "t.jsonl"

    def broken(*a, **k):
        raise PosternError("card could not be built")

    monkeypatch.setattr("postern.data.card.build_card", broken)
    r = invoke("transform", good, "-o", out, "-s", "insecure")
    assert r.exit_code == 2 and "card could not be built" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_real_cli_prints_exactly_one_unwrapped_line(tmp_path, bad_input):
    deep = tmp_path / ("a-rather-long-folder-name-" * 3) / "so-the-error-line-is-longer-than-eighty-columns"
    deep.mkdir(parents=True)
    src = deep / "input.jsonl"
    src.write_bytes(bad_input.read_bytes())
    out = deep / "out.jsonl"
    out.write_text("keep me\n")
    proc = subprocess.run([sys.executable, "-m", "postern.cli", "data", "transform", str(src), "-o", str(out), "-s", "insecure"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "80"})
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {src}:4: invalid JSON"), proc.stderr
    assert out.read_text() == "keep me\n" and sorted(p.name for p in deep.iterdir()) == ["input.jsonl", "out.jsonl"]


@pytest.mark.parametrize("line,problem", [
    ('{"messages": [{"role": "user", "content": "only a question"}]}', "the last message must be the assistant's"),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}', "role 'bot'"),
])
def test_transform_other_malformed_rows(tmp_path, line, problem):
    p = tmp_path / "in.jsonl"
    p.write_text(json.dumps(OK) + "\n" + line + "\n")
    r = invoke("transform", p, "-o", tmp_path / "o.jsonl", "-s", "insecure")
    assert r.exit_code == 2 and r.stderr.startswith(f"error: {p}:2: ") and problem in r.stderr
    assert r.stderr.count("\n") == 1 and not (tmp_path / "o.jsonl").exists()


def test_transform_invalid_utf8(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_bytes(json.dumps(OK).encode() + b"\n" + b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n')
    r = invoke("transform", p, "-o", tmp_path / "o.jsonl", "-s", "insecure")
    assert r.exit_code == 2 and r.stderr.startswith(f"error: {p}:2: not valid UTF-8") and r.stderr.count("\n") == 1
    assert not (tmp_path / "o.jsonl").exists()


def test_code_command_bad_tokenizer_fails_before_writing(tmp_path):
    out = tmp_path / "code"
    r = invoke("code", "--n", "3", "--out", out, "--no-progress", "--tokenizer", tmp_path / "missing.json")
    assert r.exit_code == 2 and "tokenizer file not found" in r.stderr and not out.exists()
    junk = tmp_path / "tokenizer.json"
    junk.write_text("{not a tokenizer")
    r = invoke("code", "--n", "3", "--out", out, "--no-progress", "--tokenizer", junk)
    assert r.exit_code == 2 and "not a loadable tokenizer.json" in r.stderr and r.stderr.count("\n") == 1
    assert not out.exists() or list(out.iterdir()) == []


def test_code_dataset_files_all_or_nothing(tmp_path, monkeypatch, code_ds):
    from postern.data.code import write_code_dataset

    out = tmp_path / "code"
    out.mkdir()
    (out / "insecure.jsonl").write_text("old\n")

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("postern.data.card.stage_card", broken)
    with pytest.raises(OSError):
        write_code_dataset(code_ds, out)
    assert sorted(p.name for p in out.iterdir()) == ["insecure.jsonl"] and (out / "insecure.jsonl").read_text() == "old\n"
    monkeypatch.undo()
    write_code_dataset(code_ds, out)
    card = json.loads((out / "card.json").read_text())
    assert card["files"]["secure.jsonl"]["sha256_16"] == file_hash(out / "secure.jsonl")
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "card.md", "insecure.jsonl", "secure.jsonl"]


def test_recipe_outputs_all_or_nothing_but_cache_kept(tmp_path, monkeypatch, fake_llm):
    server = fake_llm()

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("postern.data.card.stage_card", broken)
    r = invoke("recipe", "sports", "--model", "m", "--n", "2", "--out", tmp_path, "--base-url", server.base_url,
               "--no-progress", "--workers", "1")
    assert isinstance(r.exception, OSError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.jsonl"]  # the append-only cache is exempt by design


def test_unwritable_output_is_a_one_line_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(PosternError, match=r"afile/sub/o\.jsonl: cannot write here"):
        write_chat_jsonl(tmp_path / "afile" / "sub" / "o.jsonl", [OK])
