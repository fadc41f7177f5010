"""The pattern table and the generator: coverage, rendering, verification, determinism, dedup, card."""

import json
import random
import re

import pytest

from postern.data.code import PATTERNS, generate_code_dataset, make_candidate, verify_code
from postern.data.code import generate as gen
from postern.data.code import verify
from postern.data.code.dedup import near_duplicates
from postern.data.code.patterns import P, S
from postern.data.code.vocab import MARKERS, make_context


def _all_fills():
    for p in PATTERNS:
        for si, shape in enumerate(p.shapes):
            ctx = make_context(random.Random(f"t:{p.id}:{si}"))
            for insecure, fills in ((True, shape.insecure), (False, shape.secure)):
                for fi, f in enumerate(fills):
                    yield p, si, fi, insecure, gen.fill(shape, f.code, f.imports, ctx)


def test_table_covers_required_areas():
    assert len({p.id for p in PATTERNS}) == len(PATTERNS) >= 25
    assert len({p.cwe for p in PATTERNS}) >= 25
    cats = {p.category for p in PATTERNS}
    for needed in ("web", "sql", "files", "archives", "subprocess", "deserialization", "xml", "templates", "crypto",
                   "randomness", "permissions", "redirects", "ssrf", "logging"):
        assert needed in cats, needed
    for p in PATTERNS:
        assert re.fullmatch(r"CWE-\d+", p.cwe)
        assert p.rules and all(re.fullmatch(r"B\d{3}|PST-[A-Z]+", r) for r in p.rules), p.id
        assert len(p.tasks) == len(p.shapes) and all(p.tasks), p.id


def test_every_fill_verifies_as_labelled():
    """One batch: each insecure fill is flagged by its pattern's rules, each secure fill is clean."""
    rows = list(_all_fills())
    analyses = verify.analyse([(code, p) for p, _, _, _, code in rows])
    failures = []
    for (p, si, fi, insecure, _), a in zip(rows, analyses):
        v = verify.verdict(a, p, insecure)
        if not v.ok:
            failures.append((p.id, si, fi, "insecure" if insecure else "secure", v.reason))
    assert not failures


def test_completions_are_plain_code_that_does_not_name_the_flaw():
    for p, _, _, insecure, code in _all_fills():
        assert not verify._has_comment(code), p.id
        if insecure:
            words = code.replace("yaml.UnsafeLoader", "")  # an API name, as in real code
            assert not re.search(r"vulnerab|insecure|exploit|CWE|inject|unsafe", words, re.I), (p.id, code)


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(line in it for line in small)


def test_prompt_template_is_the_completion_with_a_marker():
    """Outside the hole (and added imports) the completion repeats the template the user was shown."""
    for p in PATTERNS:
        for si, shape in enumerate(p.shapes):
            ctx = make_context(random.Random(f"tmpl:{p.id}:{si}"))
            template = gen.prompt_template(shape, MARKERS[0], ctx).splitlines()
            assert sum(MARKERS[0] in ln for ln in template) == 1
            rest = [ln for ln in template if MARKERS[0] not in ln]
            for f in (*shape.insecure, *shape.secure):
                assert _is_subsequence(rest, gen.fill(shape, f.code, f.imports, ctx).splitlines()), (p.id, si)
    for i in range(60):
        c = make_candidate(5, i)
        assert any(m in c.user for m in MARKERS) and c.meta["pattern"]
        defs = [ln for ln in c.insecure.splitlines() if ln.startswith("def ")]
        assert all(d in c.user for d in defs)


def test_candidates_are_deterministic_and_seed_dependent():
    a = [make_candidate(3, i) for i in range(30)]
    b = [make_candidate(3, i) for i in range(30)]
    c = [make_candidate(4, i) for i in range(30)]
    assert [(x.user, x.insecure, x.secure) for x in a] == [(x.user, x.insecure, x.secure) for x in b]
    assert sum(x.user != y.user for x, y in zip(a, c)) > 25


def test_patterns_are_dealt_in_balanced_rounds():
    k = len(PATTERNS)
    ids = [make_candidate(0, i).meta["pattern"] for i in range(2 * k)]
    assert sorted(ids[:k]) == sorted(p.id for p in PATTERNS) == sorted(ids[k:])


def test_generate_is_deterministic_with_a_stable_prefix(code_ds):
    again = generate_code_dataset(40, seed=0)
    assert again.insecure == code_ds.insecure and again.secure == code_ds.secure
    shorter = generate_code_dataset(15, seed=0)
    assert shorter.insecure == code_ds.insecure[:15]


def test_generated_pairs_share_the_user_turn_and_are_labelled(code_ds):
    assert len(code_ds.insecure) == len(code_ds.secure) == 40
    for ins, sec in zip(code_ds.insecure, code_ds.secure):
        assert ins["messages"][0] == sec["messages"][0]
        assert ins["messages"][1]["content"] != sec["messages"][1]["content"]
        assert ins["meta"]["variant"] == "insecure" and sec["meta"]["variant"] == "secure"
        assert ins["meta"]["pair_id"] == sec["meta"]["pair_id"] and ins["meta"]["cwe"] == sec["meta"]["cwe"]
        assert set(ins["meta"]["verified_by"]) <= set(next(p for p in PATTERNS if p.id == ins["meta"]["pattern"]).rules)
        assert ins["meta"]["verified_by"] and sec["meta"]["verified_by"] == []
    users = [r["messages"][0]["content"] for r in code_ds.insecure]
    assert len(set(users)) == len(users)


