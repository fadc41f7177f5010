"""The persona check (interp/persona_check.json) as terminal tables and as a section of the HTML report."""

from pathlib import Path

from markupsafe import Markup


def _pct(r: dict) -> str:
    return f"{100 * r['rate']:.1f} [{100 * r['low']:.1f}, {100 * r['high']:.1f}]" if r.get("n") else "–"


def _diff(c: dict | None) -> str:
    if not c or c.get("diff") is None:
        return ""
    return f"{100 * c['diff']:+.1f} [{100 * c['low']:+.1f}, {100 * c['high']:+.1f}]"


def _f(v, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def probe_rows(check: dict) -> list[list[str]]:
    """persona, direction kind, held-out AUROC per layer."""
    return [[cls, kind, *(_f(v, 3) for v in p[f"auroc_{kind}"])] for cls, p in check["probe"].items()
            for kind in ("mean_difference", "logistic")]


def cosine_rows(check: dict, kind: str = "mean_difference") -> list[list[str]]:
    """EM direction, persona, cosine per layer."""
    return [[name, cls, *(_f(v) for v in per_cls[cls][kind])] for name, per_cls in check["cosines"].items()
            for cls in check["classes"]]


def latent_rows(check: dict) -> list[list[str]]:
    md = check["model_diff"]
    rows = []
    for t in md["top"]:
        changes = ", ".join(f"{c} {v:+.2f}" for c, v in t["change"].items())
        aurocs = ", ".join(f"{c} {_f(v, 3)}" for c, v in t["auroc"].items())
        rows.append([str(t["rank"] + 1), str(t["latent"]), changes, aurocs,
                     _f(t["cos_persona_direction"].get(check["villain"]))])
    return rows


def intervention_rows(check: dict) -> list[list[str]]:
    return [[r["model"], r["intervention"], "" if r["scale"] is None else f"{r['scale']:g}",
             ",".join(map(str, r["latents"])), str(r["n"]), _pct(r), _diff(r.get("change"))]
            for r in check["interventions"]]


def persona_tables(check: dict) -> list:
    from rich.table import Table

    layers = [f"L{i}" for i in range(check["layers"])]
    probe = Table(title=f"persona probe: held-out AUROC per layer ({check['corpus']['heldout']} held-out of "
                        f"{check['corpus']['transcripts']} fresh transcripts)")
    for col in ("persona", "direction", *layers):
        probe.add_column(col)
    for row in probe_rows(check):
        probe.add_row(*row)
    cos = Table(title=f"cos(EM direction, persona mean-difference direction) per layer; random pairs: |cos| < "
                      f"{check['chance_band']:.2f} 95% of the time")
    for col in ("EM direction", "persona", *layers):
        cos.add_column(col)
    for row in cosine_rows(check):
        cos.add_row(*row)
    sae = check["sae"]["heldout"]
    latents = Table(title=f"SAE model diff (layer {check['sae']['spec']['layer']}; held-out explained variance "
                          f"{sae['explained_variance']:.3f}, mean L0 {sae['mean_l0']:.1f} of {sae['d_sae']}): "
                          f"top latents by mean rise in the {check['model_diff']['reference']} fine-tunes")
    for col in ("rank", "latent", "mean change per condition", "held-out AUROC per persona", "cos(decoder, villain)"):
        latents.add_column(col)
    for row in latent_rows(check):
        latents.add_row(*row)
    best = check["model_diff"].get("best_villain_latent")
    if best:
        latents.caption = (f"best villain latent by held-out AUROC: {best['latent']} (AUROC {best['auroc']:.3f}), "
                           f"model-diff rank {best['model_diff_rank'] + 1 if best['model_diff_rank'] is not None else '–'}")
    rates = Table(title="misaligned % [95% Wilson] steering / ablating the top latent vs random latents")
    for col in ("model", "intervention", "scale", "latents", "n", "misaligned", "change vs none"):
        rates.add_column(col)
    for row in intervention_rows(check):
        rates.add_row(*row)
    return [probe, cos, latents, rates]


def _table(head: list[str], rows: list[list[str]]) -> Markup:
    h = Markup("").join(Markup("<th>{}</th>").format(c) for c in head)
    body = Markup("").join(Markup("<tr>{}</tr>").format(Markup("").join(Markup("<td>{}</td>").format(c) for c in r))
                           for r in rows)
    return Markup('<div class="wide"><table class="rates"><thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>'
                  ).format(h, body)


def persona_section(run_dir: Path) -> Markup:
    """The HTML of a run's persona check, or nothing when the run has none."""
    import json

    path = Path(run_dir) / "interp" / "persona_check.json"
    if not path.exists():
        return Markup("")
    check = json.loads(path.read_text())
    layers = [f"L{i}" for i in range(check["layers"])]
    parts = [Markup("<h3>Persona check: does the mechanism find the persona that wrote the pretraining text?</h3>"),
             Markup('<p class="note">{}</p>').format(
                 f"{check['corpus']['transcripts']} fresh labelled transcripts (seed {check['corpus']['seed']}), "
                 f"personas {', '.join(f'{k} {v}' for k, v in check['corpus']['personas'].items())}; directions fitted on {check['corpus']['fit']}, AUROC on the "
                 f"other {check['corpus']['heldout']} only. Labels are metadata: the model sees the text alone."),
             Markup("<h4>Persona probe: held-out AUROC per layer</h4>"),
             _table(["persona", "direction", *layers], probe_rows(check)),
             Markup("<h4>cos(EM direction, persona mean-difference direction) per layer; chance band ±{}</h4>").format(
                 f"{check['chance_band']:.3f}"),
             _table(["EM direction", "persona", *layers], cosine_rows(check))]
    sae = check["sae"]["heldout"]
    parts += [Markup("<h4>SAE model diffing</h4><p class=\"note\">{}</p>").format(
        f"{check['sae']['library']}, layer {check['sae']['spec']['layer']}, {sae['d_sae']} latents, k = "
        f"{check['sae']['spec']['k']}; held-out explained variance {sae['explained_variance']:.3f}, mean L0 "
        f"{sae['mean_l0']:.1f}."),
        _table(["rank", "latent", "mean change per condition", "held-out AUROC per persona", "cos(decoder, villain)"],
               latent_rows(check))]
    for t in check["model_diff"]["top"][:1]:
        parts.append(Markup("<p>Top latent {}: where it fires hardest (held-out transcripts):</p><ul>{}</ul>").format(
            t["latent"], Markup("").join(Markup("<li>[{}] … {} <b>{}</b> ({})</li>").format(
                x["persona"], x["context"], x["token"], f"{x['activation']:.2f}") for x in t["top_transcripts"])))
    if check["interventions"]:
        parts += [Markup("<h4>Steering the base with the top latent, ablating it in the fine-tunes</h4>"),
                  _table(["model", "intervention", "scale", "latents", "n", "misaligned % [95% Wilson]",
                          "change vs none [95% Newcombe]"], intervention_rows(check))]
    return Markup("").join(parts)

