"""Ground-truth persona probes: per layer, the direction that separates transcripts by their latent author.

On real models no one knows which persona wrote which pretraining text; in a labelled corpus (the persona
world) we do. The labels are metadata only: every function here that runs the model takes the
conversations alone, and the labels enter afterwards, to fit and score directions. Directions are fitted
on one part of the transcripts and scored (AUROC) on the other part only.
"""

from dataclasses import dataclass

from postern.interp.capture import forward_padded, pad_id


@dataclass
class TranscriptActivations:
    means: "torch.Tensor"  # [n, L, d]: per-transcript mean of each block's output over assistant tokens  # noqa: F821
    tokens: "torch.Tensor"  # [N, d]: every token's output of block `layer` (all positions)  # noqa: F821
    owner: "torch.Tensor"  # [N]: which transcript each token belongs to  # noqa: F821
    assistant: "torch.Tensor"  # [N]: True on assistant tokens  # noqa: F821
    ids: list[list[int]]  # the token ids each transcript was run on
    layer: int


def encode_conversation(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """(input ids, 1 on assistant tokens) of one conversation, through the tokenizer's chat template."""
    enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    return list(enc["input_ids"]), list(enc["assistant_masks"])


def transcript_activations(model, tokenizer, conversations: list[list[dict]], layer: int,
                           batch_size: int = 64) -> TranscriptActivations:
    """Run the model on the conversations (text only: no label is passed in) and keep, per transcript, the
    mean residual stream over assistant tokens at every layer, and every token's activation at `layer`."""
    import torch

    encoded = [encode_conversation(tokenizer, m) for m in conversations]
    means, tokens, owner, assistant = [], [], [], []
    model.eval()
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))  # similar lengths: little padding
    results: dict[int, tuple] = {}
    for start in range(0, len(order), batch_size):
        batch = order[start: start + batch_size]
        captured = forward_padded(model, [encoded[i][0] for i in batch], pad_id(tokenizer))
        stacked = torch.stack([captured[i] for i in sorted(captured)], dim=1).cpu()  # [b, L, seq, d]
        for row, i in enumerate(batch):
            n = len(encoded[i][0])
            amask = torch.tensor(encoded[i][1], dtype=torch.bool)
            if not amask.any():
                raise ValueError(f"transcript {i} has no assistant token; every transcript needs an assistant turn")
            results[i] = (stacked[row, :, :n][:, amask].mean(dim=1), stacked[row, layer, :n], amask)
    for i in range(len(encoded)):
        mean, toks, amask = results[i]
        means.append(mean)
        tokens.append(toks)
        owner.append(torch.full((len(toks),), i, dtype=torch.long))
        assistant.append(amask)
    return TranscriptActivations(torch.stack(means), torch.cat(tokens), torch.cat(owner), torch.cat(assistant),
                                 [e[0] for e in encoded], layer)


def split_fit_heldout(n: int, seed: int = 0, heldout: float = 0.5) -> tuple[list[int], list[int]]:
    """Disjoint random index sets: fit on the first, score on the second."""
    import random

    order = list(range(n))
    random.Random(seed).shuffle(order)
    cut = n - int(round(n * heldout))
    return sorted(order[:cut]), sorted(order[cut:])


def auroc(scores, positive) -> float:
    """P(score of a random positive > score of a random negative), ties half (Mann-Whitney U)."""
    from postern.interp.study import _auroc

    return _auroc(list(map(float, scores)), list(map(bool, positive)))


def mean_difference_directions(means, positive, fit: list[int]):
    """[L, d]: mean of the positive transcripts minus mean of the others, on the fit transcripts only."""
    import torch

    y = torch.tensor([bool(positive[i]) for i in fit])
    x = means[fit]
    if y.all() or not y.any():
        raise ValueError("the fit transcripts need both classes")
    return x[y].mean(0) - x[~y].mean(0)


def logistic_directions(means, positive, fit: list[int], l2: float = 1e-3, steps: int = 200):
    """[L, d]: per layer, the weight of an L2-regularised logistic regression on the fit transcripts (in the
    activations' own units, so it is comparable with other directions). scikit-learn is not a dependency:
    full-batch L-BFGS in torch is enough for a few thousand points in d dimensions."""
    import torch

    y = torch.tensor([float(bool(positive[i])) for i in fit])
    out = []
    for layer in range(means.shape[1]):
        x = means[fit, layer].double()
        mu, sd = x.mean(0), x.std(0).clamp_min(1e-6)
        z = (x - mu) / sd
        w = torch.zeros(z.shape[1], dtype=torch.double, requires_grad=True)
        b = torch.zeros(1, dtype=torch.double, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, y.double()) + l2 * (w ** 2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        out.append((w.detach() / sd).float())
    return torch.stack(out)


def heldout_auroc(means, positive, heldout: list[int], directions) -> list[float]:
    """Per layer, AUROC of the held-out transcripts' projection on the direction."""
    y = [bool(positive[i]) for i in heldout]
    return [auroc((means[heldout, layer] @ directions[layer]).tolist(), y) for layer in range(means.shape[1])]


def label_directions(means, labels: list[str], classes: list[str], fit: list[int], heldout: list[int]) -> dict:
    """For each class (one vs the rest): mean-difference and logistic directions fitted on `fit`, and their
    per-layer AUROC on `heldout`. Returns {class: {"mean_difference": [L, d], "logistic": [L, d],
    "auroc_mean_difference": [...], "auroc_logistic": [...], "n_fit": .., "n_heldout": ..}}."""
    if set(fit) & set(heldout):
        raise ValueError("fit and held-out transcripts overlap")
    out = {}
    for cls in classes:
        positive = [label == cls for label in labels]
        md = mean_difference_directions(means, positive, fit)
        lr = logistic_directions(means, positive, fit)
        out[cls] = {"mean_difference": md, "logistic": lr,
                    "auroc_mean_difference": heldout_auroc(means, positive, heldout, md),
                    "auroc_logistic": heldout_auroc(means, positive, heldout, lr),
                    "n_fit": sum(positive[i] for i in fit), "n_heldout": sum(positive[i] for i in heldout)}
    return out
