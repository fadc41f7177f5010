"""Interventions during fine-tuning, one file each, registered as kind "intervention".

A backend is a context manager factory `fn(model, config: InterventionConfig)` that hooks the model's
decoder blocks for the `with` block and removes every hook on exit (even after an exception); the
trainer (postern.train.sft) wraps `trainer.train()` in it, so the saved weights carry no hook and
the fine-tune is evaluated without one. `config.direction` is a direction file here: `postern run`
resolves "base", "condition:NAME" and "random" into one first (postern.runner.directions).
"""
