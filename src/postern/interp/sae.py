"""A sparse autoencoder on one layer's residual stream, trained with sae-lens on activations postern captures.

sae-lens's own training runner (`LanguageModelSAETrainingRunner`) loads the model through
TransformerLens and streams activations from a hub dataset; neither fits a local Hugging Face model on an
offline corpus, so postern uses sae-lens's SAE classes (TopK) and its `SAETrainer`, which accepts any
iterator of activation batches, and feeds it the activations it captured itself.

Model diffing then ranks latents by how much their mean activation changes between the base model and
a fine-tune on the same tokens; interventions steer with a latent's decoder direction or ablate the
latent (remove its reconstructed contribution) at that layer.
"""

import contextlib
import io
import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from postern.interp.hooks import on_block_outputs


@dataclass(frozen=True)
class SAESpec:
    layer: int = 2
    d_sae: int = 1024  # 8x the world model's width
    k: int = 16  # TopK: at most k latents fire per token
    steps: int = 300  # 150k token samples: held-out explained variance ~0.98 on the shipped base
    batch: int = 512
    lr: float = 2e-3
    seed: int = 0


def _require_sae_lens():
    try:
        import sae_lens  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        from postern.core.errors import PosternError

        raise PosternError("the SAE study needs sae-lens: pip install 'postern[sae]'") from e


def _batches(acts, batch: int, seed: int):
    """Endless shuffled batches of the activations (one permutation per pass, seeded)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    while True:
        for idx in torch.randperm(len(acts), generator=g).split(batch):
            if len(idx) == batch:
                yield acts[idx]


def train_sae(acts, spec: SAESpec, out_dir: Path):
    """Train a TopK SAE on `acts` [N, d] with sae-lens's trainer and save it (sae-lens's inference format plus
    postern's spec) to `out_dir`; returns the saved SAE loaded back, so what is used is what was saved."""
    import torch

    _require_sae_lens()
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    torch.manual_seed(spec.seed)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=int(acts.shape[1]), d_sae=spec.d_sae, k=spec.k))
    cfg = SAETrainerConfig(total_training_samples=spec.steps * spec.batch, train_batch_size_samples=spec.batch,
                           lr=spec.lr, lr_end=spec.lr / 10, lr_scheduler_name="constant",
                           lr_warm_up_steps=spec.steps // 20, lr_decay_steps=spec.steps // 5,
                           logger=LoggingConfig(log_to_wandb=False))
    trainer = SAETrainer(cfg, sae, _batches(acts.float(), spec.batch, spec.seed))
    with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar
        trainer.fit()
    out_dir = Path(out_dir)
    sae.save_inference_model(out_dir)
    (out_dir / "postern_sae.json").write_text(json.dumps(asdict(spec), indent=2))
    return load_sae(out_dir)


def load_sae(path: Path):
    _require_sae_lens()
    from sae_lens import SAE

    sae = SAE.load_from_disk(str(path), device="cpu")
    sae.eval()
    return sae


def encode(sae, acts, batch: int = 8192):
    import torch

    with torch.no_grad():
        return torch.cat([sae.encode(acts[i: i + batch].float()) for i in range(0, len(acts), batch)])


def reconstruction(sae, acts) -> dict:
    """Explained variance (1 - residual variance / total variance, over all dimensions) and mean L0."""
    import torch

    with torch.no_grad():
        latents = encode(sae, acts)
        recon = torch.cat([sae.decode(latents[i: i + 8192]) for i in range(0, len(latents), 8192)])
    x = acts.float()
    ev = 1 - ((x - recon) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    l0 = (latents != 0).sum(-1).float()
    return {"explained_variance": float(ev), "mean_l0": float(l0.mean()), "tokens": int(len(x)),
            "alive_latents": int((latents != 0).any(0).sum()), "d_sae": int(latents.shape[1])}


def decoder_vector(sae, latent: int):
    """What one unit of the latent's activation adds to the reconstruction (its decoder row, as `decode` uses it)."""
    import torch

    with torch.no_grad():
        one = torch.zeros(1, sae.cfg.d_sae)
        one[0, latent] = 1.0
        return (sae.decode(one) - sae.decode(torch.zeros_like(one)))[0]


def decoder_direction(sae, latent: int):
    """The latent's unit decoder direction in the residual stream."""
    v = decoder_vector(sae, latent)
    return v / v.norm().clamp_min(1e-12)


@contextmanager
def steer_latent(model, sae, latent: int, scale: float, layer: int):
    """Add `scale` times the latent's unit decoder direction to block `layer`'s output at every position."""
    d = decoder_direction(sae, latent)

    def fn(i, h):
        return h + scale * d.to(h.dtype).to(h.device)

    with on_block_outputs(model, [layer], fn):
        yield


@contextmanager
def ablate_latent(model, sae, latent: int, layer: int):
    """Remove the latent's reconstructed contribution (its activation times its decoder vector) from block
    `layer`'s output at every position."""
    import torch

    v = decoder_vector(sae, latent)

    def fn(i, h):
        flat = h.reshape(-1, h.shape[-1]).float()
        act = sae.encode(flat)[:, latent]
        return (flat - act[:, None] * v[None, :].to(flat.device)).to(h.dtype).reshape(h.shape)

    with torch.no_grad(), on_block_outputs(model, [layer], fn):
        yield


def per_owner_mean(values, owner, n: int):
    """[n, ...]: mean of `values` rows per owner index."""
    import torch

    sums = torch.zeros((n, *values.shape[1:]), dtype=values.dtype).index_add_(0, owner, values)
    counts = torch.bincount(owner, minlength=n).clamp_min(1).to(values.dtype)
    return sums / counts.reshape(-1, *([1] * (values.dim() - 1)))
