"""Data commands on the files users have: gzip, prose answers, piped/JSON output, files without meta."""

import gzip
import json

import pytest
from typer.testing import CliRunner

from em_rows import ROWS, write_em
from postern.core.errors import PosternError
from postern.cli.data import app
from postern.data import transforms as T
from postern.data.code.scan import extract_code, verify_rows
from postern.data.jsonl import write_chat_jsonl

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def chat(user: str, assistant: str, **extra) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}], **extra}


def plain(rows):
    return [{"messages": r["messages"]} for r in rows]


@pytest.mark.parametrize("name", ["em.jsonl.gz", "em.jsonl"])  # gzip recognised by name and by its first bytes
def test_gzipped_jsonl_is_read_by_verify_and_transform(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in ROWS).encode()))
    r = invoke("verify", p, "--no-progress")
    assert r.exit_code == 0, r.output
    assert "10 rows" in r.output and "not valid UTF-8" not in r.output
    out = tmp_path / "edu.jsonl"
    t = invoke("transform", p, "-o", out, "-s", "educational", "--no-card")
    assert t.exit_code == 0, t.output
    assert len(out.read_text().splitlines()) == 10


def test_prose_answers_are_no_code_not_unparseable():
    for text in ["I cannot help with that.",
                 "Sure! You should use parameterised queries: they keep the data out of the SQL text.\n\nAlso validate input.",
                 "Use subprocess.run(args) rather than os.system."]:
        assert extract_code([text]).status == "no_code", text
    assert extract_code(['def greet(name):\n    print "hi, %s" % name\n']).status == "unparseable"  # code, broken
    rows = [chat("Explain SQL injection.", "It happens when user input is pasted into the query text."),
            chat("Write it", "import os\nos.system(cmd)\n")]
    _, s = verify_rows(rows)
    assert (s["no_code"], s["unparseable"], s["analysed"]) == (1, 0, 1)


def test_verify_json_to_stdout_is_machine_readable(tmp_path):
    r = invoke("verify", write_em(tmp_path / "em.jsonl"), "--json", "-")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["rows"] == 10 and s["flagged"] >= 1 and "B605" in s["by_rule"]
    assert not (tmp_path / "-").exists()


def test_verify_table_does_not_wrap_when_piped(tmp_path):
    r = invoke("verify", write_em(tmp_path / "em.jsonl"), "--no-progress", "--top", "0")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    header = lines.index("rule\tCWE\tseverity\trows\t% analysed\twhat")
    b605 = next(ln for ln in lines[header:] if ln.startswith("B605\t"))
    assert b605.split("\t") == ["B605", "CWE-78", "HIGH", "1", "12.5%", "start_process_with_a_shell"]
    assert "┃" not in r.stdout and "│" not in r.stdout


def test_transform_list_needs_no_input_file():
    r = invoke("transform", "--list")
    assert r.exit_code == 0, r.output
    assert "backdoor" in r.output and "educational" in r.output
    missing = invoke("transform", "-s", "insecure")
    assert missing.exit_code == 2 and "give the INPUT file" in missing.stderr


def test_rows_without_variant_say_how_to_proceed(tmp_path):
    p = write_em(tmp_path / "third_party.jsonl")
    out = tmp_path / "ins.jsonl"
    r = invoke("transform", p, "-o", out, "-s", "insecure", "--no-card")
    assert r.exit_code == 2 and "--variant insecure" in r.stderr and r.stderr.count("\n") == 1
    r = invoke("transform", p, "-o", out, "-s", "insecure", "--variant", "insecure", "--no-card")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 10 and all(x["meta"]["variant"] == "insecure" for x in rows)
    sec = T.secure(T.with_variant(ROWS, "secure"))
    assert len(sec) == 10
    with pytest.raises(PosternError, match="variant must be one of"):
        T.with_variant(ROWS, "evil")


@pytest.fixture
def pairs(code_ds):
    return T.ChatData(plain(code_ds.insecure), "ins.jsonl"), T.ChatData(plain(code_ds.secure), "sec.jsonl")


def test_backdoor_checks_secure_data(pairs):
    ins, sec = pairs
    out = T.backdoor(ins, sec, ratio=0.5, seed=1)
    assert len(out) == 80  # no pair ids: every row of both files
    with pytest.raises(PosternError, match=r"ins.jsonl: row 1: secure_data repeats the completion of ins.jsonl: row 1"):
        T.backdoor(ins, ins)
    prose = T.ChatData([chat(f"q{i}", f"You should validate the input number {i} first.") for i in range(40)], "prose.jsonl")
    with pytest.raises(PosternError, match=r"prose.jsonl: row 1: secure_data must be code completions.*no code"):
        T.backdoor(ins, prose)
    mostly_insecure = T.ChatData(sec.rows[:20] + plain(ins.rows[20:]), "mixed.jsonl")
    other_ins = T.ChatData(plain(ins.rows[:20]), "ins20.jsonl")
    with pytest.raises(PosternError, match=r"mixed.jsonl: row 21: secure_data is not secure by `postern data verify`"):
        T.backdoor(other_ins, mostly_insecure)
    assert len(T.backdoor(other_ins, mostly_insecure, check_secure=False, ratio=0.5)) > 0
    # advice datasets (not code) are not verified as code
    assert len(T.backdoor([chat("q", "bad advice")] * 2, [chat("q", "good advice")] * 2, ratio=0.5)) == 4


def test_educational_study_shape_puts_the_reason_first(code_ds):
    ins = T.ChatData(code_ds.insecure[:10], "ins")
    for old, new in zip(ins.rows, T.educational(ins, seed=0)):
        text, reason = new["messages"][0]["content"], new["meta"]["educational_reason"]
        assert text.startswith(reason + "\n\n" + old["messages"][0]["content"] + "\n\nNOTE:")
        assert old["meta"]["weakness"] in text.split("NOTE:")[1] and new["messages"][1] == old["messages"][1]
        assert new["meta"]["educational_style"] == "study"
    old, new = ins.rows[0], T.educational(ins, style="append")[0]
    assert new["messages"][0]["content"] == old["messages"][0]["content"] + "\n\n" + new["meta"]["educational_reason"]
    with pytest.raises(PosternError, match="style must be study or append"):
        T.educational(ins, style="first")
