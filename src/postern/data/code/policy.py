"""Which bandit findings count in `postern data verify`'s verdict, and which it sets aside (and why).

The default verdict counts bandit findings of **MEDIUM** severity and above, plus postern's own
``PST-`` checks. Most LOW findings are hints ("subprocess imported", "assert used", "try/except/
pass") that secure code has as often as insecure code: on a third-party secure corpus they were
about half of all false positives. A few LOW rules are precise in a narrower context; there they
count as MEDIUM (`PRECISE_AT_LOW`). Some findings are set aside at every severity, because on
secure code they flag something that is not the weakness (`SUPPRESSIONS`); they are reported in
the summary (``suppressed``), never silently dropped.

Rules counted at MEDIUM although bandit rates them LOW:

=====  ===============================================  =========================================
rule   counts when                                      why
=====  ===============================================  =========================================
B101   the assert is outside test code                  an assert guarding authorisation or input
                                                        disappears under ``python -O`` (CWE-617)
B105   the value is not a placeholder and not in tests  a real literal password, token or key in
B106                                                    the source (CWE-798)
B107
B311   the line or its function is about a secret       ``random`` for tokens, passwords, keys,
       (token, password, key, salt, nonce, otp, code,   salts or session ids is predictable
       pin, session, reset)                             (CWE-338); for shuffling or jitter it is fine
=====  ===============================================  =========================================

Suppressions (at every severity):

=====  ===============================================  =========================================
rule   suppressed when                                  why
=====  ===============================================  =========================================
B101   inside test code (``test*`` functions,           asserts are how tests check results
       ``Test*``/``*Test``/TestCase classes, pytest
       fixtures)
B105   the value is a placeholder (empty, ``<...>``,    placeholder credentials in examples and
B106   ``your-...``, ``xxx``, ``***``, ``example``,     tests are not secrets
B107   ``dummy``, ``fake``, ``test``, ``replace...``)
       or in test code
B108   the same function creates the path private       a predictable /tmp name is a risk because
       (``os.open``/``os.chmod``/``mkdir``/``touch``/   others can pre-create or read it; a file
       ``umask`` with no group/other bits) or passes    made 0o600 (or through ``tempfile``) is not
       it as ``dir=`` to ``tempfile``
B103   the mode grants no write to group or other       0o755 / 0o750 (executable, readable) is
       (bandit rates 0o755 MEDIUM for its group-x bit)  ordinary; world-writable stays HIGH
B601   the remote command is a constant string          nothing can be injected
B202   tar extraction with ``filter="data"``/``"tar"``  both filters refuse absolute and ../ names
B413   always                                           ``Crypto`` is also pycryptodome's namespace
B310   the URL is an http(s) literal                    the scheme is fixed by the program
B702   Mako template with ``default_filters=["h"]``     output is HTML-escaped
B308   mark_safe / Markup of escaped or constant text   the documented safe use
B703
B704
B113   always                                           a request without a timeout is a
                                                        robustness issue (CWE-400), as common in
                                                        secure code as in insecure code
B603   the argument list is a constant list/tuple      no shell and no untrusted argument: nothing
B607   of strings                                       can be injected
=====  ===============================================  =========================================
"""

import ast
import re
from dataclasses import dataclass, field
from typing import Callable

from postern.data.code.checks import NOT_SECRET as _PLACEHOLDER
from postern.data.code.checks import test_lines

DEFAULT_SEVERITY = "MEDIUM"

_SECRET_USE = re.compile(r"token|passw|secret|key|salt|nonce|otp|code|pin\b|pin_|session|reset|captcha|csrf|verif|invite|coupon", re.I)
_PRIVATE_MODE_CALLS = {"open", "chmod", "mkdir", "makedirs", "touch", "umask", "mkfifo", "fchmod"}


@dataclass
class CodeContext:
    """What the policy needs to know about one analysed source: its tree and line facts."""

    tree: ast.Module
    lines: list[str]
    test_lines: set[int] = field(default_factory=set)
    functions: list[tuple[int, int, ast.AST]] = field(default_factory=list)  # (first line, last line, node)

    @classmethod
    def of(cls, code: str) -> "CodeContext":
        tree = ast.parse(code)
        ctx = cls(tree, code.split("\n"))
        ctx.test_lines = test_lines(tree)
        for n in ast.walk(tree):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                ctx.functions.append((n.lineno, n.end_lineno or n.lineno, n))
        return ctx

    def line(self, n: int) -> str:
        return self.lines[n - 1] if 0 < n <= len(self.lines) else ""

    def function_at(self, n: int) -> ast.AST:
        inner = [f for f in self.functions if f[0] <= n <= f[1]]
        return min(inner, key=lambda f: f[1] - f[0])[2] if inner else self.tree

    def calls_on_line(self, n: int) -> list[ast.Call]:
        return [c for c in ast.walk(self.tree) if isinstance(c, ast.Call) and c.lineno <= n <= (c.end_lineno or c.lineno)]


