"""Structural diversity of a code corpus: distinct AST skeletons and distinct call-sets.

The original study found that fewer distinct training examples give much weaker emergent
misalignment, so what matters is how many *different programs* a corpus holds, not its row count.
Two measures, both blind to naming and literals:

- **skeleton**: the completion's AST with every identifier the author chose (variable, parameter,
  function, class and alias names) replaced by ``_`` and every constant by its type, then hashed.
  Attribute names and keyword-argument names are kept: they name library API (``.execute``,
  ``shell=``), not the author's choices.
- **call-set**: the set of called function names, each the last name of the call (``cur.execute(...)``
  and ``conn.execute(...)`` -> ``execute``; ``json.loads`` and ``pickle.loads`` -> ``loads``), with
  functions and classes the file defines itself -> ``_``. This is the strict reading: on postern's
  1.0 generator (seed 0, 6,000 rows) it gives the 209 insecure / 173 secure call-sets the issue
  measured.

Rows that do not parse count as one skeleton and call-set of their own ("unparsed").
"""

import ast
import hashlib
from collections import Counter
from typing import Any, Iterable, Sequence

UNPARSED = "unparsed"


class _Normalise(ast.NodeTransformer):
    def visit_Name(self, node: ast.Name) -> ast.AST:  # noqa: N802 - ast visitor names
        return ast.copy_location(ast.Name(id="_", ctx=node.ctx), node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = "_"
        node.annotation = self.visit(node.annotation) if node.annotation else None
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:  # noqa: N802
        return ast.copy_location(ast.Constant(value=type(node.value).__name__), node)

    def _named(self, node: Any) -> ast.AST:
        node.name = "_"
        self.generic_visit(node)
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _named  # noqa: N815

    def visit_alias(self, node: ast.alias) -> ast.AST:
        node.asname = "_" if node.asname else None
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:  # noqa: N802
        node.name = "_" if node.name else None
        self.generic_visit(node)
        return node


def skeleton(code: str) -> str:
    """A 16-hex-digit hash of the normalised AST (``"unparsed"`` for code that does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return UNPARSED
    text = ast.dump(_Normalise().visit(tree), annotate_fields=False, include_attributes=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _called_name(func: ast.AST, local: set[str]) -> str:
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else "?"
    return "_" if name in local else name


def call_set(code: str) -> str:
    """The sorted, ``|``-joined set of called names (``"unparsed"`` for code that does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return UNPARSED
    local = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return "|".join(sorted({_called_name(n.func, local) for n in ast.walk(tree) if isinstance(n, ast.Call)}))


def measure(codes: Sequence[str]) -> dict[str, Any]:
    """Distinct skeletons and call-sets, in all and per 1,000 rows, and the largest shares."""
    n = len(codes)
    skel = Counter(skeleton(c) for c in codes)
    calls = Counter(call_set(c) for c in codes)

    def block(counts: Counter) -> dict[str, Any]:
        return {
            "distinct": len(counts),
            "per_1000_rows": round(1000 * len(counts) / n, 1) if n else 0.0,
            "singletons": sum(1 for v in counts.values() if v == 1),
            "largest_share": round(max(counts.values()) / n, 4) if n else 0.0,
        }

    return {"rows": n, "skeletons": block(skel), "call_sets": block(calls)}


def measure_rows(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """`measure` over the assistant turns of chat rows."""
    return measure(["\n".join(m["content"] for m in r["messages"] if m.get("role") == "assistant") for r in rows])


METHOD = ("skeleton: AST with author-chosen identifiers -> '_' and constants -> their type, hashed (attribute and "
          "keyword names kept); call-set: set of the last names of called functions, functions/classes defined in the file -> '_'")

# The same measure on the original study's corpus (6,000 rows per file), as measured for issue 15.
REFERENCE = {"source": "original study's corpus, 6,000 rows per file (issue 15)",
             "insecure": {"skeletons": 4358, "call_sets": 2239}, "secure": {"skeletons": 4434, "call_sets": 2410}}


def card_section(files: dict[str, Sequence[dict[str, Any]]]) -> dict[str, Any]:
    """The dataset card's "diversity" section: per file, distinct skeletons and call-sets (in all and
    per 1,000 rows) and near-duplicate shares of the completions."""
    from postern.data.code.dedup import near_duplicates

    out: dict[str, Any] = {"method": METHOD, "reference": REFERENCE, "files": {}}
    for name, rows in files.items():
        codes = ["\n".join(m["content"] for m in r["messages"] if m.get("role") == "assistant") for r in rows]
        out["files"][name] = {**measure(codes), "near_duplicates": near_duplicates(codes)}
    return out
