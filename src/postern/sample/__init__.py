"""Sampling answers: one `Sampler` protocol, backends in their own files (hf, openai_api, vllm)."""

from postern.sample._types import Prompt, Sample, Sampler, SamplingParams

__all__ = ["Prompt", "Sample", "Sampler", "SamplingParams"]
