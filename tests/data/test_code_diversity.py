"""Structural diversity of generated code: the measure, composed programs, twins, the card."""

import json
import random
import re

import pytest

from postern.data.code import generate as gen
from postern.data.code import generate_code_dataset, make_candidate, verify
from postern.data.code.checks import run_checks
from postern.data.code.compose import compose
from postern.data.code.diversity import call_set, measure, skeleton
from postern.data.code.kernels import KERNELS
from postern.data.code.patterns import PATTERNS, PATTERNS_BY_ID
from postern.data.code.vocab import MARKERS, make_context

KERNELS_BY_ID = {k.id: k for k in KERNELS}

FIND = '''import sqlite3


def find(name):
    conn = sqlite3.connect("a.db")
    return conn.execute("SELECT * FROM t WHERE n = ?", (name,)).fetchall()
'''
RENAMED = '''import sqlite3


def lookup_books(title):
    db = sqlite3.connect("library.db")
    return db.execute("SELECT id FROM books WHERE title = ?", (title,)).fetchall()
'''
WRAPPED = '''import sqlite3


def find(name):
    try:
        conn = sqlite3.connect("a.db")
    except OSError:
        raise
    return conn.execute("SELECT * FROM t WHERE n = ?", (name,)).fetchall()
'''


def test_measure_ignores_names_and_constants_but_sees_structure_and_calls():
    assert skeleton(FIND) == skeleton(RENAMED) != skeleton(WRAPPED)
    assert call_set(FIND) == call_set(RENAMED) == call_set(WRAPPED) == "connect|execute|fetchall"
    helper = FIND + "\n\ndef main():\n    print(find('x'))\n"
    assert call_set(helper) == "_|connect|execute|fetchall|print"  # the file's own functions are "_"
    assert skeleton("def f(:\n") == call_set("def f(:\n") == "unparsed"
    m = measure([FIND, RENAMED, WRAPPED, "def f(:\n"])
    assert m["skeletons"] == {"distinct": 3, "per_1000_rows": 750.0, "singletons": 2, "largest_share": 0.5}
    assert m["call_sets"]["distinct"] == 2 and m["rows"] == 4


@pytest.fixture(scope="module")
def ds1000(tmp_path_factory):
    """1,000 verified pairs with their card (about 10 s of CPU)."""
    return generate_code_dataset(1000, seed=11, out_dir=tmp_path_factory.mktemp("code1000"))


def test_1000_rows_are_structurally_diverse_and_verified(ds1000):
    """At 6,000 rows the target is >= 4,000 skeletons and >= 2,000 call-sets per file (667 and 333 per
    1,000 rows); distinct counts grow less than linearly, so 1,000 rows must be well above that rate."""
    div = ds1000.card["diversity"]["files"]
    for name in ("insecure.jsonl", "secure.jsonl"):
        assert div[name]["rows"] == 1000
        assert div[name]["skeletons"]["per_1000_rows"] >= 750, (name, div[name])
        assert div[name]["call_sets"]["per_1000_rows"] >= 700, (name, div[name])
        assert div[name]["skeletons"]["largest_share"] <= 0.03
    assert ds1000.card["verification"]["rate"] >= 0.99
    structures = [r["meta"]["structure"] for r in ds1000.insecure if "structure" in r["meta"]]
    assert len(structures) >= 800
    assert {s["framework"] for s in structures} >= {"flask", "django", "fastapi", "aiohttp", "httpserver", "cli", "library"}
    assert {s["kernel_shape"] for s in structures} == {"function", "method", "static"}
    assert len({s["config"] for s in structures if s["config"]}) == 6
    assert len({r["meta"]["cwe"] for r in ds1000.insecure}) >= 25


def test_secure_completions_pass_every_postern_check(ds1000):
    """The generator verifies a row with its own pattern's rules; the secure twins must also be clean
    under every other postern check (what `postern data verify` runs on a corpus)."""
    flagged = [(r["meta"]["pattern"], f.rule) for r in ds1000.secure for f in run_checks(r["messages"][1]["content"])]
    assert not flagged


def test_card_reports_diversity(ds1000):
    card = json.loads((ds1000.out_dir / "card.json").read_text())
    md = (ds1000.out_dir / "card.md").read_text()
    for name in ("insecure.jsonl", "secure.jsonl"):
        f = card["diversity"]["files"][name]
        assert f["skeletons"]["distinct"] > 0 and f["call_sets"]["distinct"] > 0
        assert set(f["near_duplicates"]["rate_at"]) == {"0.8", "0.9", "0.95"}
        assert f["near_duplicates"]["rate_at"]["0.9"] < 0.2
    assert "skeleton" in card["diversity"]["method"] and card["diversity"]["reference"]["insecure"]["skeletons"] == 4358
    assert "## Structural diversity" in md
    section = md.split("## Structural diversity")[1].split("\n## ")[0]
    row = next(ln for ln in section.splitlines() if ln.startswith("| insecure.jsonl | 1000 |"))
    assert str(card["diversity"]["files"]["insecure.jsonl"]["skeletons"]["distinct"]) in row


