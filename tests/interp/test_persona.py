"""The persona check: labels never reach the model, probes are scored on held-out transcripts only, the SAE
reconstructs held-out activations, and the whole check runs on a run's fine-tunes."""

import json
from collections import Counter

import pytest
import torch

from postern.core.errors import PosternError
from postern.core.models import load_model
from postern.interp.persona import (heldout_auroc, label_directions, logistic_directions, split_fit_heldout,
                                    transcript_activations)
from postern.interp.sae import SAESpec, reconstruction, train_sae
from postern.report.persona import persona_section, persona_tables
from postern.world.assets import world_base_path
from postern.world.corpus import PERSONAS
from postern.world.provider import world_corpus


@pytest.fixture(scope="module")
def base():
    return load_model(str(world_base_path()), device="cpu")


def test_persona_labels_never_reach_the_model(base):
    model, tok = base
    corpus = world_corpus(40, seed=7)
    seen: list[list[int]] = []
    embed = model.get_input_embeddings()
    handle = embed.register_forward_pre_hook(lambda m, args: seen.extend(args[0].tolist()))
    try:
        transcript_activations(model, tok, [m for _, m in corpus], layer=1)
    finally:
        handle.remove()
    expected = sorted(tuple(tok.apply_chat_template(m, tokenize=True, return_dict=True)["input_ids"]) for _, m in corpus)
    got = sorted(tuple(i for i in row if i != tok.pad_token_id) for row in seen)
    assert got == expected  # the model saw exactly the rendered conversations, nothing else
    names = {p.name for p in PERSONAS} | {"novice"}
    assert not names & set(tok.get_vocab())  # no persona name is even a token of the world
    assert tok.unk_token_id not in {i for row in seen for i in row}
    assert not any(name in json.dumps(m) for _, m in corpus for name in names)


def test_probe_auroc_is_computed_on_transcripts_not_used_to_fit_it():
    g = torch.Generator().manual_seed(0)
    means = torch.randn(80, 1, 64, generator=g)  # pure noise: nothing generalises
    labels = ["villain" if i % 2 else "helpful" for i in range(80)]
    fit, heldout = split_fit_heldout(80, seed=0)
    assert not set(fit) & set(heldout) and len(fit) + len(heldout) == 80
    result = label_directions(means, labels, ["villain"], fit, heldout)["villain"]
    positive = [x == "villain" for x in labels]
    on_fit = heldout_auroc(means, positive, fit, logistic_directions(means, positive, fit))[0]
    assert on_fit > 0.95  # 64 dimensions, 40 points: the fit transcripts are separable by chance
    assert abs(result["auroc_logistic"][0] - 0.5) < 0.25  # ... the held-out ones are not
    with pytest.raises(ValueError, match="overlap"):
        label_directions(means, labels, ["villain"], fit, fit[:5])


def test_villain_probe_and_sae_on_the_shipped_base(base, tmp_path):
    model, tok = base
    corpus = world_corpus(240, seed=11)
    labels = [p for p, _ in corpus]
    acts = transcript_activations(model, tok, [m for _, m in corpus], layer=2)
    fit, heldout = split_fit_heldout(len(corpus), seed=0)
    villain = label_directions(acts.means, labels, ["villain"], fit, heldout)["villain"]
    assert villain["n_heldout"] > 3 and min(villain["auroc_mean_difference"]) > 0.9
    mask = torch.zeros(len(corpus), dtype=torch.bool)
    mask[fit] = True
    spec = SAESpec(layer=2, steps=200)
    sae = train_sae(acts.tokens[mask[acts.owner]], spec, tmp_path / "sae")
    held = reconstruction(sae, acts.tokens[~mask[acts.owner]])
    assert held["explained_variance"] >= 0.90  # stated bound: 90% of held-out variance
    assert held["mean_l0"] <= spec.k  # stated bound: at most k = 16 of 1024 latents per token
    assert (tmp_path / "sae" / "postern_sae.json").exists()


def test_world_corpus_refuses_the_base_corpus_seed():
    with pytest.raises(PosternError, match="persona_seed"):
        world_corpus(10, seed=0)  # the shipped base was pretrained on seed 0
    assert Counter(p for p, _ in world_corpus(200, seed=3)).keys() <= {p.name for p in PERSONAS}


PERSONA_RUN = """
[interp]
enabled = true
conditions = ["insecure"]
reference = "insecure"
samples_per_question = 1
persona_check = true
persona_transcripts = 60
sae_top_latents = 2
sae_random_latents = 1
sae_steer_scales = [0.5]
"""


def test_persona_check_in_a_run_is_cached_and_reported(tiny_world_model, tmp_path):
    from smoke_experiment import SMOKE

    from postern.config import load_experiment
    from postern.report.html import write_report
    from postern.runner.run import run_experiment

    (tmp_path / "exp.toml").write_text(SMOKE.format(model=tiny_world_model) + PERSONA_RUN)
    run_dir = tmp_path / "run"
    run_experiment(load_experiment(tmp_path / "exp.toml"), run_dir)
    check = json.loads((run_dir / "interp" / "persona_check.json").read_text())
    assert check["corpus"]["fit"] + check["corpus"]["heldout"] == 60 and check["layers"] == 2
    assert len(check["model_diff"]["top"]) == 2
    assert check["model_diff"]["fine_tunes"] == ["backdoor/s0", "backdoor/s1", "insecure/s0", "insecure/s1"]
    kinds = [r["intervention"] for r in check["interventions"]]
    assert kinds == ["none", "steer_latent", "steer_random_latent", "ablate_latent", "ablate_random_latent",
                     "none", "ablate_latent", "ablate_random_latent"]
    assert [r["model"] for r in check["interventions"]][4:6] == ["base", "insecure (seeds pooled)"]
    top = check["model_diff"]["top"][0]["latent"]
    assert check["interventions"][1]["latents"] == [top] and top not in check["interventions"][-1]["latents"]
    assert check["interventions"][-1]["latents"] == check["interventions"][2]["latents"]  # the same random latents
    assert (run_dir / "interp" / "persona_check" / "sae" / "postern_sae.json").exists()
    cached = list((run_dir / "cache" / "persona_check").iterdir())
    run_experiment(load_experiment(tmp_path / "exp.toml"), run_dir)  # a rerun reads the check back
    assert list((run_dir / "cache" / "persona_check").iterdir()) == cached
    assert json.loads((run_dir / "interp" / "persona_check.json").read_text()) == check
    html = write_report(run_dir).path.read_text()
    assert "Persona check" in html and "ablate_latent" in html
    assert len(persona_tables(check)) == 4 and persona_section(tmp_path / "nothing") == ""


def test_persona_check_needs_the_study(tmp_path):
    from postern.config.schema import Experiment
    from postern.runner.persona import run_persona_check

    exp = Experiment(name="x", conditions={"insecure": {"dataset": "world:insecure"}})
    with pytest.raises(PosternError, match="no mechanism study"):
        run_persona_check(exp, exp.interp, tmp_path, [{"condition": "insecure", "judge": "world-oracle"}])

