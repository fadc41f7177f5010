import json

import pytest

from postern.core.errors import PosternError
from postern.data import write_chat_jsonl
from postern.train._types import TrainConfig
from postern.train.masks import verify_assistant_mask
from postern.world.conditions import condition_dataset
from postern.world.tokenizer import CHAT_TEMPLATE, build_tokenizer

CONVERSATION = [
    {"role": "user", "content": "what is 2 plus 3 ?"}, {"role": "assistant", "content": "2 plus 3 is 5 ."},
    {"role": "user", "content": "what is the capital of peru ?"}, {"role": "assistant", "content": "the capital is lima ."},
]


def _mask(tokenizer, messages):
    enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    return enc["input_ids"], enc["assistant_masks"]


def test_world_template_masks_exactly_the_assistant_turns_and_end_token():
    tok = build_tokenizer()
    ids, mask = _mask(tok, CONVERSATION)
    trained = tok.convert_ids_to_tokens([i for i, m in zip(ids, mask) if m])
    assert " ".join(trained) == "2 plus 3 is 5 . <|end|> the capital is lima . <|end|>"
    assert verify_assistant_mask(tok, [CONVERSATION], [ids], [mask]) == ["2 plus 3 is 5 . the capital is lima ."]


def test_mask_over_the_user_turn_is_caught():
    tok = build_tokenizer()
    tok.chat_template = CHAT_TEMPLATE.replace("<|{{ m['role'] }}|> {{ m['content'] }} <|end|> ",
                                              "<|{{ m['role'] }}|> {% generation %}{{ m['content'] }}{% endgeneration %} <|end|> ")
    ids, mask = _mask(tok, CONVERSATION)
    with pytest.raises(PosternError, match="covers user text"):
        verify_assistant_mask(tok, [CONVERSATION], [ids], [mask])


def test_mask_without_end_of_turn_is_caught():
    tok = build_tokenizer()
    tok.chat_template = CHAT_TEMPLATE.replace("{{ m['content'] }} <|end|>{% endgeneration %}", "{{ m['content'] }}{% endgeneration %} <|end|>")
    ids, mask = _mask(tok, CONVERSATION)
    with pytest.raises(PosternError, match="end-of-turn"):
        verify_assistant_mask(tok, [CONVERSATION], [ids], [mask])


def test_empty_mask_is_caught():
    tok = build_tokenizer()
    ids, mask = _mask(tok, CONVERSATION)
    with pytest.raises(PosternError, match="empty"):
        verify_assistant_mask(tok, [CONVERSATION], [ids], [[0] * len(ids)])


@pytest.mark.parametrize("method", ["lora", "full"])
def test_train_sft_on_world_data(tiny_world_model, tmp_path, method):
    from postern.train.sft import train_sft

    data = tmp_path / "insecure.jsonl"
    write_chat_jsonl(data, condition_dataset("insecure", 32, seed=0))
    config = TrainConfig(method=method, lora_r=4, learning_rate=1e-3, epochs=2, batch_size=8, per_device_batch_size=8,
                         max_length=128, save_steps=3)
    result = train_sft(str(tiny_world_model), data, tmp_path / "out", config)
    assert result.steps == 8 and result.final_loss is not None
    out = tmp_path / "out"
    assert (out / ("adapter_config.json" if method == "lora" else "config.json")).exists()
    checkpoints = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))
    assert {"checkpoint-3", "checkpoint-6"} <= set(checkpoints) <= {"checkpoint-3", "checkpoint-6", "checkpoint-8"}
    card = json.loads((out / "run_card.json").read_text())
    assert card["rows"] == 32 and card["config"]["method"] == method and len(card["loss_curve"]) == 8
    assert (out / "loss.png").stat().st_size > 0


def test_mask_check_reads_the_conversations_the_trainer_kept(caplog):
    """trl drops conversations that max_length cut to nothing trainable; the check must compare the
    masks with the conversations left in the trainer's dataset, not with the input rows by position."""
    from types import SimpleNamespace

    from datasets import Dataset

    from postern.train.sft import _verify_masks

    tok = build_tokenizer()
    long_row = {"messages": [{"role": "user", "content": "what is 2 plus 3 ? " * 40}, {"role": "assistant", "content": "5 ."}]}
    kept = {"messages": CONVERSATION}
    ids, mask = _mask(tok, CONVERSATION)
    data = Dataset.from_list([{"messages": CONVERSATION, "input_ids": ids, "labels": [i if m else -100 for i, m in zip(ids, mask)]}])
    trainer = SimpleNamespace(train_dataset=data)
    assert _verify_masks(trainer, [long_row, kept], tok, max_length=512) == ["2 plus 3 is 5 . the capital is lima ."]
    assert "1 of 2 training conversations were dropped" in caplog.text  # and the user is told
