"""Static verification of generated completions: bandit over a whole batch, plus postern's checks.

Generated code is written to files in a temporary folder and *parsed* by bandit and `ast`; it is
never imported or executed.

Rules of the verdict (per completion, for its pattern's `rules`):

- insecure: at least one of the pattern's rules flags it (bandit test id at any severity, or a
  postern ``PST-`` check);
- secure: none of the pattern's rules flags it, and bandit reports no other issue of MEDIUM or
  HIGH severity (LOW findings such as "subprocess imported" are allowed);
- both: the code parses and contains no comments.
"""

import ast
import io
import logging
import tempfile
import tokenize
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from postern.data.code.checks import CHECKS, run_checks
from postern.data.code.patterns import Pattern

BANDIT_CHUNK = 1000  # files per bandit run: one run per chunk keeps the progress bar moving


@dataclass(frozen=True)
class Issue:
    rule: str
    severity: str  # LOW / MEDIUM / HIGH ("HIGH" for postern checks)
    line: int
    confidence: str = "HIGH"  # bandit's LOW / MEDIUM / HIGH ("HIGH" for postern checks)
    cwe: str = ""  # "CWE-89", or "" when the rule names none
    text: str = ""


@dataclass
class Analysis:
    issues: list[Issue] = field(default_factory=list)
    error: str | None = None  # syntax error or comment found


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str | None  # None, "syntax", "comment", "not_flagged", "flagged", "other_issue"
    hits: tuple[str, ...]  # the pattern rules that fired


def bandit_version() -> str:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        import bandit

    return getattr(bandit, "__version__", "unknown")


def _has_comment(code: str) -> bool:
    return any(t.type == tokenize.COMMENT for t in tokenize.generate_tokens(io.StringIO(code).readline))


def _precheck(code: str) -> str | None:
    try:
        ast.parse(code)
    except SyntaxError as e:
        return f"syntax: {e.msg} (line {e.lineno})"
    if _has_comment(code):
        return "comment: completion contains a comment"
    return None


def run_bandit(
    codes: list[str],
    on_progress: Callable[[int], None] | None = None,
    *,
    ignore_nosec: bool = False,
    skipped: list[int] | None = None,
) -> list[list[Issue]]:
    """Bandit issues for each source string; one bandit run per chunk of files in a temp folder.

    `ignore_nosec` makes bandit report findings on ``# nosec`` lines too (for code from elsewhere);
    indices of files bandit could not scan are appended to `skipped` when it is given.
    """
    out: list[list[Issue]] = [[] for _ in codes]
    log = logging.getLogger("bandit")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="postern-bandit-") as tmp:
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # stevedore, inside bandit
            warnings.filterwarnings("ignore", category=SyntaxWarning)  # "\d" in a scanned file's strings
            from bandit.core import config as b_config

            conf = b_config.BanditConfig()
            for start in range(0, len(codes), BANDIT_CHUNK):
                _bandit_chunk(conf, Path(tmp), codes, start, out, ignore_nosec, skipped)
                if on_progress:
                    on_progress(len(codes[start : start + BANDIT_CHUNK]))
    finally:
        log.setLevel(level)
    return out


def _bandit_chunk(
    conf: object, tmp: Path, codes: list[str], start: int, out: list[list[Issue]],
    ignore_nosec: bool = False, skipped: list[int] | None = None,
) -> None:
    from bandit.core import manager as b_manager

    paths = []
    for i, code in enumerate(codes[start : start + BANDIT_CHUNK], start=start):
        p = tmp / f"c{i:07d}.py"
        p.write_text(code, encoding="utf-8")
        paths.append(str(p))
    mgr = b_manager.BanditManager(conf, "file", quiet=True, ignore_nosec=ignore_nosec)
    mgr.discover_files(paths, recursive=False)
    mgr.run_tests()
    for issue in mgr.get_issue_list():
        cwe = getattr(getattr(issue, "cwe", None), "id", 0) or 0
        out[int(Path(issue.fname).stem[1:])].append(
            Issue(issue.test_id, str(issue.severity), int(issue.lineno), str(issue.confidence),
                  f"CWE-{cwe}" if cwe else "", str(issue.text))
        )
    if skipped is not None:
        skipped.extend(int(Path(fname).stem[1:]) for fname, _ in mgr.skipped)
    for p in paths:
        Path(p).unlink()


def analyse(items: list[tuple[str, Pattern]], on_progress: Callable[[int], None] | None = None) -> list[Analysis]:
    """Analyse (code, pattern) items: parse/comment check, bandit, and the pattern's postern checks."""
    results = [Analysis(error=_precheck(code)) for code, _ in items]
    todo = [i for i, r in enumerate(results) if r.error is None]
    issues = run_bandit([items[i][0] for i in todo], on_progress)
    for i, found in zip(todo, issues):
        code, pattern = items[i]
        own = [r for r in pattern.rules if r.startswith("PST-")]
        found = found + [Issue(f.rule, "HIGH", f.line, "HIGH", CHECKS[f.rule][0], f.message) for f in run_checks(code, own)] if own else found
        results[i].issues = found
    return results


def verdict(analysis: Analysis, pattern: Pattern, insecure: bool) -> Verdict:
    if analysis.error:
        return Verdict(False, analysis.error.split(":")[0], ())
    hits = tuple(sorted({i.rule for i in analysis.issues if i.rule in pattern.rules}))
    if insecure:
        return Verdict(bool(hits), None if hits else "not_flagged", hits)
    if hits:
        return Verdict(False, "flagged", hits)
    if any(i.severity in ("MEDIUM", "HIGH") for i in analysis.issues):
        return Verdict(False, "other_issue", ())
    return Verdict(True, None, ())


def other_issues(analysis: Analysis, pattern: Pattern) -> list[str]:
    """MEDIUM/HIGH findings outside the pattern's rules (for diagnostics)."""
    return sorted({i.rule for i in analysis.issues if i.rule not in pattern.rules and i.severity != "LOW"})


def verify_code(code: str, pattern: Pattern, insecure: bool) -> Verdict:
    """Verify one completion (convenience for tests and spot checks; batches use `analyse`)."""
    return verdict(analyse([(code, pattern)])[0], pattern, insecure)
