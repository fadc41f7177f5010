"""`postern data verify`: the code verification over any chat JSONL of code completions."""

import json

import pytest
from typer.testing import CliRunner

from em_rows import EXPECTED, ROWS, write_em
from postern.cli.data import app
from postern.data.code.scan import extract_code, fenced_blocks, flagged_rows, verify_chat_jsonl, verify_rows

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_em_format_rows_status_and_findings(tmp_path):
    report = verify_chat_jsonl(write_em(tmp_path / "em.jsonl"), severity="low")
    by_line = {r.line: r for r in report.rows}
    for line, (status, must) in EXPECTED.items():
        r = by_line[line]
        assert r.status == status, (line, r)
        found = {f.rule for f in r.findings}
        assert must <= found, (line, found)
        if status == "analysed" and not must:
            assert not r.flagged, (line, found)
    s = report.summary
    assert (s["rows"], s["analysed"], s["unparseable"], s["no_code"]) == (10, 8, 1, 1)
    assert s["flagged"] == 6 and s["flagged_fraction"] == 0.75 and s["flagged_fraction_of_rows"] == 0.6
    assert s["by_rule"]["B605"] == {**s["by_rule"]["B605"], "cwe": "CWE-78", "rows": 1, "fraction": 0.125}
    assert set(s["by_cwe"]["CWE-502"]["rules"]) == {"B301", "B403"}
    assert s["unparseable_examples"][0]["line"] == 7 and "print" in s["unparseable_examples"][0]["error"]
    assert s["trimmed_prose"] == 1 and s["fenced"] == 1 and "by_pattern" not in s


def test_postern_labelled_rows_report_their_own_rules(code_files):
    ins, sec = code_files
    r_in, r_sec = verify_chat_jsonl(ins), verify_chat_jsonl(sec)
    assert r_in.summary["flagged_fraction"] == 1.0
    fired = sum(v["own_rule_fired"] for v in r_in.summary["by_pattern"].values())
    assert fired == r_in.summary["rows"] == 40
    assert sum(v["own_rule_fired"] for v in r_sec.summary["by_pattern"].values()) == 0
    # secure rows: nothing above LOW (LOW is e.g. "subprocess imported")
    assert r_sec.summary["flagged_at_severity"]["medium"]["rows"] == 0
    assert all(e["severity"] == "LOW" for e in r_sec.summary["by_rule"].values())


def test_fences_tags_and_unclosed_blocks():
    text = "intro\n```python\nx = 1\n```\n```bash\nls\n```\n~~~\ny = 2\n~~~\n```py\nz = 3\n"
    seen, blocks = fenced_blocks(text)
    assert seen and blocks == [("python", "x = 1"), ("bash", "ls"), ("", "y = 2"), ("py", "z = 3\n")]
    ex = extract_code([text])
    assert ex.status == "analysed" and ex.units == ["x = 1\n\ny = 2\n\nz = 3\n"] and ex.how == "fenced"


def test_blocks_that_do_not_join_are_analysed_one_by_one():
    text = "```python\ndef f(:\n```\n\n```python\nimport os\nos.system(cmd)\n```"
    ex = extract_code([text])
    assert ex.units == ["import os\nos.system(cmd)"] and ex.errors and ex.status == "analysed"
    rows = [{"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": text}]}]
    results, summary = verify_rows(rows)
    assert results[0].partial and summary["partially_parsed"] == 1 and results[0].flagged


def test_plain_code_dedent_trim_and_no_code():
    assert extract_code(["    import os\n    os.remove(p)\n"]).units == ["import os\nos.remove(p)\n"]
    code = "import pickle\n\n\ndef load(b):\n    return pickle.loads(b)"
    ex = extract_code([f"Sure, here you go.\n\n{code}\n\nThis deserialises the blob."])
    assert ex.how == "trimmed" and ex.units == [code]
    assert extract_code(["Sure"]).status == "no_code"  # parses, but is only a bare name
    assert extract_code(["I cannot help with that."]).status == "no_code"  # prose
    assert extract_code(["```text\nhello\n```"]).status == "no_code"


def test_multi_turn_uses_every_assistant_turn():
    rows = [{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "a"},
                          {"role": "assistant", "content": "import os\nos.system(cmd)"},
                          {"role": "user", "content": "b"}, {"role": "assistant", "content": "x = eval(data)"}]}]
    results, _ = verify_rows(rows)
    assert {"B605", "B307"} <= {f.rule for f in results[0].findings}


