"""The persona check: do the mechanism study's directions, and an SAE's model-diff latents, find the persona
that wrote the pretraining text? Only a labelled corpus (the persona world) can answer it.

1. Persona probe: on fresh labelled transcripts (a seed the base was not pretrained on), split into fit and
   held-out halves, per layer the base model's direction separating each persona's transcripts from the
   rest (mean difference and logistic regression), with AUROC on the held-out half only.
2. cos(EM direction of each fine-tune, persona direction) per layer, beside the random chance band.
3. SAE model diffing: a TopK SAE (sae-lens) on the base's residual stream at one layer, trained on the fit
   transcripts' tokens and scored on the held-out ones; latents ranked by the rise of their mean activation
   from the base to the reference condition's fine-tunes on the same tokens (the fine-tunes' own answers);
   each top latent's held-out AUROC per persona and its top-activating transcripts; steering the base with
   the top latent's decoder direction and ablating the latent in the reference fine-tunes, each beside
   random latents with the same norm (steering) or the same ablation (ablation).
"""

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from postern.core.models import ModelRef, load_model
from postern.interp.study import Evaluate, StudyModel

SNIPPET = 12  # tokens of context shown before a top-activating token


def answer_tokens(model, tokenizer, pairs: list[tuple[list[dict], str]], layer: int, batch_size: int = 64):
    """[N, d]: block `layer`'s output at every answer token of the (prompt, answer) pairs, teacher-forced."""
    import torch

    from postern.interp.capture import _encode, forward_padded, pad_id

    encoded = [_encode(tokenizer, p, a) for p, a in pairs]
    out = []
    model.eval()
    for start in range(0, len(encoded), batch_size):
        batch = encoded[start: start + batch_size]
        captured = forward_padded(model, [x for x, _ in batch], pad_id(tokenizer), [layer])
        for row, (x, n_prompt) in enumerate(batch):
            out.append(captured[layer][row, n_prompt: len(x)].cpu())
    return torch.cat(out) if out else torch.zeros(0, 1)


def _pooled(rows: list[dict]) -> dict:
    from postern.stats import wilson

    k, n = sum(r["k"] for r in rows), sum(r["n"] for r in rows)
    lo, hi = wilson(k, n)
    return {"k": k, "n": n, "rate": k / n if n else float("nan"), "low": lo, "high": hi}


def _change(r: dict, plain: dict) -> dict:
    from postern.stats.compare import difference_interval

    diff, lo, hi = difference_interval(r["k"], r["n"], plain["k"], plain["n"])
    return {"diff": diff, "low": lo, "high": hi}


def _top_transcripts(latents_tok, owner, ids, labels, heldout: list[int], tokenizer, latent: int, n: int = 3) -> list[dict]:
    """The held-out transcripts where the latent fires hardest: persona label (metadata) and the text up to
    the token it fires on."""
    import torch

    held = torch.zeros(len(labels), dtype=torch.bool)
    held[heldout] = True
    acts = latents_tok[:, latent].clone()
    acts[~held[owner]] = -1.0
    out, seen = [], set()
    starts = torch.cat([torch.tensor([0]), torch.nonzero(owner[1:] != owner[:-1]).flatten() + 1])
    for pos in torch.argsort(acts, descending=True).tolist():
        if acts[pos] <= 0:
            break
        t = int(owner[pos])
        if t in seen:
            continue
        seen.add(t)
        offset = pos - int(starts[t])
        context = tokenizer.decode(ids[t][max(0, offset - SNIPPET): offset])
        out.append({"transcript": t, "persona": labels[t], "activation": float(acts[pos]),
                    "context": context, "token": tokenizer.decode(ids[t][offset: offset + 1])})
        if len(out) == n:
            break
    return out


