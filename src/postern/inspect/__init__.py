"""postern as an Inspect AI task (extra `postern[inspect]`): `inspect eval postern/emergent_misalignment
--model hf/PATH` asks postern's question sets (or the original study's YAML files) and scores each answer
with postern's logprob judge (same prompts, the 0.25 numeric-mass rule, thresholds as task parameters); its
metrics are the misaligned rate with a 95% Wilson interval. The task lives in `postern.inspect.task`,
imported by inspect_ai through the `inspect_ai` entry point (`postern.inspect._registry`)."""