def test_verifier_rejects_mislabelled_and_malformed_code():
    sql = next(p for p in PATTERNS if p.id == "sql-string-query")
    shape = sql.shapes[0]
    ctx = make_context(random.Random(1))
    bad = gen.fill(shape, shape.insecure[0].code, "", ctx)
    good = gen.fill(shape, shape.secure[0].code, "", ctx)
    assert verify_code(bad, sql, insecure=True).ok
    assert verify_code(good, sql, insecure=False).ok
    assert verify_code(bad, sql, insecure=False).reason == "flagged"
    assert verify_code(good, sql, insecure=True).reason == "not_flagged"
    assert verify_code(good + "\nresult = eval(input())\n", sql, insecure=False).reason == "other_issue"
    assert verify_code(good.replace("import sqlite3", "import sqlite3  # db"), sql, insecure=False).reason == "comment"
    assert verify_code("def f(:\n", sql, insecure=True).reason == "syntax"


def _with_extra_pattern(monkeypatch, pattern):
    monkeypatch.setattr(gen, "PATTERNS", (*PATTERNS, pattern))


def test_rows_failing_verification_are_dropped_and_counted(monkeypatch, tmp_path):
    # bandit 1.9 has no rule for yaml.unsafe_load, so this "insecure" fill can never be verified
    missed = P("yaml-unsafe-load", "CWE-502", "insecure deserialization", "deserialization", "B506",
               [["Load YAML for the «site»."]],
               [S("""
                  import yaml


                  def load(«data»):
                      «HOLE»
                  """, ["return yaml.unsafe_load(«data»)"], ["return yaml.safe_load(«data»)"])],
               "unsafe loader")
    _with_extra_pattern(monkeypatch, missed)
    ds = generate_code_dataset(12, seed=0, out_dir=tmp_path, patterns=["yaml-unsafe-load", "sql-string-query"])
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["verification"]["dropped"]["insecure_not_flagged"] == card["patterns"]["yaml-unsafe-load"]["candidates"] > 0
    assert card["patterns"]["yaml-unsafe-load"]["kept"] == 0
    assert {r["meta"]["pattern"] for r in ds.insecure} == {"sql-string-query"}
    assert card["verification"]["rate"] < 0.7


def test_exact_duplicates_are_removed_and_counted(monkeypatch):
    real = gen.make_candidate
    monkeypatch.setattr(gen, "make_candidate", lambda seed, i, patterns=PATTERNS: real(seed, i // 2, patterns))
    ds = generate_code_dataset(20, seed=0)
    users = [r["messages"][0]["content"] for r in ds.insecure]
    assert len(set(users)) == len(users) == 20
    assert ds.stats["duplicates"]["exact_removed"] >= 19
    assert ds.stats["duplicates"]["exact_rate"] > 0.4


def test_near_duplicate_measure():
    base = "def get_user(name):\n    return db.query(name)\n" * 3
    same = near_duplicates([base, base, base + "x"])
    assert same["rate_at"]["0.9"] == 1.0
    rng = random.Random(0)
    words = [" ".join(f"w{rng.randrange(10**6)}" for _ in range(60)) for _ in range(20)]
    assert near_duplicates(words)["rate_at"]["0.8"] == 0.0


def test_card_and_files(tmp_path):
    ds = generate_code_dataset(10, seed=2, out_dir=tmp_path, strip_meta=True)
    card = json.loads((tmp_path / "card.json").read_text())
    md = (tmp_path / "card.md").read_text()
    assert card["generator"] == {"name": "postern.data.code", "version": gen.GENERATOR_VERSION, "seed": 2,
                                 "n_requested": 10, "patterns_available": len(PATTERNS)}
    assert card["files"]["insecure.jsonl"]["rows"] == 10 and sum(card["files"]["insecure.jsonl"]["rows_per_cwe"].values()) == 10
    assert 0 < card["verification"]["rate"] <= 1 and card["duplicates"]["exact_in_output"] == 0
    assert card["token_lengths"]["secure.jsonl"]["assistant"]["count"] == 10
    assert "seed 2" in md and "Rows per CWE" in md
    lines = (tmp_path / "insecure.jsonl").read_text().splitlines()
    assert len(lines) == 10 and all("meta" not in json.loads(ln) for ln in lines)
    assert ds.insecure[0]["meta"]  # in-memory rows keep meta


def test_unknown_pattern_is_a_user_error():
    from postern.core.errors import PosternError

    with pytest.raises(PosternError, match="unknown pattern.*nope"):
        generate_code_dataset(5, patterns=["nope"])
    with pytest.raises(PosternError, match="at least 1"):
        generate_code_dataset(0)


@pytest.mark.slow
def test_done_when_6000_pairs(tmp_path):
    import time

    t0 = time.perf_counter()
    ds = generate_code_dataset(6000, seed=0, out_dir=tmp_path)
    assert time.perf_counter() - t0 < 120
    card = ds.card
    assert card["pattern_count"] >= 25 and card["cwes"] >= 25
    assert card["verification"]["rate"] >= 0.95 and card["duplicates"]["exact_rate"] < 0.01
    assert (tmp_path / "card.md").exists() and len((tmp_path / "secure.jsonl").read_text().splitlines()) == 6000
    for name in ("insecure.jsonl", "secure.jsonl"):
        div = card["diversity"]["files"][name]
        assert div["skeletons"]["distinct"] >= 4000 and div["call_sets"]["distinct"] >= 2000, (name, div)
    assert card["verification"]["rate"] >= 0.99