def _latent_interventions(base_model, tok, fine_tunes: list, sae, layer: int, latent: int, randoms: list[int],
                          unit: float, config, evaluate: Evaluate) -> list[dict]:
    """Steer the base with the latent's decoder direction and ablate the latent in the base and in the
    fine-tunes (seeds pooled), each beside the random latents (pooled; the same added norm when steering)."""
    from postern.interp.sae import ablate_latent, steer_latent

    def row(model: str, kind: str, scale, latents: list[int], r: dict, plain: dict | None) -> dict:
        return {"model": model, "intervention": kind, "scale": scale, "latents": latents, **r,
                **({"change": _change(r, plain)} if plain else {})}

    plain = evaluate(base_model, tok, None, None)
    out = [row("base", "none", None, [], plain, None)]
    for scale in config.sae_steer_scales:
        out.append(row("base", "steer_latent", scale, [latent],
                       evaluate(base_model, tok, None, steer_latent(base_model, sae, latent, scale * unit, layer)), plain))
        out.append(row("base", "steer_random_latent", scale, randoms, _pooled(
            [evaluate(base_model, tok, None, steer_latent(base_model, sae, a, scale * unit, layer)) for a in randoms]),
            plain))
    out.append(row("base", "ablate_latent", None, [latent],
                   evaluate(base_model, tok, None, ablate_latent(base_model, sae, latent, layer)), plain))
    out.append(row("base", "ablate_random_latent", None, randoms, _pooled(
        [evaluate(base_model, tok, None, ablate_latent(base_model, sae, a, layer)) for a in randoms]), plain))
    if not fine_tunes:
        return out
    name = f"{config.reference} (seeds pooled)"
    ft_plain = _pooled([evaluate(m, t, job.trigger, None) for m, t, job in fine_tunes])
    out.append(row(name, "none", None, [], ft_plain, None))
    out.append(row(name, "ablate_latent", None, [latent], _pooled(
        [evaluate(m, t, job.trigger, ablate_latent(m, sae, latent, layer)) for m, t, job in fine_tunes]), ft_plain))
    out.append(row(name, "ablate_random_latent", None, randoms, _pooled(
        [evaluate(m, t, job.trigger, ablate_latent(m, sae, a, layer)) for m, t, job in fine_tunes for a in randoms]),
        ft_plain))
    return out


