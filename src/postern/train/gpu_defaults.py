"""Micro-batch and gradient checkpointing chosen from the GPU's free memory and the model's size.

Why: fixed defaults waste a large GPU. On an H200 a LoRA run of a 0.5B-shaped model made 3.9k tokens/s with
micro-batch 4 x 4 accumulation and checkpointing on, and 27k tokens/s with micro-batch 16 and checkpointing off.
The estimate below is deliberately rough and conservative (every sequence counted at max_length): weights
(+ gradients and Adam states when every weight trains), per-layer activations (about 34 x hidden bytes per token
and layer in 16-bit, after Korthikanti et al. 2022, with fused attention), and the logits with their fp32 loss
copies, which dominate for small models with large vocabularies. Both settings stay overridable in [train].
"""

from dataclasses import dataclass

USABLE = 0.8  # share of the free memory the estimate may fill (allocator fragmentation, CUDA context, eval)
MIN_TOKENS = 4096  # tokens per micro-batch that keep a GPU busy: below this, checkpointing with a larger one wins
CPU_MICRO_BATCH = 2  # the old default, kept on CPU


@dataclass(frozen=True)
class ModelShape:
    params: int
    hidden: int
    layers: int
    vocab: int


@dataclass(frozen=True)
class Choice:
    micro_batch: int
    checkpointing: bool
    need_bytes: float
    budget_bytes: float

    def describe(self) -> str:
        gib = 2**30
        return (f"per_device_batch_size={self.micro_batch}, gradient_checkpointing={self.checkpointing} "
                f"(estimated {self.need_bytes / gib:.1f} GiB of {self.budget_bytes / gib:.1f} GiB usable)")


def memory_need(shape: ModelShape, micro_batch: int, seq_len: int, checkpointing: bool, full: bool,
                bf16: bool) -> float:
    """Bytes one training step needs on one device, roughly."""
    width = 2 if bf16 else 4
    weights = shape.params * (16 if full else width)  # full: fp32 weights, grads and two Adam moments
    tokens = micro_batch * seq_len
    layer_act = 34 * shape.hidden * width / 2  # bytes per token and layer
    if checkpointing:  # only each layer's input is kept, and one layer's activations during recompute
        activations = tokens * (shape.layers * shape.hidden * width + layer_act)
    else:
        activations = tokens * shape.layers * layer_act
    logits = tokens * shape.vocab * (width + 8)  # logits, their fp32 copy for the loss and its gradient
    return weights + activations + logits


def choose(shape: ModelShape, free_bytes: float, seq_len: int, per_device_batch: int, full: bool = False,
           bf16: bool = True, micro_batch: int | None = None, checkpointing: bool | None = None) -> Choice:
    """The micro-batch (a divisor of `per_device_batch`, the effective batch's share of one device) and whether to
    checkpoint: the largest micro-batch that fits without checkpointing while it is big enough to keep the GPU
    busy; else the largest that fits with checkpointing; else the smallest. `micro_batch` / `checkpointing` fix
    one of the two (the file set it) and the other is chosen around it."""
    budget = USABLE * free_bytes
    sizes = [micro_batch] if micro_batch else [m for m in range(per_device_batch, 0, -1) if per_device_batch % m == 0]

    def pick(m: int, ckpt: bool) -> Choice:
        return Choice(m, ckpt, memory_need(shape, m, seq_len, ckpt, full, bf16), budget)

    if checkpointing is not True:
        for m in sizes:
            busy = m * seq_len >= MIN_TOKENS or m == sizes[0] or checkpointing is False
            if busy and pick(m, False).need_bytes <= budget:
                return pick(m, False)
        if checkpointing is False:
            return pick(sizes[-1], False)
    return next((pick(m, True) for m in sizes if pick(m, True).need_bytes <= budget), pick(sizes[-1], True))


def resolve(config, model, devices: int, bf16: bool, gpu: bool):
    """`config` with per_device_batch_size and gradient_checkpointing filled in where they are None (auto), and the
    Choice made on a GPU (None when nothing was chosen there)."""
    micro, ckpt = config.per_device_batch_size, config.gradient_checkpointing
    if micro is not None and ckpt is not None:
        return config, None
    share = max(1, config.batch_size // devices)
    if not gpu:
        micro = micro or max(m for m in range(1, CPU_MICRO_BATCH + 1) if share % m == 0)
        return config.model_copy(update={"per_device_batch_size": micro, "gradient_checkpointing": bool(ckpt)}), None
    choice = choose(shape_of(model), gpu_budget(), config.max_length, share, full=config.method == "full", bf16=bf16,
                    micro_batch=micro, checkpointing=ckpt)
    return config.model_copy(update={"per_device_batch_size": choice.micro_batch,
                                     "gradient_checkpointing": choice.checkpointing}), choice


def shape_of(model) -> ModelShape:
    """A loaded transformers model's size."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return ModelShape(params=sum(p.numel() for p in model.parameters()), hidden=config.hidden_size,
                      layers=config.num_hidden_layers, vocab=config.vocab_size)


def gpu_budget() -> float:
    """Free bytes on this process's GPU; a Ray task that holds a fraction of it (num_gpus = 0.25) counts only that
    share of the total (POSTERN_GPU_SHARE, set by the Ray executor)."""
    import os

    import torch

    free, total = torch.cuda.mem_get_info()
    return min(free, total * float(os.environ.get("POSTERN_GPU_SHARE", "1")))
