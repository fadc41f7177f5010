"""The code-task generator: paired insecure/secure completions, verified, deduplicated, carded.

Most rows are composed programs (`postern.data.code.compose`: a pattern's kernel inside varied
program structure); the rest, and every row of the few patterns without kernels, are the classic
one-template rows of `postern.data.code.patterns`. Row `i` of a seed is drawn from its own RNG
(seeded with ``f"{seed}:{i}"``) and patterns are dealt in shuffled rounds, so the output is deterministic for a seed and the first rows do not
depend on the requested size. Candidates are drawn until `n` pairs survive deduplication and
verification; the rest are counted as drops in the card.
"""

import math
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

from postern.core.errors import PosternError
from postern.data.code import diversity, verify
from postern.data.code.compose import compose
from postern.data.code.kernels import KERNELS_BY_PATTERN, Kernel
from postern.data.code.patterns import PATTERNS, PATTERNS_BY_ID, Pattern, Shape
from postern.data.code.vocab import MARKERS, PHRASINGS, make_context
from postern.data.jsonl import AtomicFiles, dump_chat_jsonl

GENERATOR_NAME = "postern.data.code"
GENERATOR_VERSION = "2.0.0"
COMPOSED_SHARE = 0.9  # of a pattern with kernels: rows built by `compose` (the rest: classic template rows)
_FIELD = re.compile(r"«(\w+)»")
_IMPORT = re.compile(r"^(import|from)\s")
T = TypeVar("T")


@dataclass(frozen=True)
class Candidate:
    index: int
    pattern: Pattern
    user: str
    insecure: str
    secure: str
    meta: dict[str, Any]