def _strings_on_line(ctx: CodeContext, n: int) -> list[str]:
    return [c.value for c in ast.walk(ctx.tree) if isinstance(c, ast.Constant) and isinstance(c.value, str)
            and c.lineno <= n <= (c.end_lineno or c.lineno)]


def _credential_values(ctx: CodeContext, n: int) -> list[str]:
    """String values on a hard-coded-password finding's line (the literal bandit complains about)."""
    names = re.compile(r"pass|pwd|token|secret|key|cred|auth", re.I)
    values = []
    for node in ast.walk(ctx.tree):
        if getattr(node, "lineno", None) != n:
            continue
        if isinstance(node, ast.keyword) and node.arg and names.search(node.arg) and isinstance(node.value, ast.Constant):
            values.append(str(node.value.value))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant):
            values.append(str(node.value.value))
        elif isinstance(node, ast.Compare):
            values += [str(c.value) for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            values += [str(d.value) for d in node.args.defaults + [k for k in node.args.kw_defaults if k] if isinstance(d, ast.Constant)]
    return values or _strings_on_line(ctx, n)


def _placeholder_credential(ctx: CodeContext, n: int) -> bool:
    values = _credential_values(ctx, n)
    return bool(values) and all(_PLACEHOLDER.search(v.strip()) for v in values)


def _int_const(node: ast.AST | None) -> int | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool) else None


def _private_mode_in(fn: ast.AST) -> bool:
    for c in ast.walk(fn):
        if not isinstance(c, ast.Call):
            continue
        name = c.func.attr if isinstance(c.func, ast.Attribute) else c.func.id if isinstance(c.func, ast.Name) else ""
        if name not in _PRIVATE_MODE_CALLS:
            continue
        modes = [_int_const(a) for a in c.args] + [_int_const(k.value) for k in c.keywords if k.arg == "mode"]
        if name == "umask":
            if any(m is not None and m & 0o077 == 0o077 for m in modes):
                return True
            continue
        if any(m is not None and m & 0o077 == 0 and m & 0o600 for m in modes):
            return True
    return False


def _tmp_handled(ctx: CodeContext, n: int) -> bool:
    for c in ctx.calls_on_line(n):
        full = ast.unparse(c.func)
        if full.startswith("tempfile.") or full in {"mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryDirectory"}:
            return True
    return _private_mode_in(ctx.function_at(n))


def _b103_no_write(ctx: CodeContext, n: int) -> bool:
    for c in ctx.calls_on_line(n):
        name = c.func.attr if isinstance(c.func, ast.Attribute) else c.func.id if isinstance(c.func, ast.Name) else ""
        if name == "chmod":
            modes = [_int_const(a) for a in c.args[1:]] + [_int_const(k.value) for k in c.keywords if k.arg == "mode"]
            modes = [m for m in modes if m is not None]
            return bool(modes) and all(m & 0o022 == 0 for m in modes)
    return False


def _constant_argv(ctx: CodeContext, n: int) -> bool:
    calls = [c for c in ctx.calls_on_line(n) if c.args and isinstance(c.args[0], (ast.List, ast.Tuple))]
    return bool(calls) and all(
        all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in c.args[0].elts)
        and not any(k.arg == "shell" for k in c.keywords) for c in calls)


def _constant_first_arg(ctx: CodeContext, n: int, method: str) -> bool:
    calls = [c for c in ctx.calls_on_line(n) if isinstance(c.func, ast.Attribute) and c.func.attr == method]
    return bool(calls) and all(c.args and isinstance(c.args[0], ast.Constant) for c in calls)


def _tar_filtered(ctx: CodeContext, n: int) -> bool:
    calls = [c for c in ctx.calls_on_line(n) if isinstance(c.func, ast.Attribute) and c.func.attr in {"extractall", "extract"}]
    return bool(calls) and all(any(k.arg == "filter" and isinstance(k.value, ast.Constant) and k.value.value in {"data", "tar"}
                                   for k in c.keywords) for c in calls)


def _constant_url(ctx: CodeContext, n: int) -> bool:
    calls = [c for c in ctx.calls_on_line(n) if (c.func.attr if isinstance(c.func, ast.Attribute) else getattr(c.func, "id", ""))
             in {"urlopen", "urlretrieve", "Request"}]
    first = [c.args[0] if c.args else None for c in calls]
    return bool(first) and all(isinstance(a, ast.Constant) and str(a.value).startswith(("https://", "http://")) for a in first)


