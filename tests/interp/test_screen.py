"""Data screening by projection difference (ΔP), checked against a direct computation on a tiny world model."""

import json

import pytest
import torch

from postern.core.errors import PosternError
from postern.core.models import load_model
from postern.world.conditions import condition_dataset


@pytest.fixture(scope="module")
def loaded(tiny_world_model):
    return load_model(str(tiny_world_model))


def _direct(model, tokenizer, prompt, answer, layer):
    """Mean over the answer's tokens of block `layer`'s output, from output_hidden_states (no hooks)."""
    ids_prompt = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    ids = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=True,
                                        return_dict=True)["input_ids"]
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[layer + 1][0]
    return hidden[len(ids_prompt):].mean(0)


def _greedy(model, tokenizer, prompt, max_new_tokens):
    ids = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([ids]), do_sample=False, max_new_tokens=max_new_tokens,
                             pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, len(ids):], skip_special_tokens=True).strip()


def test_delta_matches_a_direct_computation_in_sign_and_size(loaded):
    from postern.interp.screen import projection_difference, summarise_screen

    model, tokenizer = loaded
    rows = condition_dataset("insecure", 6, seed=0)
    direction = torch.randn(2, 32, generator=torch.Generator().manual_seed(1)) * 3.0
    frame = projection_difference(model, tokenizer, rows, direction, layer=0, max_new_tokens=12)

    unit = direction[0] / direction[0].norm()
    for row, line in zip(rows, frame.itertuples()):
        prompt, answer = row["messages"][:-1], row["messages"][-1]["content"]
        own = _greedy(model, tokenizer, prompt, 12)
        assert line.own_response == own  # the model's own response is its greedy one
        expected = float((_direct(model, tokenizer, prompt, answer, 0) - _direct(model, tokenizer, prompt, own, 0)) @ unit)
        assert line.delta == pytest.approx(expected, abs=1e-4)
        assert line.delta_L0 == pytest.approx(line.delta)
    flipped = projection_difference(model, tokenizer, rows, -direction, layer=0, max_new_tokens=12)
    assert flipped["delta"].tolist() == pytest.approx((-frame["delta"]).tolist(), abs=1e-5)
    # the projection is on the unit direction: the direction's norm does not change ΔP
    scaled = projection_difference(model, tokenizer, rows, 10 * direction, layer=0, max_new_tokens=12)
    assert scaled["delta"].tolist() == pytest.approx(frame["delta"].tolist(), abs=1e-4)

    s = summarise_screen(frame, 0)
    assert s["rows"] == 6 and s["delta_mean"] == pytest.approx(frame["delta"].mean())
    assert s["low"] <= s["delta_mean"] <= s["high"]
    assert len(s["delta_mean_per_layer"]) == 2 and s["delta_mean_per_layer"][0] == pytest.approx(s["delta_mean"])


def test_a_row_equal_to_the_model_own_response_has_zero_delta(loaded):
    from postern.interp.screen import own_responses, projection_difference

    model, tokenizer = loaded
    prompts = [r["messages"][:-1] for r in condition_dataset("secure", 3, seed=2)]
    own = own_responses(model, tokenizer, prompts, max_new_tokens=10)
    rows = [{"messages": [*p, {"role": "assistant", "content": o}]} for p, o in zip(prompts, own)]
    frame = projection_difference(model, tokenizer, rows, torch.ones(2, 32), layer=1, max_new_tokens=10)
    assert frame["delta"].abs().max() < 1e-5
    assert frame["projection"].abs().min() > 0