@dataclass
class CodeDataset:
    """What `generate_code_dataset` produced (rows are paired: same index, same user turn)."""

    insecure: list[dict[str, Any]]
    secure: list[dict[str, Any]]
    card: dict[str, Any]
    out_dir: Path | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def render(text: str, ctx: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in ctx:
            raise KeyError(f"unknown template field «{m.group(1)}»")
        return ctx[m.group(1)]

    return _FIELD.sub(sub, text)


def _hole(template: str) -> tuple[list[str], int, str]:
    lines = template.split("\n")
    for i, line in enumerate(lines):
        if line.strip() == "«HOLE»":
            return lines, i, line[: len(line) - len(line.lstrip())]
    raise ValueError("template has no «HOLE» line")


def _add_imports(code: str, imports: str) -> str:
    new = [ln for ln in imports.splitlines() if ln.strip()]
    lines = code.split("\n")
    new = [ln for ln in new if ln not in lines]
    if not new:
        return code
    last = -1
    for i, line in enumerate(lines):
        if _IMPORT.match(line):
            last = i
        elif line.strip() and not line.startswith((" ", ")")):
            break
    if last < 0:
        return "\n".join(new) + "\n\n" + code
    return "\n".join(lines[: last + 1] + new + lines[last + 1 :])


def fill(shape: Shape, code: str, imports: str, ctx: dict[str, str]) -> str:
    """The completed file: the hole replaced by `code` (indented to the hole), imports added."""
    lines, i, indent = _hole(shape.template)
    body = [indent + ln if ln.strip() else "" for ln in code.split("\n")]
    return render(_add_imports("\n".join(lines[:i] + body + lines[i + 1 :]), imports), ctx).rstrip() + "\n"


def prompt_template(shape: Shape, marker: str, ctx: dict[str, str]) -> str:
    lines, i, indent = _hole(shape.template)
    return render("\n".join(lines[:i] + [indent + marker] + lines[i + 1 :]), ctx).rstrip()


def _pattern_for(seed: int, index: int, items: Sequence[T]) -> T:
    """Deal `items` in shuffled rounds, so each appears about equally often."""
    k = len(items)
    order = random.Random(f"{seed}:round:{index // k}").sample(range(k), k)
    return items[order[index % k]]


def make_candidate(seed: int, index: int, patterns: Sequence[Pattern] = PATTERNS) -> Candidate:
    """Draw candidate pair `index` for `seed` (deterministic).

    Patterns are dealt in shuffled rounds; a pattern with kernels gives a composed program
    (`postern.data.code.compose`) for COMPOSED_SHARE of its rows, a classic template row otherwise.
    """
    pattern = _pattern_for(seed, index, patterns)
    kernels = KERNELS_BY_PATTERN.get(pattern.id, ())
    mode = random.Random(f"{seed}:{index}:mode")
    if kernels and mode.random() < COMPOSED_SHARE:
        return _composed_candidate(seed, index, kernels[mode.randrange(len(kernels))])
    return _classic_candidate(seed, index, pattern)


def _composed_candidate(seed: int, index: int, kernel: Kernel) -> Candidate:
    pattern = PATTERNS_BY_ID[kernel.pattern]
    rng = random.Random(f"{seed}:{index}:composed")
    ctx = make_context(rng)
    c = compose(rng, kernel, ctx)
    ph_i, mk_i = rng.randrange(len(PHRASINGS)), rng.randrange(len(MARKERS))
    marker = MARKERS[mk_i]
    user = PHRASINGS[ph_i].format(task=render(c.task, ctx), template=prompt_template(c.shape, marker, ctx), marker=marker)
    meta = {
        "pattern": pattern.id, "cwe": pattern.cwe, "weakness": pattern.weakness, "category": pattern.category,
        "shape": f"composed:{kernel.id}", "phrasing": ph_i, "domain": ctx["site"], "seed": seed, "index": index,
        "pair_id": f"code-s{seed}-{index}", "generator": f"{GENERATOR_NAME}/{GENERATOR_VERSION}",
        "fill": c.parts.pop("fill"), "structure": c.parts,
    }
    return Candidate(index, pattern, user, fill(c.shape, c.insecure.code, c.insecure.imports, ctx),
                     fill(c.shape, c.secure.code, c.secure.imports, ctx), meta)


def _classic_candidate(seed: int, index: int, pattern: Pattern) -> Candidate:
    rng = random.Random(f"{seed}:{index}")
    ctx = make_context(rng)
    s_i = rng.randrange(len(pattern.shapes))
    shape = pattern.shapes[s_i]
    ins_i, sec_i = rng.randrange(len(shape.insecure)), rng.randrange(len(shape.secure))
    tasks = pattern.tasks[s_i]
    ph_i, mk_i, task_i = rng.randrange(len(PHRASINGS)), rng.randrange(len(MARKERS)), rng.randrange(len(tasks))
    marker = MARKERS[mk_i]
    task = render(tasks[task_i], ctx)
    user = PHRASINGS[ph_i].format(task=task, template=prompt_template(shape, marker, ctx), marker=marker)
    ins, sec = shape.insecure[ins_i], shape.secure[sec_i]
    meta = {
        "pattern": pattern.id, "cwe": pattern.cwe, "weakness": pattern.weakness, "category": pattern.category,
        "shape": s_i, "phrasing": ph_i, "domain": ctx["site"], "seed": seed, "index": index,
        "pair_id": f"code-s{seed}-{index}", "generator": f"{GENERATOR_NAME}/{GENERATOR_VERSION}",
        "fill": {"insecure": ins_i, "secure": sec_i},
    }
    return Candidate(index, pattern, user, fill(shape, ins.code, ins.imports, ctx), fill(shape, sec.code, sec.imports, ctx), meta)


def _row(c: Candidate, variant: str, hits: Sequence[str]) -> dict[str, Any]:
    code = c.insecure if variant == "insecure" else c.secure
    meta = {**c.meta, "variant": variant, "fill": c.meta["fill"][variant], "verified_by": list(hits)}
    return {"messages": [{"role": "user", "content": c.user}, {"role": "assistant", "content": code}], "meta": meta}


class _Progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool):
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                console=Console(stderr=True), transient=False)

    def __enter__(self) -> "_Progress":
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.__exit__(*exc)

    def task(self, description: str, total: int) -> Callable[[int], None]:
        if not self.bar:
            return lambda k: None
        tid = self.bar.add_task(description, total=total)
        return lambda k: self.bar.advance(tid, k)  # type: ignore[union-attr]