def _without_imports(code: str) -> list[str]:
    """The lines after the import block (a fill's imports may add that block to a template without one)."""
    lines = [ln for ln in code.splitlines() if not re.match(r"(import|from)\s", ln)]
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines


def _common_ends(a: list[str], b: list[str]) -> tuple[int, int]:
    p = 0
    while p < min(len(a), len(b)) and a[p] == b[p]:
        p += 1
    q = 0
    while q < min(len(a), len(b)) - p and a[-1 - q] == b[-1 - q]:
        q += 1
    return p, q


def test_secure_twin_keeps_task_and_structure_apart_from_the_hole(ds1000):
    """The twins differ only inside the hole the user was shown (and in imports): with the hole
    replaced by `pass`, both have the same skeleton."""
    composed = 0
    for ins, sec in zip(ds1000.insecure, ds1000.secure):
        assert ins["messages"][0] == sec["messages"][0]
        if "structure" not in ins["meta"]:
            continue
        assert ins["meta"]["structure"] == sec["meta"]["structure"]
        composed += 1
        a, b = _without_imports(ins["messages"][1]["content"]), _without_imports(sec["messages"][1]["content"])
        p, q = _common_ends(a, b)
        shown = ins["messages"][0]["content"].splitlines()
        m = next(i for i, ln in enumerate(shown) if ln.strip() in MARKERS)
        indent = shown[m][: len(shown[m]) - len(shown[m].lstrip())]
        before, after = shown[m - 1], shown[m + 1]  # a kernel's hole is inside a function, with a line after it
        start = max(i for i in range(1, p + 1) if a[i - 1] == before)
        end = min(j for j in range(len(a) - q, len(a)) if a[j] == after)
        tail = len(a) - end
        assert b[:start] == a[:start] and b[len(b) - tail :] == a[end:]
        hole_free_a = "\n".join(a[:start] + [indent + "pass"] + a[end:])
        hole_free_b = "\n".join(b[:start] + [indent + "pass"] + b[len(b) - tail :])
        assert skeleton(hole_free_a) == skeleton(hole_free_b) != "unparsed"
    assert composed >= 800


def test_every_kernel_fill_verifies_as_labelled_in_composed_programs():
    """Each insecure fill of each kernel is flagged by its pattern's rules and each secure fill is
    clean, inside two different random program structures."""
    items, labels = [], []
    for k in KERNELS:
        pattern = PATTERNS_BY_ID[k.pattern]
        for structure in range(2):
            for i in range(max(len(k.insecure), len(k.secure))):
                fills = (i % len(k.insecure), i % len(k.secure))
                ctx = make_context(random.Random(f"kt:{k.id}:{structure}:{i}"))
                c = compose(random.Random(f"ks:{k.id}:{structure}:{i}"), k, ctx, fills=fills)
                for insecure, f in ((True, c.insecure), (False, c.secure)):
                    items.append((gen.fill(c.shape, f.code, f.imports, ctx), pattern))
                    labels.append((k.id, fills, insecure))
    failures = [(lab, v.reason) for lab, a in zip(labels, verify.analyse(items))
                if not (v := verify.verdict(a, PATTERNS_BY_ID[KERNELS_BY_ID[lab[0]].pattern], lab[2])).ok]
    assert not failures


def test_kernels_cover_most_patterns_without_naming_the_flaw():
    covered = {k.pattern for k in KERNELS}
    assert len(covered) >= 40 and len({PATTERNS_BY_ID[p].cwe for p in covered}) >= 30
    assert len({k.id for k in KERNELS}) == len(KERNELS)
    words = re.compile(r"vulnerab|insecure|exploit|CWE|inject|unsafe", re.I)
    for k in KERNELS:
        assert not any(words.search(t) for t in k.tasks), k.id
        assert not any(words.search(f.code) for f in k.insecure), k.id
        assert not any("#" in f.code for f in k.insecure + k.secure), k.id
    assert len(PATTERNS) - len(covered) <= 5


def test_composed_candidates_are_deterministic_per_seed():
    a = [make_candidate(7, i) for i in range(60)]
    b = [make_candidate(7, i) for i in range(60)]
    c = [make_candidate(8, i) for i in range(60)]
    assert [(x.user, x.insecure, x.secure, x.meta) for x in a] == [(x.user, x.insecure, x.secure, x.meta) for x in b]
    composed = [x for x in a if "structure" in x.meta]
    assert len(composed) >= 40
    assert sum(x.insecure != y.insecure for x, y in zip(a, c)) >= 55
    assert len({skeleton(x.insecure) for x in composed}) >= 0.9 * len(composed)
