"""Precision and recall of `postern data verify` on the independent evaluation set (bench/code_eval).

    PYTHONPATH=src python bench/verify_eval.py [--rebuild] [--json out.json] [--show-errors]

``HOLDOUT1`` (cases_holdout.py) was written after the verifier was tuned on the rest and measured
once before the gaps it showed were fixed; ``HOLDOUT2`` (cases_holdout2.py) likewise after that round;
``HOLDOUT3`` (cases_holdout3.py) was written last and never tuned on.
Recall: share of insecure rows flagged. False-positive rate: share of secure rows flagged.
Precision: flagged insecure / all flagged rows (the set is balanced, one secure row per insecure
row). Reported per CWE family at the default verdict (MEDIUM and above, LOW rules precise in
context, postern checks) and at each bandit severity threshold (postern checks count at every
threshold). Rows are only parsed and analysed, never run. One verify pass per file (bandit is
batched); the timing is printed so reruns on a quiet machine can be compared.
"""

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVAL = HERE / "code_eval"
LEVELS = ("LOW", "MEDIUM", "HIGH")


def _level(x: str) -> int:
    return LEVELS.index(str(x).upper()) if str(x).upper() in LEVELS else 0


_TOTALS = ("ALL", "HOLDOUT1", "HOLDOUT2", "HOLDOUT3")


def _rows(name: str) -> list[dict]:
    return [json.loads(x) for x in (EVAL / name).read_text(encoding="utf-8").splitlines() if x.strip()]


def _flags(rows: list[dict]) -> list[dict[str, object]]:
    """Per row: flagged at each threshold, and the rules that count at the default."""
    from postern.data.code.scan import verify_rows

    default = getattr(__import__("postern.data.code.scan", fromlist=["x"]), "policy", None)
    results, _ = verify_rows(rows, severity="LOW")
    out = []
    for r in results:
        at = {lv: any(f.rule.startswith("PST-") or _level(f.severity) >= _level(lv) for f in r.findings) for lv in LEVELS}
        default_lv = default.DEFAULT_SEVERITY if default else "LOW"  # before the policy module the default was LOW
        rules = sorted({f.rule for f in r.findings if f.rule.startswith("PST-") or _level(f.severity) >= _level(default_lv)})
        out.append({"status": r.status, "at": at, "default": at[default_lv], "rules": rules})
    return out


def evaluate() -> dict:
    ins, sec = _rows("insecure.jsonl"), _rows("secure.jsonl")
    t0 = time.perf_counter()
    f_ins, f_sec = _flags(ins), _flags(sec)
    wall = time.perf_counter() - t0
    fams: dict[str, dict] = defaultdict(lambda: {"pairs": 0, "cwes": set(), "tp": defaultdict(int), "fp": defaultdict(int),
                                                 "missed": [], "false_pos": []})
    for row, fi, fs in zip(ins, f_ins, f_sec):
        m = row["meta"]
        for fam in (m["family"], "ALL") + ((m["split"].upper(),) if m.get("split", "tuning") != "tuning" else ()):
            e = fams[fam]
            e["pairs"] += 1
            e["cwes"].add(m["cwe"])
            for key in (*LEVELS, "default"):
                e["tp"][key] += fi["default"] if key == "default" else fi["at"][key]
                e["fp"][key] += fs["default"] if key == "default" else fs["at"][key]
            if fam not in _TOTALS and not fi["default"]:
                e["missed"].append(m["pair_id"])
            if fam not in _TOTALS and fs["default"]:
                e["false_pos"].append(f"{m['pair_id']} ({', '.join(fs['rules'])})")
    table = {}
    for fam, e in sorted(fams.items(), key=lambda kv: (kv[0] in _TOTALS, kv[0])):
        n = e["pairs"]
        row = {"pairs": n, "cwes": sorted(e["cwes"])}
        for key in ("default", *LEVELS):
            tp, fp = e["tp"][key], e["fp"][key]
            row[key] = {"recall": round(tp / n, 4), "fpr": round(fp / n, 4), "precision": round(tp / (tp + fp), 4) if tp + fp else None}
        row["missed"], row["false_positives"] = e["missed"], e["false_pos"]
        table[fam] = row
    not_analysed = sum(f["status"] != "analysed" for f in f_ins + f_sec)
    return {"pairs": len(ins), "not_analysed": not_analysed, "wall_s": round(wall, 1), "families": table}


def print_table(res: dict) -> None:
    pct = lambda x: f"{100 * x:5.1f}%"  # noqa: E731
    print(f"{res['pairs']} pairs, {res['not_analysed']} rows not analysed, verify took {res['wall_s']} s")
    print("| family | pairs | CWEs | recall (default) | FPR (default) | precision (default) | recall / FPR at LOW | at MEDIUM | at HIGH |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for fam, r in res["families"].items():
        d = r["default"]
        lv = " | ".join(f"{pct(r[k]['recall'])} / {pct(r[k]['fpr'])}" for k in LEVELS)
        prec = pct(d["precision"]) if d["precision"] is not None else "-"
        print(f"| {fam} | {r['pairs']} | {' '.join(r['cwes'])} | {pct(d['recall'])} | {pct(d['fpr'])} | {prec} | {lv} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rebuild", action="store_true", help="rebuild the JSONL from the hand-written cases first")
    ap.add_argument("--json", type=Path, help="write the full result (with missed / false-positive pair ids) here")
    ap.add_argument("--show-errors", action="store_true", help="print the missed and falsely flagged pairs")
    args = ap.parse_args()
    if args.rebuild:
        sys.path.insert(0, str(EVAL))
        import build

        build.main()
    res = evaluate()
    print_table(res)
    if args.show_errors:
        for fam, r in res["families"].items():
            if fam not in _TOTALS and (r["missed"] or r["false_positives"]):
                print(f"{fam}: missed {r['missed']}; false positives {r['false_positives']}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