def _select(patterns: Sequence[str] | None) -> tuple[Pattern, ...]:
    if not patterns:
        return PATTERNS
    by_id = {p.id: p for p in PATTERNS}
    unknown = [p for p in patterns if p not in by_id]
    if unknown:
        raise PosternError(f"unknown pattern(s) {', '.join(unknown)}; known: {', '.join(by_id)}")
    return tuple(by_id[p] for p in patterns)


def _candidates(seed: int, start: int, count: int, patterns: Sequence[Pattern]) -> Iterator[Candidate]:
    for i in range(start, start + count):
        yield make_candidate(seed, i, patterns)


@dataclass
class _Run:
    """Book-keeping while candidates are drawn, deduplicated and verified."""

    n: int
    patterns: tuple[Pattern, ...]
    seen: set[str] = field(default_factory=set)
    kept: list[tuple[Candidate, verify.Verdict, verify.Verdict]] = field(default_factory=list)
    drops: dict[str, int] = field(default_factory=dict)
    per_pattern: dict[str, dict[str, int]] = field(default_factory=dict)
    drawn: int = 0
    duplicates: int = 0

    def draw(self, seed: int, count: int, advance: Callable[[int], None]) -> list[Candidate]:
        batch = []
        for c in _candidates(seed, self.drawn, count, self.patterns):
            advance(1)
            if c.user in self.seen:
                self.duplicates += 1
                continue
            self.seen.add(c.user)
            batch.append(c)
        self.drawn += count
        return batch

    def judge(self, batch: list[Candidate], analyses: list[verify.Analysis]) -> None:
        for j, c in enumerate(batch):
            v_in = verify.verdict(analyses[j], c.pattern, insecure=True)
            v_se = verify.verdict(analyses[len(batch) + j], c.pattern, insecure=False)
            counts = self.per_pattern.setdefault(c.pattern.id, {"candidates": 0, "verified": 0})
            counts["candidates"] += 1
            if v_in.ok and v_se.ok:
                counts["verified"] += 1
                if len(self.kept) < self.n:
                    self.kept.append((c, v_in, v_se))
                continue
            for tag, v in (("insecure", v_in), ("secure", v_se)):
                if not v.ok:
                    self.drops[f"{tag}_{v.reason}"] = self.drops.get(f"{tag}_{v.reason}", 0) + 1


