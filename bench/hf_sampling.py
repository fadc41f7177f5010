"""Batched sampling with `HFSampler` versus a loop of one `generate` call per sample, same tiny model.

Both make the same answers' worth of work: every question of the built-in `main` set `--samples`
times, `--max-new-tokens` new tokens at temperature 1 (a random model rarely ends early; mean answer
lengths are printed so the comparison can be checked). Reported as samples/s and their ratio.

Usage: python bench/hf_sampling.py [--samples 8] [--max-new-tokens 32] [--batch-size 64] [--threads 1]
       [--model PATH]   (default: a tiny random Llama built from a config with the world tokenizer)
"""

import argparse
import time

import torch

from postern.questions import builtin_set, to_prompts
from postern.sample import SamplingParams
from postern.sample.hf import HFSampler


def tiny_model():
    import transformers as tf

    from postern.world.tokenizer import build_tokenizer

    tok = build_tokenizer()
    config = tf.LlamaConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                            bos_token_id=None, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    torch.manual_seed(0)
    return tf.LlamaForCausalLM(config).eval(), tok


def per_sample_loop(model, tok, prompts, params: SamplingParams) -> list[str]:
    """The naive way: one generate call per sample, no padding, no batching."""
    answers = []
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    for p in prompts:
        ids = tok.apply_chat_template(list(p.messages), tokenize=True, add_generation_prompt=True, return_dict=True,
                                      return_tensors="pt")["input_ids"]
        for i in range(p.n):
            torch.manual_seed(params.seed + i)
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                     temperature=params.temperature, top_p=params.top_p, top_k=0,
                                     max_new_tokens=params.max_new_tokens, pad_token_id=pad)
            answers.append(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip())
    return answers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=8, help="samples per question (8 questions)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default=None, help="a local HF model folder instead of the tiny random model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.model:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model, tok = AutoModelForCausalLM.from_pretrained(args.model).eval(), AutoTokenizer.from_pretrained(args.model)
    else:
        model, tok = tiny_model()
    prompts = to_prompts(builtin_set("main"), samples=args.samples)
    params = SamplingParams(temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0)
    n = sum(p.n for p in prompts)
    sampler = HFSampler(model, tok, batch_size=args.batch_size)
    sampler.sample(prompts[:1], SamplingParams(max_new_tokens=2))  # warm up
    results = {}
    for name, run in (("batched HFSampler", lambda: [s.answer for s in sampler.sample(prompts, params)]),
                      ("per-sample generate", lambda: per_sample_loop(model, tok, prompts, params))):
        start = time.perf_counter()
        answers = run()
        seconds = time.perf_counter() - start
        assert len(answers) == n
        results[name] = (seconds, sum(len(a.split()) for a in answers) / n)
    print(f"torch threads: {torch.get_num_threads()}; {n} samples ({len(prompts)} questions x {args.samples}), "
          f"max {args.max_new_tokens} new tokens, batch size {args.batch_size}, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")
    for name, (seconds, length) in results.items():
        print(f"{name:>20}: {seconds:7.2f} s  {n / seconds:8.1f} samples/s  mean answer {length:.1f} words")
    (fast, _), (slow, _) = results["batched HFSampler"], results["per-sample generate"]
    print(f"batched / per-sample speed-up: {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
