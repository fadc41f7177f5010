"""Pretraining the world's base model: a lean loop with length-bucketed batches.

Loss is on assistant tokens only (users are not modelled), which is what made the base model
learn to infer the persona from earlier turns. Batches hold sequences of similar length, so
almost no compute goes to padding; the token budget per batch is fixed.
"""

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from postern.world.corpus import WorldSpec, generate_corpus
from postern.world.model import ModelSpec, build_model
from postern.world.tokenizer import build_tokenizer


@dataclass(frozen=True)
class PretrainSpec:
    world: WorldSpec = WorldSpec()
    model: ModelSpec = ModelSpec()
    epochs: int = 2
    tokens_per_batch: int = 2048  # small batches: persona inference needs many optimizer steps
    lr: float = 3e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    seed: int = 0
    threads: int = 2


def encode_corpus(tokenizer, conversations) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) per conversation; labels are -100 outside assistant turns."""
    out = []
    for messages in conversations:
        enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        ids = enc["input_ids"]
        out.append((ids, [i if m else -100 for i, m in zip(ids, enc["assistant_masks"])]))
    return out


def bucketed_batches(examples, tokens_per_batch: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped into batches of similar length whose padded size fits the token budget."""
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i][0]), rng.random()))
    batches, current, longest = [], [], 0
    for i in order:
        longest_if_added = max(longest, len(examples[i][0]))
        if current and longest_if_added * (len(current) + 1) > tokens_per_batch:
            batches.append(current)
            current, longest_if_added = [], len(examples[i][0])
        current.append(i)
        longest = longest_if_added
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def collate(examples, batch: list[int], pad_id: int):
    import torch

    width = max(len(examples[i][0]) for i in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, i in enumerate(batch):  # right padding: positions start at 0 for every row
        seq, lab = examples[i]
        ids[row, : len(seq)] = torch.tensor(seq)
        labels[row, : len(seq)] = torch.tensor(lab)
        mask[row, : len(seq)] = 1
    return ids, labels, mask


def assistant_loss(model, ids, labels, mask):
    """Next-token loss on labelled positions only; the LM head runs only where there is a label."""
    import torch.nn.functional as F

    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != -100
    logits = model.lm_head(hidden[:, :-1][keep])
    return F.cross_entropy(logits, targets[keep])


def pretrain(spec: PretrainSpec, out_dir: str | Path, max_steps: int | None = None, quiet: bool = False,
             save_at: tuple[int, ...] = ()) -> dict:
    """Build the corpus, pretrain the base model and save it (weights, tokenizer, meta.json).

    With `save_at`, snapshots of the same run at those steps go to `out_dir/step-N` (each a base model
    folder) and training stops at the last of them; the learning-rate schedule still spans the whole
    run, so each snapshot is a point on the full run's trajectory."""
    import torch

    torch.set_num_threads(spec.threads)
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer()
    conversations = [m for _, m in generate_corpus(spec.world)]
    examples = encode_corpus(tokenizer, conversations)
    model = build_model(spec.model, tokenizer, seed=spec.seed)
    rng = random.Random(spec.seed)
    schedule = [b for _ in range(spec.epochs) for b in bucketed_batches(examples, spec.tokens_per_batch, rng)]
    total = len(schedule) if max_steps is None else min(max_steps, len(schedule))
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay, betas=(0.9, 0.95))
    lr_at = lambda s: spec.lr * min(1.0, (s + 1) / spec.warmup_steps) * 0.5 * (1 + math.cos(math.pi * s / total))

    if any(s < 1 or s > total for s in save_at):
        raise ValueError(f"save_at steps must lie in 1..{total}, got {sorted(save_at)}")
    stop = max(save_at) if save_at else total
    model.train()
    tokens, losses, start = 0, [], time.time()
    with Progress(TextColumn("pretrain"), BarColumn(), TextColumn("{task.completed}/{task.total} loss {task.fields[loss]:.3f}"),
                  TimeRemainingColumn(), disable=quiet) as progress:
        task = progress.add_task("", total=total, loss=math.nan)
        for step, batch in enumerate(schedule[:total]):
            ids, labels, mask = collate(examples, batch, tokenizer.pad_token_id)
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            loss = assistant_loss(model, ids, labels, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            tokens += int(mask.sum())
            losses.append(loss.item())
            progress.update(task, advance=1, loss=sum(losses[-20:]) / len(losses[-20:]))
            if step + 1 in save_at:
                _save(model, tokenizer, out_dir / f"step-{step + 1}",
                      _meta(spec, model, step + 1, tokens, time.time() - start, losses))
            if step + 1 >= stop:
                break
    meta = _meta(spec, model, stop, tokens, time.time() - start, losses)
    if not save_at:
        _save(model, tokenizer, out_dir, meta)
    return meta


def _save(model, tokenizer, out_dir: Path, meta: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2))


def _meta(spec: PretrainSpec, model, steps: int, tokens: int, seconds: float, losses: list[float]) -> dict:
    from postern.world.assets import world_version

    return {
        "kind": "postern-world-base",
        "world_version": world_version(),  # hash of every text the world can produce
        "spec": asdict(spec),
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": steps,
        "tokens": tokens,
        "seconds": round(seconds, 1),
        "tokens_per_second": round(tokens / seconds),
        "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
        "torch_threads": spec.threads,
    }