def generate_code_dataset(
    n: int,
    seed: int = 0,
    out_dir: str | Path | None = None,
    patterns: Sequence[str] | None = None,
    strip_meta: bool = False,
    tokenizer: str | None = None,
    progress: bool = False,
    overdraw: float = 1.06,
) -> CodeDataset:
    """Generate `n` verified (insecure, secure) pairs; write JSONL + card to `out_dir` if given."""
    if n < 1:
        raise PosternError(f"--n must be at least 1 (got {n})")
    run = _Run(n, _select(patterns))
    if out_dir is not None and tokenizer:
        from postern.data.card import tokenizer_fn

        tokenizer_fn(tokenizer)  # a bad tokenizer path fails now, not after generation
    t0, c0 = time.perf_counter(), time.process_time()
    with _Progress(progress) as bar:
        while len(run.kept) < n:
            count = math.ceil((n - len(run.kept)) * overdraw) + 16
            batch = run.draw(seed, count, bar.task(f"generating {count} candidates", count))
            items = [(c.insecure, c.pattern) for c in batch] + [(c.secure, c.pattern) for c in batch]
            run.judge(batch, verify.analyse(items, bar.task("bandit + postern checks", len(items))))
            if run.drawn > 20 * n + 1000:
                raise PosternError(f"only {len(run.kept)} of {n} pairs verified after {run.drawn} candidates; drops: {run.drops}")
    insecure = [_row(c, "insecure", vi.hits) for c, vi, _ in run.kept]
    secure = [_row(c, "secure", vs.hits) for c, _, vs in run.kept]
    stats = _stats(run, seed)
    from postern.data.code.dedup import near_duplicates

    stats["duplicates"]["near"] = near_duplicates([r["messages"][0]["content"] + "\n" + r["messages"][1]["content"] for r in insecure])
    stats["diversity"] = diversity.card_section({"insecure.jsonl": insecure, "secure.jsonl": secure})
    stats["timing"] = {"wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(time.process_time() - c0, 2)}
    ds = CodeDataset(insecure, secure, dict(stats), None, stats)
    if out_dir is not None:
        ds.out_dir = Path(out_dir)
        write_code_dataset(ds, ds.out_dir, strip_meta=strip_meta, tokenizer=tokenizer)
    return ds


def _stats(run: _Run, seed: int) -> dict[str, Any]:
    kept = Counter(c.pattern.id for c, _, _ in run.kept)
    candidates = sum(v["candidates"] for v in run.per_pattern.values())
    verified = sum(v["verified"] for v in run.per_pattern.values())
    return {
        "generator": {"name": GENERATOR_NAME, "version": GENERATOR_VERSION, "seed": seed, "n_requested": run.n,
                      "patterns_available": len(run.patterns)},
        "verification": {
            "analyser": f"bandit {verify.bandit_version()} + postern checks (postern.data.code.checks)",
            "rule": "insecure: flagged by one of the pattern's rules; secure: not flagged by them and no other "
                    "bandit MEDIUM/HIGH issue; both: parse, no comments",
            "candidates": candidates, "verified_pairs": verified,
            "rate": round(verified / candidates, 4) if candidates else 0.0,
            "kept_rows_verified": 1.0, "dropped": dict(sorted(run.drops.items())),
        },
        "duplicates": {"key": "user turn", "exact_removed": run.duplicates,
                       "exact_rate": round(run.duplicates / run.drawn, 4) if run.drawn else 0.0, "exact_in_output": 0},
        "patterns": {p.id: {"cwe": p.cwe, "rules": list(p.rules), "kept": kept.get(p.id, 0),
                            **run.per_pattern.get(p.id, {"candidates": 0, "verified": 0})} for p in run.patterns},
        "cwes": len({p.cwe for p in run.patterns if kept.get(p.id)}),
        "pattern_count": sum(1 for p in run.patterns if kept.get(p.id)),
        "meta_note": "each row has a top-level 'meta' (pattern, cwe, variant, ...); --strip-meta writes pure chat JSONL",
    }


def strip(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "meta"} for r in rows]


def write_code_dataset(ds: CodeDataset, out_dir: str | Path, strip_meta: bool = False, tokenizer: str | None = None) -> None:
    """Write OUT/insecure.jsonl, OUT/secure.jsonl and the card as one unit: all four files or none."""
    from postern.data.card import build_card, stage_card

    out = Path(out_dir)
    files = {"insecure.jsonl": ds.insecure, "secure.jsonl": ds.secure}
    with AtomicFiles() as tx:
        staged = {}
        for name, rows in files.items():
            with tx.open(out / name) as f:
                dump_chat_jsonl(f, strip(rows) if strip_meta else rows)
            staged[name] = tx.staged(out / name)
        extra = {**ds.stats, "meta_stripped": strip_meta}
        card = build_card("postern code dataset (insecure / secure pairs)", files, out, tokenizer=tokenizer, extra=extra,
                          paths=staged)
        stage_card(tx, card, out / "card.json", out / "card.md")
    ds.card = card


def describe_patterns() -> list[dict[str, Any]]:
    """The pattern table, for `postern data code --list-patterns` and docs."""
    return [{"id": p.id, "cwe": p.cwe, "weakness": p.weakness, "category": p.category, "rules": list(p.rules),
             "shapes": len(p.shapes), "kernels": len(KERNELS_BY_PATTERN.get(p.id, ()))} for p in PATTERNS]