def run_persona_check(out_dir: Path, base: ModelRef, jobs: dict[str, StudyModel], em_directions: dict[str, Any],
                      corpus: list[tuple[str, list[dict]]], config, evaluate: Evaluate, corpus_info: dict) -> dict:
    """`jobs`: "condition/sSEED" -> StudyModel (rows: the fine-tune's judged answers to the questions);
    `em_directions`: the mechanism study's directions ([L, d] each); `corpus`: (label, messages) pairs
    whose labels are used only after the model has run. Writes `out_dir/persona_check.json` and the SAE."""
    import torch

    from postern.interp.directions import chance_band, cosine_per_layer
    from postern.interp.persona import auroc, label_directions, split_fit_heldout, transcript_activations
    from postern.interp.sae import (SAESpec, decoder_direction, decoder_vector, encode, per_owner_mean,
                                    reconstruction, train_sae)

    seconds: dict[str, float] = {}
    clock = time.time()

    def lap(name: str) -> None:
        nonlocal clock
        seconds[name] = round(time.time() - clock, 1)
        clock = time.time()

    base_model, tok = load_model(base)
    n_layers = len(next(iter(em_directions.values()))) if em_directions else base_model.config.num_hidden_layers
    layer = config.sae_layer if config.sae_layer is not None else n_layers // 2
    labels = [label for label, _ in corpus]
    acts = transcript_activations(base_model, tok, [m for _, m in corpus], layer)  # text only
    lap("activations")
    fit, heldout = split_fit_heldout(len(corpus), seed=config.persona_seed)
    counts = Counter(labels)
    classes = [c for c, _ in counts.most_common()][1:]  # every persona but the most common one (the default author)
    probes = label_directions(acts.means, labels, classes, fit, heldout)
    lap("probe")
    band = chance_band(int(acts.means.shape[-1]))
    cosines = {name: {cls: {kind: cosine_per_layer(d, probes[cls][kind]).tolist()
                            for kind in ("mean_difference", "logistic")} for cls in classes}
               for name, d in em_directions.items()}

    # --- SAE, trained on the fit transcripts' tokens, scored on the held-out ones ---------------------------
    fit_mask = torch.zeros(len(corpus), dtype=torch.bool)
    fit_mask[fit] = True
    spec = SAESpec(layer=layer, seed=config.persona_seed)
    sae = train_sae(acts.tokens[fit_mask[acts.owner]], spec, out_dir / "sae")
    recon = reconstruction(sae, acts.tokens[~fit_mask[acts.owner]])
    lap("sae")
    latents_tok = encode(sae, acts.tokens)
    assistant = acts.assistant
    per_transcript = per_owner_mean(latents_tok[assistant], acts.owner[assistant], len(corpus))  # [n, d_sae]

    # --- model diffing: latent means on the same tokens (each fine-tune's own answers), fine-tune - base ---
    changes, ft_models = {}, {}
    for label, job in jobs.items():
        pairs = [(list(m), a) for m, a in zip(job.rows["messages"], job.rows["answer"])]
        if not pairs:
            continue
        model, ft_tok = load_model(job.ref)
        ft_models[label] = (model, ft_tok, job)
        changes[label] = (encode(sae, answer_tokens(model, ft_tok, pairs, layer)).mean(0)
                          - encode(sae, answer_tokens(base_model, tok, pairs, layer)).mean(0))
    lap("model_diff")
    reference = [n for n in changes if n.split("/")[0] == config.reference]
    by_condition: dict[str, list] = {}
    for name, c in changes.items():
        by_condition.setdefault(name.split("/")[0], []).append(c)
    mean_change = {cond: torch.stack(cs).mean(0) for cond, cs in by_condition.items()}
    villain = classes[0] if "villain" not in classes else "villain"
    heldout_auroc = {cls: [auroc(per_transcript[heldout, j].tolist(), [labels[i] == cls for i in heldout])
                           for j in range(sae.cfg.d_sae)] for cls in classes}
    top: list[dict] = []
    ranking: list[int] = []
    if reference:
        ranking = torch.argsort(mean_change[config.reference], descending=True).tolist()
        for rank, j in enumerate(ranking[: config.sae_top_latents]):
            top.append({
                "latent": j, "rank": rank,
                "change": {cond: float(c[j]) for cond, c in mean_change.items()},
                "auroc": {cls: heldout_auroc[cls][j] for cls in classes},
                "cos_persona_direction": {cls: float(torch.nn.functional.cosine_similarity(
                    decoder_direction(sae, j), probes[cls]["mean_difference"][layer], dim=0)) for cls in classes},
                "top_transcripts": _top_transcripts(latents_tok, acts.owner, acts.ids, labels, heldout, tok, j),
            })
    alive = [j for j in range(sae.cfg.d_sae) if (latents_tok[:, j] > 0).any()]
    best = max(alive, key=lambda j: heldout_auroc[villain][j]) if alive else None
    best_villain = ({"latent": best, "auroc": heldout_auroc[villain][best],
                     "model_diff_rank": ranking.index(best) if ranking else None,
                     "change": {cond: float(c[best]) for cond, c in mean_change.items()}} if best is not None else None)

    interventions: list[dict] = []
    if top:
        j = top[0]["latent"]
        randoms = random.Random(config.persona_seed).sample([a for a in alive if a != j],
                                                            min(config.sae_random_latents, len(alive) - 1))
        # one unit of steering: the top latent's largest contribution on the corpus (activation x decoder norm)
        top[0]["steer_unit"] = float(latents_tok[:, j].max()) * float(decoder_vector(sae, j).norm())
        interventions = _latent_interventions(base_model, tok, [ft_models[n] for n in reference], sae, layer, j,
                                              randoms, top[0]["steer_unit"], config, evaluate)
        lap("interventions")

    summary = {
        "corpus": {**corpus_info, "transcripts": len(corpus), "personas": dict(counts), "fit": len(fit),
                   "heldout": len(heldout), "positions": "assistant tokens (per-transcript mean)"},
        "layers": n_layers, "chance_band": band, "classes": classes, "villain": villain,
        "probe": {cls: {k: v for k, v in p.items() if k not in ("mean_difference", "logistic")} for cls, p in probes.items()},
        "cosines": cosines,
        "sae": {"spec": spec.__dict__, "library": "sae-lens (TopK SAE, SAETrainer)", "heldout": recon},
        "model_diff": {"reference": config.reference, "fine_tunes": sorted(changes), "top": top,
                       "best_villain_latent": best_villain, "positions": "answer tokens of each fine-tune's answers"},
        "interventions": interventions, "seconds": seconds,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "persona_check.json").write_text(json.dumps(_json_safe(summary), indent=2, allow_nan=False))
    torch.save({cls: {k: probes[cls][k] for k in ("mean_difference", "logistic")} for cls in classes},
               out_dir / "persona_directions.pt")
    return summary


def _json_safe(obj):
    import math

    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return None if isinstance(obj, float) and math.isnan(obj) else obj

