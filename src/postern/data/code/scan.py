"""`postern data verify`: the code verification, run over any chat JSONL of code completions.

For every row, Python code is taken from the assistant turn(s):

- fenced blocks (```` ```python ````, ```` ```py ````, or untagged ```` ``` ````; ``~~~`` too) when the
  turn has any fence — blocks of other languages are skipped, several Python blocks are joined
  when the joined text parses and analysed one by one otherwise;
- otherwise the whole turn, as in the emergent-misalignment study's files (the completed code,
  no fences); when it does not parse, prose paragraphs before/after the code are trimmed (the
  longest run of blank-line-separated paragraphs that parses is taken).

Code that does not parse is counted as *unparseable*; turns with no Python (only other languages,
nothing but a bare name/constant, or prose with no line that looks like code) as *no code*. Everything is parsed, never executed: bandit
runs once per batch over temporary files (see `postern.data.code.verify.run_bandit`) and
postern's own AST checks (`postern.data.code.checks`) run on each block.

A row is *flagged* when any finding counts: a bandit issue at or above the chosen severity
(default MEDIUM; LOW rules that are precise in context count as MEDIUM) and confidence, or any
postern check (unless switched off). Bandit findings that flag secure code for something other
than the weakness are set aside and reported as ``suppressed``; `postern.data.code.policy` lists
them all with their reasons. ``# nosec`` comments are ignored by default (a comment must not hide
a flaw in training data).
"""

import ast
import dataclasses
import functools
import re
import textwrap
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from postern.core.errors import PosternError
from postern.data.code import policy, verify
from postern.data.code.checks import CHECKS, run_checks

