"""The micro-batch / gradient-checkpointing chooser as a pure function of free memory and model size."""

import pytest

from postern.train._types import TrainConfig
from postern.train.gpu_defaults import ModelShape, choose, memory_need, resolve

GB = 1e9
QWEN_05B = ModelShape(params=494_000_000, hidden=896, layers=24, vocab=151_936)
QWEN_32B = ModelShape(params=32_800_000_000, hidden=5120, layers=64, vocab=152_064)


def test_a_small_model_on_an_h200_gets_a_large_micro_batch_without_checkpointing():
    """The issue's case: micro-batch 16, checkpointing off made 27k tok/s against 3.9k with 4 x 4 + checkpointing."""
    choice = choose(QWEN_05B, free_bytes=140 * GB, seq_len=2048, per_device_batch=16)
    assert (choice.micro_batch, choice.checkpointing) == (16, False)
    assert "per_device_batch_size=16, gradient_checkpointing=False" in choice.describe()


def test_less_memory_gives_a_smaller_micro_batch_then_checkpointing():
    on_24gb = choose(QWEN_05B, free_bytes=24 * GB, seq_len=2048, per_device_batch=16)
    assert on_24gb.micro_batch < 16 and on_24gb.need_bytes <= on_24gb.budget_bytes
    # a 32B LoRA on an H200: without checkpointing only one 2048-token sequence fits, too little work per step
    big = choose(QWEN_32B, free_bytes=140 * GB, seq_len=2048, per_device_batch=16)
    assert big.checkpointing and big.micro_batch >= 4 and big.need_bytes <= big.budget_bytes


def test_more_free_memory_never_means_a_smaller_micro_batch_or_more_checkpointing():
    choices = [choose(QWEN_05B, free_bytes=gb * GB, seq_len=1024, per_device_batch=32) for gb in range(4, 200, 4)]
    for small, large in zip(choices, choices[1:]):
        assert (large.checkpointing, -large.micro_batch) <= (small.checkpointing, -small.micro_batch)


def test_a_model_that_does_not_fit_gets_the_smallest_setting():
    choice = choose(QWEN_32B, free_bytes=40 * GB, seq_len=2048, per_device_batch=16)
    assert (choice.micro_batch, choice.checkpointing) == (1, True) and choice.need_bytes > choice.budget_bytes


def test_a_setting_the_file_fixes_is_kept_and_the_other_chosen_around_it():
    fixed = choose(QWEN_05B, free_bytes=24 * GB, seq_len=2048, per_device_batch=16, micro_batch=16)
    assert fixed.micro_batch == 16 and fixed.checkpointing  # 16 x 2048 tokens do not fit in 24 GB without it
    no_ckpt = choose(QWEN_05B, free_bytes=24 * GB, seq_len=2048, per_device_batch=16, checkpointing=False)
    assert not no_ckpt.checkpointing and no_ckpt.need_bytes <= no_ckpt.budget_bytes
    assert choose(QWEN_05B, 140 * GB, 2048, 16, checkpointing=True).checkpointing


def test_micro_batch_divides_the_per_device_batch():
    choice = choose(QWEN_05B, free_bytes=16 * GB, seq_len=2048, per_device_batch=12)
    assert 12 % choice.micro_batch == 0


def test_full_fine_tuning_counts_gradients_and_optimizer_states():
    lora = memory_need(QWEN_05B, 1, 512, False, full=False, bf16=True)
    full = memory_need(QWEN_05B, 1, 512, False, full=True, bf16=True)
    assert full - lora == pytest.approx(QWEN_05B.params * 14)


def test_on_cpu_auto_keeps_the_old_defaults():
    config, choice = resolve(TrainConfig(batch_size=16), model=None, devices=1, bf16=False, gpu=False)
    assert (config.per_device_batch_size, config.gradient_checkpointing, choice) == (2, False, None)
    odd, _ = resolve(TrainConfig(batch_size=3), model=None, devices=1, bf16=False, gpu=False)
    assert odd.per_device_batch_size == 1
    fixed = TrainConfig(per_device_batch_size=4, gradient_checkpointing=True)
    assert resolve(fixed, model=None, devices=1, bf16=False, gpu=True) == (fixed, None)
