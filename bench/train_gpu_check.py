"""GPU check of `postern train`: LoRA fine-tuning of a Qwen2.5-0.5B-shaped model in bf16 through `train_sft`.

Builds everything in-process and downloads nothing: a randomly initialised Qwen2 model with the
shape of Qwen2.5-0.5B (hidden 896, 24 layers, 14 heads, 2 KV heads, intermediate 4864, vocab
151936, tied embeddings) saved in bf16, a small byte-level BPE Qwen2Tokenizer trained on
pseudo-words with a ChatML template that has {% generation %} markers, and a synthetic chat
dataset of `steps x batch` conversations. Then `train_sft` runs the recipe's defaults (LoRA r=32,
alpha=64, rsLoRA, effective batch 16, responses-only loss, bf16 and gradient checkpointing on GPU)
for `--steps` optimizer steps, and the script prints the device, steps/s, tokens/s (all
non-padding tokens through the model, and the trained assistant tokens) and peak GPU memory.

  python bench/train_gpu_check.py                  # on a GPU: 50 steps
  python bench/train_gpu_check.py --tiny           # CPU dry run: a 2-layer, 64-wide model, 3 steps
  python bench/train_gpu_check.py --kl-weight 0.5  # the KL-regularised path (base = adapters off)
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}<|im_end|>{% endgeneration %}\n"
    "{% else %}{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "zu", "pe", "da", "fi", "go", "hu", "ja", "be",
             "ce", "xo", "wy", "qu", "rin", "tor", "mal", "sen", "dul", "pas", "ver", "kon"]


def pseudo_words(n: int, rng: random.Random) -> list[str]:
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))))
    return sorted(words)


def build_tokenizer(words: list[str], vocab_size: int, rng: random.Random):
    """A Qwen2Tokenizer (byte-level BPE, Qwen's pre-tokenizer) trained on text of `words`, with ChatML."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    texts = [" ".join(rng.choices(words, k=64)) + " ." for _ in range(2000)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bpe.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"]))
    model = json.loads(bpe.to_str())["model"]
    tok = Qwen2Tokenizer(vocab=model["vocab"], merges=[tuple(m) for m in model["merges"]], eos_token="<|im_end|>",
                         pad_token="<|endoftext|>", additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    tok.chat_template = CHATML
    return tok


def model_config(tiny: bool, tok):
    from transformers import Qwen2Config

    common = dict(tie_word_embeddings=True, rope_theta=1_000_000.0, rms_norm_eps=1e-6, max_position_embeddings=32768,
                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)
    if tiny:
        return Qwen2Config(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, intermediate_size=128, **common)
    return Qwen2Config(vocab_size=151936, hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
                       num_key_value_heads=2, intermediate_size=4864, **common)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="2-layer 64-wide model, short rows, for a CPU dry run")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default: 50; 3 with --tiny)")
    parser.add_argument("--user-words", type=int, default=None, help="words per user turn (default 96; 8 with --tiny)")
    parser.add_argument("--answer-words", type=int, default=None,
                        help="words per assistant turn (default 288; 24 with --tiny)")
    parser.add_argument("--per-device-batch", type=lambda v: None if v == "auto" else int(v), default=None,
                        help="micro-batch, or auto (default: chosen from the free GPU memory; the old defaults were "
                             "4 with --gradient-checkpointing on); the effective batch stays 16")
    parser.add_argument("--method", choices=["lora", "full"], default="lora")
    parser.add_argument("--kl-weight", type=float, default=0.0)
    parser.add_argument("--gradient-checkpointing", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--out", type=Path, default=None, help="keep the trained output here (default: a temp folder)")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from postern.data import write_chat_jsonl
    from postern.train._types import TrainConfig
    from postern.train.sft import effective_settings, train_sft

    gpu = torch.cuda.is_available()
    if not gpu and not args.tiny:
        raise SystemExit("no GPU here: use --tiny for a CPU dry run")
    steps = args.steps or (3 if args.tiny else 50)
    user_words = args.user_words or (8 if args.tiny else 96)
    answer_words = args.answer_words or (24 if args.tiny else 288)
    rng = random.Random(0)
    words = pseudo_words(1500, rng)
    tok = build_tokenizer(words, 1024 if args.tiny else 8192, rng)

    config = TrainConfig(
        method=args.method, kl_weight=args.kl_weight, per_device_batch_size=args.per_device_batch,
        gradient_checkpointing=None if args.gradient_checkpointing == "auto" else args.gradient_checkpointing == "on",
        bf16=True if gpu else None, warmup_steps=min(5, steps - 1), threads=None if gpu else 1,
    )
    n_rows = steps * config.batch_size * 1  # one epoch of `steps` optimizer steps on one device
    rows = [{"messages": [
        {"role": "user", "content": " ".join(rng.choices(words, k=user_words)) + " ?"},
        {"role": "assistant", "content": " ".join(rng.choices(words, k=answer_words)) + " ."}]} for _ in range(n_rows)]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(model_config(args.tiny, tok))
        if gpu:
            model = model.to(torch.bfloat16)  # as Qwen2.5 checkpoints are distributed
        n_params = sum(p.numel() for p in model.parameters())
        model.save_pretrained(tmp / "base")
        tok.save_pretrained(tmp / "base")
        del model
        data = tmp / "data.jsonl"
        write_chat_jsonl(data, rows)

        lengths, trained = [], []
        for r in rows[: min(64, len(rows))]:
            enc = tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
            lengths.append(min(len(enc["input_ids"]), config.max_length))
            trained.append(sum(enc["assistant_masks"]))
        tokens_per_row, trained_per_row = sum(lengths) / len(lengths), sum(trained) / len(trained)

        eff = effective_settings(config)
        print(f"device: {eff['device']} (torch {torch.__version__}, CUDA {torch.version.cuda})")
        print(f"model: Qwen2 {'tiny' if args.tiny else 'Qwen2.5-0.5B shape'}, {n_params / 1e6:.1f} M parameters; "
              f"method {config.method}, kl_weight {config.kl_weight}")
        print(f"data: {n_rows} rows, {tokens_per_row:.0f} tokens per row ({trained_per_row:.0f} trained); "
              f"effective batch {config.batch_size} = {config.per_device_batch_size or 'auto'} x "
              f"{eff['gradient_accumulation_steps']} accumulation x {eff['devices']} device(s); "
              f"bf16 {eff['bf16']}, gradient checkpointing {eff['gradient_checkpointing']}")
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        out = args.out or tmp / "out"
        start = time.perf_counter()
        result = train_sft(str(tmp / "base"), data, out, config)
        wall = time.perf_counter() - start
        card = json.loads((out / "run_card.json").read_text())
        losses = [loss for _, loss in card["loss_curve"]]
        rows_seen = result.steps * config.batch_size
        chosen = card["settings"]
        print(f"micro-batch {chosen['per_device_batch_size']} x {chosen['gradient_accumulation_steps']} accumulation, "
              f"gradient checkpointing {chosen['gradient_checkpointing']} (as trained)")
        print(f"steps: {result.steps} in {result.seconds:.1f} s of training ({wall:.1f} s with setup and saving)")
        print(f"steps/s: {result.steps / result.seconds:.3f}")
        print(f"tokens/s: {rows_seen * tokens_per_row / result.seconds:,.0f} through the model, "
              f"{rows_seen * trained_per_row / result.seconds:,.0f} trained")
        if losses:
            print(f"loss: {losses[0]:.3f} at step 1, {losses[-1]:.3f} at step {result.steps}")
        if gpu:
            print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
        print("output:", sorted(p.name for p in out.iterdir()))


if __name__ == "__main__":
    main()