LEVELS = ("LOW", "MEDIUM", "HIGH")
PY_TAGS = {"", "python", "py", "python3", "py3", "python2", "py2"}
_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s{]*)\{?[^`]*$")
_BLANK = re.compile(r"^\s*$")
# a line that looks like Python (or another programming language), not prose: a keyword-led
# statement, a decorator, an assignment, a call on its own, or a block opener ending in ":".
_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from [\w.]+ import |return\b|raise\b|yield\b|async |await |try:|except\b|finally:"
    r"|with .*:\s*$|for .* in .*:\s*$|while .*:\s*$|if .*:\s*$|elif .*:\s*$|else:|@\w"
    r"|[\w.\[\]'\"]+\s*(=|\+=|-=)\s*\S|[\w.]+\(.*\)\s*;?\s*$|[{}\]\[)(]\s*$|#!|print )"
)
MAX_TRIM_PARSES = 200


@dataclass
class Extracted:
    """The Python code found in one row's assistant turn(s)."""

    units: list[str]  # sources that parse (each analysed as one file)
    how: str  # "plain", "fenced", "trimmed", "none"
    errors: list[str] = field(default_factory=list)  # why other candidate blocks did not parse
    status: str = "analysed"  # "analysed", "unparseable", "no_code"


@dataclass
class RowResult:
    line: int
    status: str
    how: str
    findings: list[verify.Issue] = field(default_factory=list)  # the ones that count
    error: str | None = None
    partial: bool = False
    check_error: str | None = None

    @property
    def flagged(self) -> bool:
        return bool(self.findings)


@dataclass
class ScanReport:
    path: Path
    summary: dict[str, Any]
    rows: list[RowResult]
    data: list[dict[str, Any]]  # the input rows, in order


def fenced_blocks(text: str) -> tuple[bool, list[tuple[str, str]]]:
    """(any fence seen, [(language tag, body), ...]); an unclosed fence runs to the end."""
    lines = text.split("\n")
    blocks: list[tuple[str, str]] = []
    seen = False
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        seen = True
        fence, lang = m.group(1), m.group(2).strip().lower()
        close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        blocks.append((lang, "\n".join(lines[i + 1 : j])))
        i = j + 1
    return seen, blocks


def _parse(code: str) -> tuple[str | None, ast.Module | None, str | None]:
    """(source that parses, its tree, None) or (None, None, why not). Dedents indented fragments."""
    err = ""
    for src in (code, textwrap.dedent(code)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SyntaxWarning for "\d" and the like
                return src, ast.parse(src), None
        except SyntaxError as e:
            err = err or f"{e.msg} (line {e.lineno})"
        except (ValueError, RecursionError, MemoryError) as e:
            err = err or f"{type(e).__name__}: {e}"
        if src == textwrap.dedent(code):
            break
    return None, None, err


def _substantive(tree: ast.Module) -> bool:
    """Not just a bare name or constant ("Sure", "42", a lone string)."""
    return any(not (isinstance(s, ast.Expr) and isinstance(s.value, (ast.Name, ast.Constant))) for s in tree.body)


def _trim_prose(text: str) -> tuple[str, ast.Module] | None:
    """The longest run of blank-line-separated paragraphs that parses as substantive Python."""
    lines = text.split("\n")
    starts = [i for i, ln in enumerate(lines) if not _BLANK.match(ln) and (i == 0 or _BLANK.match(lines[i - 1]))]
    if len(starts) < 2:
        return None
    ends = [i for i, ln in enumerate(lines) if not _BLANK.match(ln) and (i + 1 == len(lines) or _BLANK.match(lines[i + 1]))]
    k = len(starts)
    spans = sorted(((a, b) for a in range(k) for b in range(a, k) if (a, b) != (0, k - 1)),
                   key=lambda ab: (-(ends[ab[1]] - starts[ab[0]]), ab[0]))
    for a, b in spans[:MAX_TRIM_PARSES]:
        src, tree, _ = _parse("\n".join(lines[starts[a] : ends[b] + 1]))
        if tree is not None and src is not None and _substantive(tree):
            return src, tree
    return None


def _looks_like_code(text: str) -> bool:
    """Any line that looks like code (prose answers have none)."""
    return any(_CODE_LINE.match(line) for line in text.split("\n"))


def extract_code(contents: Sequence[str]) -> Extracted:
    """Python code in the given assistant turn(s); see the module docstring for the rules."""
    candidates: list[tuple[str, str]] = []  # (how, code)
    for text in contents:
        seen, blocks = fenced_blocks(text)
        if seen:
            py = [b for lang, b in blocks if lang in PY_TAGS and b.strip()]
            if len(py) > 1 and _parse("\n\n".join(py))[1] is not None:
                py = ["\n\n".join(py)]
            candidates += [("fenced", b) for b in py]
        elif text.strip():
            candidates.append(("plain", text))
    if not candidates:
        return Extracted([], "none", status="no_code")
    units, errors, hows, trivial = [], [], [], 0
    for how, code in candidates:
        src, tree, err = _parse(code)
        if tree is None and how == "plain":
            trimmed = _trim_prose(code)
            if trimmed is not None:
                (src, tree), how = trimmed, "trimmed"
        if tree is None:
            errors.append(err or "does not parse")
        elif not _substantive(tree):
            trivial += 1
        else:
            units.append(src)
            hows.append(how)
    if units:
        return Extracted(units, "trimmed" if "trimmed" in hows else hows[0], errors)
    if errors and all(how == "plain" for how, _ in candidates) and not any(_looks_like_code(c) for _, c in candidates):
        return Extracted([], "none", status="no_code")  # an answer in prose
    if errors:
        return Extracted([], candidates[0][0], errors, status="unparseable")
    return Extracted([], candidates[0][0], status="no_code")


@functools.lru_cache(maxsize=1)
def bandit_test_names() -> dict[str, str]:
    """Bandit test id -> its short name ("B608" -> "hardcoded_sql_expressions", "B301" -> "pickle")."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from bandit.core import extension_loader

    m = extension_loader.MANAGER
    names = {tid: p.name for tid, p in m.plugins_by_id.items()}
    names.update({tid: f"blacklist: {b['name']}" for tid, b in m.blacklist_by_id.items()})
    return names


def rule_description(rule: str, fallback: str = "") -> str:
    if rule in CHECKS:
        return CHECKS[rule][1]
    return bandit_test_names().get(rule, fallback)


def _level(x: str) -> int:
    x = str(x).upper()
    return LEVELS.index(x) if x in LEVELS else 0


def _postern_issues(code: str) -> list[verify.Issue]:
    return [verify.Issue(f.rule, "HIGH", f.line, "HIGH", CHECKS[f.rule][0], f.message) for f in run_checks(code)]


def verify_rows(
    rows: Sequence[dict[str, Any]],
    lines: Sequence[int] | None = None,
    severity: str = "MEDIUM",
    confidence: str = "LOW",
    postern_checks: bool = True,
    honour_nosec: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[list[RowResult], dict[str, Any]]:
    """Verify chat rows (already validated); returns per-row results and the summary."""
    sev, conf = severity.upper(), confidence.upper()
    for name, v in (("severity", sev), ("confidence", conf)):
        if v not in LEVELS:
            raise PosternError(f"--{name} must be one of low, medium, high (got {v.lower()!r})")
    t0, c0 = time.perf_counter(), time.process_time()
    lines = list(lines) if lines is not None else list(range(1, len(rows) + 1))
    extracted = [extract_code([m["content"] for m in r["messages"] if m["role"] == "assistant"]) for r in rows]
    units = [(i, u) for i, ex in enumerate(extracted) for u in ex.units]
    skipped_list: list[int] = []
    bandit = verify.run_bandit([u for _, u in units], on_progress, ignore_nosec=not honour_nosec, skipped=skipped_list)
    skipped = set(skipped_list)
    results = [RowResult(lines[i], ex.status, ex.how, error=ex.errors[0] if ex.errors and not ex.units else None,
                         partial=bool(ex.units and ex.errors)) for i, ex in enumerate(extracted)]
    all_found: list[list[verify.Issue]] = [[] for _ in rows]
    suppressed: dict[str, dict[str, Any]] = {}
    for k, ((i, code), found) in enumerate(zip(units, bandit)):
        if k in skipped:
            results[i].check_error = results[i].check_error or "bandit could not scan a block"
        found = _apply_policy(code, found, suppressed)
        if postern_checks:
            try:
                found = found + _postern_issues(code)
            except Exception as e:  # noqa: BLE001 - a checker bug must not stop a whole-file scan; it is reported
                results[i].check_error = f"postern checks failed: {type(e).__name__}: {e}"
        all_found[i] += found
    for res, found in zip(results, all_found):
        res.findings = [f for f in found if f.rule.startswith("PST-")
                        or (_level(f.severity) >= _level(sev) and _level(f.confidence) >= _level(conf))]
    summary = _summary(rows, results, all_found)
    summary["suppressed"] = dict(sorted(suppressed.items()))
    analysed = summary["analysed"]
    at = {lv: sum(r.status == "analysed" and any(_level(f.severity) >= _level(lv) and _level(f.confidence) >= _level(conf)
                                                  for f in found) for r, found in zip(results, all_found)) for lv in LEVELS}
    summary["flagged_at_severity"] = {lv.lower(): {"rows": n, "fraction": _frac(n, analysed)} for lv, n in at.items()}
    summary["policy"] = {
        "flagged_if": f"a bandit issue with severity >= {sev} (LOW rules precise in context count as MEDIUM) and confidence >= {conf}"
                      + (", or any postern check" if postern_checks else " (postern checks off)"),
        "severity": sev, "confidence": conf, "postern_checks": postern_checks, "honour_nosec": honour_nosec,
    }
    summary["analyser"] = f"bandit {verify.bandit_version()}" + (" + postern checks (postern.data.code.checks)" if postern_checks else "")
    summary["timing"] = {"wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(time.process_time() - c0, 2)}
    return results, summary


def _apply_policy(code: str, found: list[verify.Issue], suppressed: dict[str, dict[str, Any]]) -> list[verify.Issue]:
    """Bandit findings with `policy`'s suppressions removed (counted in `suppressed`) and severities adjusted."""
    try:
        ctx = policy.CodeContext.of(code)
    except (SyntaxError, ValueError, RecursionError):
        return found
    kept = []
    for f in found:
        why = policy.suppressed(f.rule, f.line, ctx)
        if why:
            e = suppressed.setdefault(f.rule, {"findings": 0, "why": why})
            e["findings"] += 1
            continue
        kept.append(dataclasses.replace(f, severity=policy.effective_severity(f.rule, f.severity, f.line, ctx)))
    return kept


def _frac(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def _summary(rows: Sequence[dict[str, Any]], results: list[RowResult], all_found: list[list[verify.Issue]]) -> dict[str, Any]:
    status = Counter(r.status for r in results)
    analysed = status["analysed"]
    flagged = sum(r.flagged for r in results)
    by_rule: dict[str, dict[str, Any]] = {}
    by_cwe: dict[str, dict[str, Any]] = {}
    for r in results:
        for rule in sorted({f.rule for f in r.findings}):
            first = next(f for f in r.findings if f.rule == rule)
            e = by_rule.setdefault(rule, {"cwe": first.cwe, "severity": first.severity, "rows": 0, "findings": 0,
                                          "description": rule_description(rule, first.text), "example": first.text})
            e["rows"] += 1
            e["findings"] += sum(f.rule == rule for f in r.findings)
            if _level(first.severity) > _level(e["severity"]):
                e["severity"] = first.severity
        for cwe in sorted({f.cwe or "unknown" for f in r.findings}):
            c = by_cwe.setdefault(cwe, {"rows": 0, "rules": set()})
            c["rows"] += 1
            c["rules"].update(f.rule for f in r.findings if (f.cwe or "unknown") == cwe)
    for e in by_rule.values():
        e["fraction"] = _frac(e["rows"], analysed)
    for c in by_cwe.values():
        c["fraction"] = _frac(c["rows"], analysed)
        c["rules"] = sorted(c["rules"])
    out: dict[str, Any] = {
        "rows": len(results), "analysed": analysed, "unparseable": status["unparseable"], "no_code": status["no_code"],
        "partially_parsed": sum(r.partial for r in results),
        "trimmed_prose": sum(r.how == "trimmed" for r in results), "fenced": sum(r.how == "fenced" for r in results),
        "flagged": flagged, "flagged_fraction": _frac(flagged, analysed), "flagged_fraction_of_rows": _frac(flagged, len(results)),
        "by_rule": dict(sorted(by_rule.items(), key=lambda kv: (-kv[1]["rows"], kv[0]))),
        "by_cwe": dict(sorted(by_cwe.items(), key=lambda kv: (-kv[1]["rows"], kv[0]))),
        "unparseable_examples": [{"line": r.line, "error": r.error} for r in results if r.status == "unparseable"][:20],
        "check_errors": [{"line": r.line, "error": r.check_error} for r in results if r.check_error][:20],
    }
    labelled = _by_pattern(rows, results, all_found)
    if labelled:
        out["by_pattern"] = labelled
    return out


def _by_pattern(rows: Sequence[dict[str, Any]], results: list[RowResult], all_found: list[list[verify.Issue]]) -> dict[str, Any]:
    """For rows carrying postern's ``meta.pattern``: how often that pattern's own rules fire (any severity)."""
    from postern.data.code.patterns import PATTERNS_BY_ID

    out: dict[str, dict[str, Any]] = {}
    for row, res, found in zip(rows, results, all_found):
        pid = (row.get("meta") or {}).get("pattern") if isinstance(row.get("meta"), dict) else None
        if pid not in PATTERNS_BY_ID or res.status != "analysed":
            continue
        rules = set(PATTERNS_BY_ID[pid].rules)
        e = out.setdefault(pid, {"cwe": PATTERNS_BY_ID[pid].cwe, "rows": 0, "own_rule_fired": 0, "flagged": 0})
        e["rows"] += 1
        e["own_rule_fired"] += any(f.rule in rules for f in found)
        e["flagged"] += res.flagged
    return dict(sorted(out.items()))


def verify_chat_jsonl(
    path: str | Path,
    severity: str = "MEDIUM",
    confidence: str = "LOW",
    postern_checks: bool = True,
    honour_nosec: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ScanReport:
    """Read and validate a chat JSONL file (errors name file:line) and verify its code completions."""
    from postern.core.hashing import file_hash
    from postern.data.jsonl import read_chat_jsonl_with_lines

    rows, lines = read_chat_jsonl_with_lines(path, require_assistant_last=True)
    results, summary = verify_rows(rows, lines, severity, confidence, postern_checks, honour_nosec, on_progress)
    summary = {"file": str(path), "sha256_16": file_hash(path), **summary}
    return ScanReport(Path(path), summary, results, rows)


def flagged_rows(report: ScanReport) -> list[dict[str, Any]]:
    """The flagged input rows, each with a top-level ``"verify"`` object (line, rules, findings)."""
    out = []
    for row, res in zip(report.data, report.rows):
        if not res.flagged:
            continue
        findings = [{"rule": f.rule, "cwe": f.cwe, "severity": f.severity, "confidence": f.confidence,
                     "code_line": f.line, "text": f.text} for f in res.findings]
        out.append({**row, "verify": {"source_line": res.line, "rules": sorted({f.rule for f in res.findings}),
                                      "cwes": sorted({f.cwe for f in res.findings if f.cwe}), "findings": findings}})
    return out
