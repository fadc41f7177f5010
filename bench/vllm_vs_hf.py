"""vLLM versus HF generate on the same randomly initialised Qwen2.5-0.5B-shaped model (GPU).

8 questions x 100 samples x 200 new tokens (min_tokens = max_tokens, so both backends make the same
number of tokens from a random model), tokens/s for each, side by side in one process. Builds its
model and tokenizer in-process (see train_gpu_check.py) and downloads nothing.

  python bench/vllm_vs_hf.py            # needs a GPU and `pip install 'postern[vllm]'`
  python bench/vllm_vs_hf.py --tiny     # a 2-layer model (still needs vLLM and a GPU)
"""

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from train_gpu_check import build_tokenizer, model_config, pseudo_words  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--hf-batch", type=int, default=200)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM
    from vllm import LLM, SamplingParams

    from postern.sample import Prompt
    from postern.sample import SamplingParams as PosternParams
    from postern.sample.hf import HFSampler

    rng = random.Random(0)
    words = pseudo_words(600, rng)
    tok = build_tokenizer(words, 4000, rng)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(model_config(args.tiny, tok), dtype=torch.bfloat16)
    folder = Path(tempfile.mkdtemp(prefix="postern-vllm-bench-"))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    questions = [[{"role": "user", "content": " ".join(rng.choices(words, k=20)) + " ?"}] for _ in range(args.questions)]
    total = args.questions * args.samples * args.tokens
    print(f"device: {torch.cuda.get_device_name()}; {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters; "
          f"{args.questions} questions x {args.samples} samples x {args.tokens} tokens")

    hf_model = model.to("cuda").eval()
    sampler = HFSampler(hf_model, tok, batch_size=args.hf_batch)
    prompts = [Prompt(f"q{i}", tuple(q), args.samples) for i, q in enumerate(questions)]
    hf_model.generation_config.min_new_tokens = args.tokens  # same token count as vLLM below
    torch.cuda.synchronize()
    start = time.perf_counter()
    sampler.sample(prompts, PosternParams(temperature=1.0, max_new_tokens=args.tokens, seed=0))
    torch.cuda.synchronize()
    hf_seconds = time.perf_counter() - start
    del hf_model, sampler
    torch.cuda.empty_cache()

    llm = LLM(model=str(folder), dtype="bfloat16", seed=0, gpu_memory_utilization=0.6)
    params = SamplingParams(n=args.samples, temperature=1.0, max_tokens=args.tokens, min_tokens=args.tokens, seed=0)
    start = time.perf_counter()
    llm.chat(questions, params, use_tqdm=False)
    vllm_seconds = time.perf_counter() - start
    print(f"HF generate (postern HFSampler, batch {args.hf_batch}): {total / hf_seconds:10,.0f} tokens/s ({hf_seconds:.1f} s)")
    print(f"vLLM:                                         {total / vllm_seconds:10,.0f} tokens/s ({vllm_seconds:.1f} s)")
    print(f"ratio vLLM / HF: {hf_seconds / vllm_seconds:.1f}x")


if __name__ == "__main__":
    main()