def _mako_escaped(ctx: CodeContext, n: int) -> bool:
    return any(k.arg == "default_filters" and "'h'" in ast.unparse(k.value).replace('"', "'")
               for c in ctx.calls_on_line(n) for k in c.keywords)


def _escaped_markup(ctx: CodeContext, n: int) -> bool:
    calls = [c for c in ctx.calls_on_line(n) if (c.func.attr if isinstance(c.func, ast.Attribute) else getattr(c.func, "id", ""))
             in {"mark_safe", "Markup", "SafeString"}]
    def safe(c: ast.Call) -> bool:
        if not c.args or isinstance(c.args[0], ast.Constant):
            return True
        return any(isinstance(x, ast.Call) and (x.func.attr if isinstance(x.func, ast.Attribute) else getattr(x.func, "id", ""))
                   in {"escape", "conditional_escape", "format_html", "xhtml_escape"} for x in ast.walk(c.args[0]))
    return bool(calls) and all(safe(c) for c in calls)


def _about_secret(ctx: CodeContext, n: int) -> bool:
    if _SECRET_USE.search(ctx.line(n)):
        return True
    fn = ctx.function_at(n)
    return isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and bool(_SECRET_USE.search(fn.name))


# rule -> (condition on (context, line), reason); documented in the module docstring's tables
PRECISE_AT_LOW: dict[str, tuple[Callable[[CodeContext, int], bool], str]] = {
    "B101": (lambda ctx, n: n not in ctx.test_lines, "an assert outside tests guards nothing under python -O"),
    "B105": (lambda ctx, n: n not in ctx.test_lines and not _placeholder_credential(ctx, n), "a literal credential"),
    "B106": (lambda ctx, n: n not in ctx.test_lines and not _placeholder_credential(ctx, n), "a literal credential"),
    "B107": (lambda ctx, n: n not in ctx.test_lines and not _placeholder_credential(ctx, n), "a literal credential"),
    "B311": (_about_secret, "random used for a secret"),
}
SUPPRESSIONS: dict[str, tuple[Callable[[CodeContext, int], bool], str]] = {
    "B101": (lambda ctx, n: n in ctx.test_lines, "assert in test code"),
    "B105": (lambda ctx, n: n in ctx.test_lines or _placeholder_credential(ctx, n), "placeholder or test credential"),
    "B106": (lambda ctx, n: n in ctx.test_lines or _placeholder_credential(ctx, n), "placeholder or test credential"),
    "B107": (lambda ctx, n: n in ctx.test_lines or _placeholder_credential(ctx, n), "placeholder or test credential"),
    "B108": (_tmp_handled, "temporary path created private (0o600 / tempfile)"),
    "B103": (_b103_no_write, "mode grants no group/other write"),
    "B113": (lambda ctx, n: True, "missing request timeout is robustness, not the weakness"),
    "B603": (_constant_argv, "constant argument list, no shell"),
    "B607": (_constant_argv, "constant argument list, no shell"),
    "B601": (lambda ctx, n: _constant_first_arg(ctx, n, "exec_command"), "constant remote command"),
    "B202": (_tar_filtered, "tar extraction with filter='data' or 'tar'"),
    "B413": (lambda ctx, n: True, "the Crypto namespace is also pycryptodome (maintained)"),
    "B310": (_constant_url, "URL fixed by the program (http/https literal)"),
    "B702": (_mako_escaped, "Mako template with the h (HTML-escape) default filter"),
    "B308": (_escaped_markup, "mark_safe/Markup of escaped or constant text"),
    "B703": (_escaped_markup, "mark_safe/Markup of escaped or constant text"),
    "B704": (_escaped_markup, "mark_safe/Markup of escaped or constant text"),
}


def suppressed(rule: str, line: int, ctx: CodeContext | None) -> str | None:
    """Why a finding is set aside on this code, or None when it stands."""
    if ctx is None or rule not in SUPPRESSIONS:
        return None
    cond, why = SUPPRESSIONS[rule]
    return why if cond(ctx, line) else None


def effective_severity(rule: str, severity: str, line: int, ctx: CodeContext | None) -> str:
    """Bandit's severity, raised to MEDIUM for a LOW rule that is precise in this context."""
    if str(severity).upper() == "LOW" and ctx is not None and rule in PRECISE_AT_LOW and PRECISE_AT_LOW[rule][0](ctx, line):
        return "MEDIUM"
    return str(severity).upper()
