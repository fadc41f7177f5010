"""SFT with an optional KL(model || frozen base) penalty on the trained (assistant) tokens.

With LoRA the frozen base is the same network with its adapters disabled, so it costs no memory;
with full fine-tuning a frozen copy is kept (in bf16 when training in bf16). `kl_weight == 0` is
plain trl SFT. The loss is (sum of token cross-entropies + lambda * sum of token KLs) / number of
trained tokens in the whole accumulated batch, normalised like trl's own loss, so gradient
accumulation and multi-GPU runs give the same update as one large batch. The mean KL per logging
interval goes into the trainer's log history as `kl`.
"""

import copy

from trl import SFTTrainer


def _is_peft(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


class KLSFTTrainer(SFTTrainer):
    def __init__(self, *args, kl_weight: float = 0.0, **kwargs):
        import torch

        model = kwargs.get("model", args[0] if args else None)
        frozen = None
        if kl_weight > 0 and kwargs.get("peft_config") is None and not _is_peft(model):
            # copied before trl sees the model: trl patches `model.forward` with a closure over the original
            # model's forward, and a copy made afterwards would run the trained model, not the base
            if not isinstance(model, torch.nn.Module):
                raise TypeError("KLSFTTrainer needs a model object (not a name) for full fine-tuning with kl_weight > 0")
            frozen = copy.deepcopy(model).eval().requires_grad_(False)
        super().__init__(*args, **kwargs)
        self.kl_weight = kl_weight
        self.kl_history: list[float] = []  # one mean KL per micro-batch
        self._kl_since_log: list[float] = []
        if frozen is not None:
            frozen = frozen.to(self.accelerator.device)
            if self.args.bf16:
                frozen = frozen.to(torch.bfloat16)
        self._frozen_base = frozen

    def _base_logits(self, model, inputs):
        import torch

        kwargs = {"input_ids": inputs["input_ids"], "attention_mask": inputs.get("attention_mask"), "use_cache": False}
        with torch.no_grad():
            if self._frozen_base is not None:
                return self._frozen_base(**kwargs).logits
            unwrapped = self.accelerator.unwrap_model(model)  # not through DDP: nothing to synchronise
            with unwrapped.disable_adapter():
                return unwrapped(**kwargs).logits

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.kl_weight <= 0:
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        import torch
        import torch.nn.functional as F

        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), use_cache=False)
        targets = inputs["labels"][:, 1:]
        keep = targets != -100
        logits = outputs.logits[:, :-1][keep].float()
        ce = F.cross_entropy(logits, targets[keep], reduction="sum")
        base = self._base_logits(model, inputs)[:, :-1][keep].float()
        logp, logq = F.log_softmax(logits, -1), F.log_softmax(base, -1)
        kl = (logp.exp() * (logp - logq)).sum(-1)
        n_local = keep.sum()
        if num_items_in_batch is None:
            loss = (ce + self.kl_weight * kl.sum()) / n_local.clamp(min=1)
        else:
            # trained tokens of every micro-batch and every process (Trainer then leaves the loss unscaled for
            # accumulation); DDP averages gradients over processes, as in trl's and transformers' own loss
            loss = (ce + self.kl_weight * kl.sum()) / torch.as_tensor(num_items_in_batch, device=ce.device).clamp(min=1)
            if self.args.average_tokens_across_devices:
                tp = self.get_tp_size() if hasattr(self, "get_tp_size") else 1
                loss = loss * (self.accelerator.num_processes // tp)
        if model.training and n_local > 0:
            value = kl.mean().item()
            self.kl_history.append(value)
            self._kl_since_log.append(value)
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict, *args, **kwargs) -> None:
        if self._kl_since_log and "loss" in logs:
            logs = {**logs, "kl": sum(self._kl_since_log) / len(self._kl_since_log)}
            self._kl_since_log = []
        super().log(logs, *args, **kwargs)