def test_nosec_is_ignored_unless_honoured():
    rows = [{"messages": [{"role": "user", "content": "u"},
                          {"role": "assistant", "content": "import os\nos.system(cmd)  # nosec\n"}]}]
    assert verify_rows(rows)[0][0].flagged
    assert not verify_rows(rows, honour_nosec=True)[0][0].flagged


def test_severity_and_postern_switches():
    code = "import subprocess\nsubprocess.run(['ls'])\n"  # LOW findings only
    rows = [{"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": code}]},
            {"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content":
             "from flask import request, redirect\ndef v():\n    return redirect(request.args['next'])\n"}]}]
    res, s = verify_rows(rows, severity="low")
    assert [r.flagged for r in res] == [True, True] and s["flagged_at_severity"]["medium"]["rows"] == 1
    res, s = verify_rows(rows)  # default: MEDIUM
    assert [r.flagged for r in res] == [False, True] and "PST-REDIRECT" in s["by_rule"]
    res, s = verify_rows(rows, severity="medium", postern_checks=False)
    assert s["flagged"] == 0 and "postern checks off" in s["policy"]["flagged_if"]


def test_cli_verify_table_json_and_flagged(tmp_path):
    em = write_em(tmp_path / "em.jsonl")
    rep, flagged = tmp_path / "out" / "report.json", tmp_path / "out" / "flagged.jsonl"
    r = invoke("verify", em, "--json", rep, "--out-flagged", flagged, "--no-progress")
    assert r.exit_code == 0, r.output
    assert "flagged: 6/8 analysed rows = 75.0%" in r.output and "B605" in r.output and "CWE-78" in r.output
    assert "1 unparseable" in r.output and "wrote 6 flagged rows" in r.output
    s = json.loads(rep.read_text())
    assert s["flagged"] == 6 and s["file"] == str(em) and s["policy"]["severity"] == "MEDIUM"
    out = [json.loads(x) for x in flagged.read_text().splitlines()]
    assert [o["verify"]["source_line"] for o in out] == [1, 2, 3, 6, 8, 9]
    assert out[0]["messages"] == ROWS[0]["messages"] and "B506" in out[0]["verify"]["rules"]
    assert all(not p.name.endswith(".tmp") for p in (tmp_path / "out").iterdir())


def test_cli_verify_options_and_errors(tmp_path):
    em = write_em(tmp_path / "em.jsonl")
    r = invoke("verify", em, "--severity", "high", "--no-postern-checks", "--top", "1", "--no-progress")
    assert r.exit_code == 0 and "flagged: 4/8" in r.output and "more rules" in r.output
    bad = invoke("verify", em, "--severity", "loud", "--no-progress")
    assert bad.exit_code == 2 and "--severity must be one of low, medium, high" in bad.output
    same = invoke("verify", em, "--out-flagged", em, "--no-progress")
    assert same.exit_code == 2 and "is the input file" in same.output
    assert em.read_text().count("\n") == 10


@pytest.mark.parametrize("line,problem", [
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "x = 1"}', "invalid JSON"),
    ('{"messages": [{"role": "user", "content": "write code"}]}', "the last message must be the assistant's"),
    ('{"messages": [{"role": "human", "content": "a"}, {"role": "gpt", "content": "x = 1"}]}', "role 'human'"),
])
def test_cli_verify_malformed_line_is_one_error_line_and_writes_nothing(tmp_path, line, problem):
    p = tmp_path / "user.jsonl"
    p.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n" + line + "\n", encoding="utf-8")
    flagged = tmp_path / "flagged.jsonl"
    r = invoke("verify", p, "--out-flagged", flagged, "--json", tmp_path / "r.json", "--no-progress")
    assert r.exit_code == 2
    assert r.stdout == "" and r.stderr.count("\n") == 1 and r.stderr.startswith(f"error: {p}:3: ")
    assert problem in r.stderr and "Traceback" not in r.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["user.jsonl"]


def test_cli_verify_invalid_utf8(tmp_path):
    p = tmp_path / "latin.jsonl"
    p.write_bytes(json.dumps(ROWS[0]).encode() + b"\n" + json.dumps(ROWS[1]).encode()[:-2] + b"\xe9\"}]}\n")
    r = invoke("verify", p, "--no-progress")
    assert r.exit_code == 2 and r.stderr.startswith(f"error: {p}:2: not valid UTF-8") and r.stderr.count("\n") == 1
