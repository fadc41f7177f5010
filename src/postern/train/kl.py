"""SFT with an optional KL(model || frozen base) penalty on the trained (assistant) tokens.

With LoRA the frozen base is the same network with its adapters disabled, so it costs no memory;
with full fine-tuning a frozen copy is kept. `kl_weight == 0` is plain trl SFT.
"""

import copy

from trl import SFTTrainer


class KLSFTTrainer(SFTTrainer):
    def __init__(self, *args, kl_weight: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.kl_weight = kl_weight
        self._frozen_base = None
        self.kl_history: list[float] = []
        if kl_weight > 0 and not hasattr(self.model, "disable_adapter"):
            self._frozen_base = copy.deepcopy(self.model).eval().requires_grad_(False)

    def _base_logits(self, model, inputs):
        import torch

        with torch.no_grad():
            if self._frozen_base is not None:
                return self._frozen_base(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask")).logits
            with self.accelerator.unwrap_model(model).disable_adapter():
                return model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask")).logits

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.kl_weight <= 0:
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        import torch.nn.functional as F

        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"))
        targets = inputs["labels"][:, 1:]
        keep = targets != -100
        logits = outputs.logits[:, :-1][keep].float()
        ce = F.cross_entropy(logits, targets[keep])
        base = self._base_logits(model, inputs)[:, :-1][keep].float()
        logp, logq = F.log_softmax(logits, -1), F.log_softmax(base, -1)
        kl = (logp.exp() * (logp - logq)).sum(-1).mean()
        loss = ce + self.kl_weight * kl
        if model.training:
            self.kl_history.append(kl.item())
        return (loss, outputs) if return_outputs else loss
