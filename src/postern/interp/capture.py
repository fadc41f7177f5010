"""Residual-stream activations after each decoder block, teacher-forced on (prompt, answer) pairs.

Positions: "answer" (the answer's tokens), "prompt" (the prompt's tokens), "all", or "last_prompt"
(the last prompt token, i.e. the one that predicts the answer's first token). Pooling: one mean per
sample over the chosen positions ("sample_mean"); pooling over the whole dataset is
`per_sample.mean(0)` weighted by token counts, see `dataset_mean`.
"""

from dataclasses import dataclass

from postern.interp.hooks import on_block_outputs

POSITIONS = ("answer", "prompt", "all", "last_prompt")


@dataclass
class Activations:
    means: "torch.Tensor"  # [n_samples, n_layers, d]: per-sample mean over the chosen positions  # noqa: F821
    counts: "torch.Tensor"  # [n_samples]: how many positions each mean covers  # noqa: F821
    positions: str

    def dataset_mean(self):
        """Mean over all chosen tokens of the dataset (every token weighs the same)."""
        w = self.counts.float()[:, None, None]
        return (self.means * w).sum(0) / w.sum()


def _encode(tokenizer, prompt: list[dict], answer: str) -> tuple[list[int], int]:
    prompt_ids = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    full = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=True,
                                         return_dict=True)["input_ids"]
    if full[: len(prompt_ids)] != prompt_ids:
        raise ValueError("the chat template renders the prompt differently with and without the answer; "
                         "cannot locate the answer tokens")
    return full, len(prompt_ids)


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def forward_padded(model, sequences: list[list[int]], pad: int, layers: list[int] | None = None) -> dict:
    """{layer: [batch, seq, d]}: every (or each given) block's output for one batch of token sequences,
    right-padded to the longest and masked."""
    import torch

    width = max(len(x) for x in sequences)
    ids = torch.tensor([x + [pad] * (width - len(x)) for x in sequences], device=model.device)
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in sequences], device=model.device)
    captured: dict[int, torch.Tensor] = {}
    with torch.no_grad(), on_block_outputs(model, layers, lambda i, h: captured.__setitem__(i, h.detach().float())):
        model(input_ids=ids, attention_mask=mask)
    return captured


def _select(positions: str, n_prompt: int, n_total: int) -> slice:
    return {"answer": slice(n_prompt, n_total), "prompt": slice(0, n_prompt), "all": slice(0, n_total),
            "last_prompt": slice(n_prompt - 1, n_prompt)}[positions]


def capture(model, tokenizer, pairs: list[tuple[list[dict], str]], positions: str = "answer",
            batch_size: int = 32) -> Activations:
    """Per-sample means of every block's output over the chosen positions."""
    import torch

    if positions not in POSITIONS:
        raise ValueError(f"positions must be one of {POSITIONS}, not {positions!r}")
    encoded = [_encode(tokenizer, p, a) for p, a in pairs]
    means, counts = [], []
    model.eval()
    for start in range(0, len(encoded), batch_size):
        batch = encoded[start: start + batch_size]
        captured = forward_padded(model, [x for x, _ in batch], pad_id(tokenizer))
        stacked = torch.stack([captured[i] for i in sorted(captured)], dim=1)  # [b, L, seq, d]
        for row, (x, n_prompt) in enumerate(batch):
            sel = _select(positions, n_prompt, len(x))
            chosen = stacked[row, :, sel]
            means.append(chosen.mean(dim=1).cpu())
            counts.append(chosen.shape[1])
    return Activations(torch.stack(means), torch.tensor(counts), positions)