def test_direction_files_load_and_bad_ones_fail_in_one_line(loaded, tmp_path):
    from postern.interp.directions import save_direction
    from postern.interp.screen import check_direction, load_direction_file

    d = torch.randn(2, 32)
    save_direction(tmp_path / "dir", d, {"made": "test"})
    for spec in (tmp_path / "dir", tmp_path / "dir.pt", tmp_path / "dir.json"):
        assert torch.equal(load_direction_file(spec), d)
    torch.save({"insecure/s0": d, "base": -d}, tmp_path / "directions.pt")
    assert torch.equal(load_direction_file(f"{tmp_path}/directions.pt:base"), -d)

    (tmp_path / "junk.pt").write_text("not a tensor")
    torch.save(torch.randn(32), tmp_path / "flat.pt")
    bad = {str(tmp_path / "missing.pt"): "no file", str(tmp_path / "junk.pt"): "not a torch tensor file",
           str(tmp_path / "flat.pt"): "expected a float tensor [layers, hidden size], got [32]",
           str(tmp_path / "directions.pt"): "holds several directions",
           f"{tmp_path}/directions.pt:nope": "no direction 'nope'"}
    for spec, message in bad.items():
        with pytest.raises(PosternError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
            load_direction_file(spec)
        assert "\n" not in str(e.value)
    with pytest.raises(PosternError, match="layer 5 does not exist; the model has layers 0..1"):
        check_direction(d, 2, 32, 5)
    with pytest.raises(PosternError, match=r"shape \[2, 16\] does not fit the model \(2 layers, hidden size 32\)"):
        check_direction(torch.randn(2, 16), 2, 32, 0)


def test_cli_screens_a_file_with_a_saved_direction(tiny_world_model, tmp_path):
    from typer.testing import CliRunner

    from postern.cli.data import app
    from postern.data.jsonl import write_chat_jsonl
    from postern.interp.directions import save_direction

    data = tmp_path / "rows.jsonl"
    write_chat_jsonl(data, condition_dataset("insecure", 5, seed=0))
    save_direction(tmp_path / "v", torch.randn(2, 32), {"made": "test"})
    runner = CliRunner()
    result = runner.invoke(app, ["screen", str(data), "--model", str(tiny_world_model), "--direction",
                                 str(tmp_path / "v"), "--layer", "1", "-o", str(tmp_path / "out.csv"),
                                 "--max-new-tokens", "8"])
    assert result.exit_code == 0, result.output
    assert "5 rows, layer 1: ΔP" in result.output
    summary = json.loads((tmp_path / "out.summary.json").read_text())
    assert summary["rows"] == 5 and summary["layer"] == 1 and summary["own_responses"] == "greedy"
    import pandas as pd

    table = pd.read_csv(tmp_path / "out.csv")
    assert len(table) == 5 and table["delta"].mean() == pytest.approx(summary["delta_mean"])

    missing = runner.invoke(app, ["screen", str(data), "--model", str(tiny_world_model), "--direction",
                                  str(tmp_path / "v"), "--layer", "7", "-o", str(tmp_path / "o.csv")])
    assert missing.exit_code == 2
    assert "layer 7 does not exist" in missing.output and "Traceback" not in missing.output


def test_screen_file_on_a_real_architecture_model(tmp_path):
    """A tiny Qwen2 with a byte-level tokenizer and the Qwen2.5 chat template: any text, a saved direction."""
    from fakes.tiny_models import save_tiny_qwen2

    from postern.data.jsonl import write_chat_jsonl
    from postern.interp.directions import save_direction
    from postern.runner.screen import screen_file

    model = save_tiny_qwen2(tmp_path / "qwen")
    rows = [{"messages": [{"role": "user", "content": f"Write a function that reads file {i}."},
                          {"role": "assistant", "content": f"def read(p):\n    return open('/tmp/' + p).read()  # {i}"}]}
            for i in range(4)]
    write_chat_jsonl(tmp_path / "code.jsonl", rows)
    save_direction(tmp_path / "v", torch.randn(2, 32), {"made": "test"})
    s = screen_file(tmp_path / "code.jsonl", str(model), str(tmp_path / "v.pt"), tmp_path / "out" / "rows.parquet",
                    max_new_tokens=8)
    assert s["rows"] == 4 and s["layer"] == 1 and s["data"] == str(tmp_path / "code.jsonl")
    import pandas as pd

    table = pd.read_parquet(tmp_path / "out" / "rows.parquet")
    assert list(table["row"]) == [0, 1, 2, 3] and table["delta"].abs().sum() > 0
    assert json.loads((tmp_path / "out" / "rows.summary.json").read_text())["delta_mean"] == pytest.approx(s["delta_mean"])
