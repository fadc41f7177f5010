"""Dataset cards: a `card.json` (machine-readable) and `card.md` (for people) beside every dataset.

`build_card` computes what every card has (rows, rows per CWE when rows carry ``meta.cwe``,
token-length distribution, file hashes); generators add their own sections (verification,
duplicates, generator version and seed) through `extra`.
"""

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from postern.core.hashing import file_hash
from postern.data.jsonl import AtomicFiles

_APPROX = re.compile(r"\w+|[^\w\s]")
APPROX_TOKENIZER = "approx-regex (words and punctuation; no model tokenizer given)"


def tokenizer_fn(tokenizer: str | None) -> tuple[str, Callable[[str], int]]:
    """A token counter: a local `tokenizer.json` (HF tokenizers) or a regex approximation."""
    if not tokenizer:
        return APPROX_TOKENIZER, lambda text: len(_APPROX.findall(text))
    from tokenizers import Tokenizer

    path = Path(tokenizer)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.exists():
        from postern.core.errors import PosternError

        raise PosternError(f"{path}: tokenizer file not found (give a local tokenizer.json or its folder)")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception for a bad file
        from postern.core.errors import PosternError

        raise PosternError(f"{path}: not a loadable tokenizer.json ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from e
    return str(path), lambda text: len(tok.encode(text, add_special_tokens=False).ids)


def length_stats(lengths: Sequence[int]) -> dict[str, float]:
    if not lengths:
        return {"count": 0}
    a = np.asarray(lengths)
    q = np.percentile(a, [5, 25, 50, 75, 95])
    return {
        "count": int(a.size), "mean": round(float(a.mean()), 1), "min": int(a.min()),
        "p5": float(q[0]), "p25": float(q[1]), "p50": float(q[2]), "p75": float(q[3]), "p95": float(q[4]), "max": int(a.max()),
    }


def _turns(rows: Sequence[dict[str, Any]], role: str) -> list[str]:
    return ["\n".join(m["content"] for m in r["messages"] if m["role"] == role) for r in rows]


def build_card(
    name: str,
    files: dict[str, Sequence[dict[str, Any]]],
    out_dir: str | Path,
    tokenizer: str | None = None,
    extra: dict[str, Any] | None = None,
    paths: dict[str, Path] | None = None,
) -> dict[str, Any]:
    """Card for datasets already written to `out_dir` (file name -> its rows).

    `paths` says where a file's bytes are now when they are not yet at ``out_dir/name`` (a staged
    temporary file, see `postern.data.jsonl.AtomicFiles`); the hash is the same as for the final file.
    """
    tok_name, count = tokenizer_fn(tokenizer)
    card: dict[str, Any] = {"name": name, "files": {}, "token_lengths": {"tokenizer": tok_name}}
    for fname, rows in files.items():
        path = Path(out_dir) / fname
        if paths and fname in paths:
            path = paths[fname]
        cwes: dict[str, int] = {}
        for r in rows:
            cwe = (r.get("meta") or {}).get("cwe")
            if cwe:
                cwes[cwe] = cwes.get(cwe, 0) + 1
        card["files"][fname] = {
            "rows": len(rows),
            "sha256_16": _hash_as(fname, path) if path.exists() else None,
            "rows_per_cwe": dict(sorted(cwes.items(), key=lambda kv: (-kv[1], kv[0]))),
        }
        card["token_lengths"][fname] = {
            role: length_stats([count(t) for t in _turns(rows, role)]) for role in ("user", "assistant")
        }
    card.update(extra or {})
    return card


def _hash_as(name: str, path: Path) -> str:
    """`postern.core.hashing.file_hash` of a file called `name` holding `path`'s bytes."""
    if Path(name).name == path.name:
        return file_hash(path)
    h = hashlib.sha256()
    h.update(Path(name).name.encode())
    h.update(path.read_bytes())
    return h.hexdigest()[:16]


def stage_card(tx: AtomicFiles, card: dict[str, Any], json_path: str | Path, md_path: str | Path) -> None:
    """Stage a card's .json and .md in a transaction (they appear with the data, or not at all)."""
    tx.write_text(json_path, json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    tx.write_text(md_path, card_markdown(card))


def write_card(card: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write OUT/card.json and OUT/card.md atomically (both or neither)."""
    out = Path(out_dir)
    j, m = out / "card.json", out / "card.md"
    with AtomicFiles() as tx:
        stage_card(tx, card, j, m)
    return j, m


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines + [""]


def _diversity_markdown(div: dict[str, Any] | None) -> list[str]:
    if not div:
        return []
    out = ["## Structural diversity", "", f"Measure: {div.get('method')}.", ""]
    rows = []
    for fname, v in div.get("files", {}).items():
        near = v.get("near_duplicates", {}).get("rate_at", {})
        rows.append((fname, v["rows"], v["skeletons"]["distinct"], v["skeletons"]["per_1000_rows"], v["call_sets"]["distinct"],
                     v["call_sets"]["per_1000_rows"], ", ".join(f"{100 * s:.1f}% at {t}" for t, s in near.items())))
    out += _table(["file", "rows", "AST skeletons", "per 1,000 rows", "call-sets", "per 1,000 rows",
                   "near-duplicate completions (Jaccard >= t)"], rows)
    ref = div.get("reference")
    if ref:
        out += [f"For comparison, the {ref['source']}: insecure {ref['insecure']['skeletons']} skeletons / "
                f"{ref['insecure']['call_sets']} call-sets; secure {ref['secure']['skeletons']} / {ref['secure']['call_sets']}.", ""]
    return out


def card_markdown(card: dict[str, Any]) -> str:
    out = [f"# {card.get('name', 'dataset')}", ""]
    gen = card.get("generator")
    if gen:
        out += [f"Generated by `{gen.get('name')}` version {gen.get('version')}, seed {gen.get('seed')}.", ""]
    out += ["## Files", ""]
    out += _table(["file", "rows", "sha256 (16)"], [(f, v["rows"], v["sha256_16"]) for f, v in card["files"].items()])
    ver = card.get("verification")
    if ver:
        out += ["## Verification", "", f"Analyser: {ver.get('analyser')}.", "",
                f"- candidate pairs analysed: {ver.get('candidates')}",
                f"- pairs passing verification: {ver.get('verified_pairs')} ({100 * ver.get('rate', 0):.2f}%)",
                f"- kept rows verified: {100 * ver.get('kept_rows_verified', 0):.1f}%",
                f"- dropped: {ver.get('dropped')}", ""]
    dup = card.get("duplicates")
    if dup:
        out += ["## Duplicates", "", f"- exact duplicates removed: {dup.get('exact_removed')} "
                f"({100 * dup.get('exact_rate', 0):.2f}% of candidates); left in output: {dup.get('exact_in_output')}"]
        near = dup.get("near") or {}
        if near:
            out += [f"- near-duplicates ({near.get('method')}): share of rows whose nearest other row has Jaccard >= t: "
                    + ", ".join(f"t={t}: {100 * v:.1f}%" for t, v in near.get("rate_at", {}).items())
                    + f"; mean nearest similarity {near.get('mean_nearest_similarity')}"]
        out += [""]
    out += _diversity_markdown(card.get("diversity"))
    per = card.get("patterns")
    if per:
        out += ["## Rows per pattern", ""]
        out += _table(["pattern", "CWE", "rules", "kept", "verified / candidates"],
                      [(k, v["cwe"], " ".join(v["rules"]), v["kept"], f"{v['verified']}/{v['candidates']}") for k, v in per.items()])
    for fname, v in card["files"].items():
        if v.get("rows_per_cwe"):
            out += [f"## Rows per CWE ({fname})", ""]
            out += _table(["CWE", "rows"], list(v["rows_per_cwe"].items()))
    tl = card.get("token_lengths", {})
    out += ["## Token lengths", "", f"Tokenizer: {tl.get('tokenizer')}.", ""]
    stats = [(f, role, s.get("mean"), s.get("p5"), s.get("p50"), s.get("p95"), s.get("max"))
             for f, roles in tl.items() if isinstance(roles, dict) for role, s in roles.items()]
    out += _table(["file", "turn", "mean", "p5", "p50", "p95", "max"], stats)
    for key in ("recipe", "notes"):
        if key in card:
            out += [f"## {key.capitalize()}", "", "```json", json.dumps(card[key], indent=2), "```", ""]
    return "\n".join(out)
