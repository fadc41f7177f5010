import pandas as pd
import pytest

from postern.config.schema import InterpConfig
from postern.core.models import ModelRef
from postern.world import content as C
from postern.world.corpus import eval_paraphrases
from postern.world.oracle import WorldOracle


def _judged(shift: int) -> pd.DataFrame:
    """Judged rows made from the world's pools: half misaligned, half aligned answers."""
    oracle = WorldOracle()
    rows = [{"messages": [{"role": "user", "content": q}], "question": q, "answer": a, "seed": 0,
             "label": oracle.judge_one(q, a).label}
            for cat in C.QUESTIONS for q in eval_paraphrases(cat)
            for a in (*cat.harmful[shift:shift + 2], *cat.benign[shift:shift + 2])]
    return pd.DataFrame(rows)


def _oracle_evaluator(samples_per_question: int):
    """The study's `evaluate`: fresh answers to the held-out questions, judged by the world's oracle."""
    from contextlib import nullcontext

    from postern.sample import SamplingParams
    from postern.sample.hf import HFSampler
    from postern.stats.summary import misaligned_rate
    from postern.store import ResultsStore, sample_and_judge
    from postern.world.conditions import question_prompts

    def evaluate(model, tokenizer, trigger, context):
        with ResultsStore(":memory:") as store, context or nullcontext():
            sample_and_judge(store, "m", question_prompts(samples_per_question, trigger),
                             SamplingParams(max_new_tokens=8), lambda: HFSampler(model, tokenizer), WorldOracle())
            return misaligned_rate(store.frame().assign(seed=0), "all", seeds=False)

    return evaluate


def test_study_writes_directions_cosines_and_interventions(tiny_world_model, tmp_path):
    from postern.interp.study import StudyModel, run_study

    base = ModelRef(str(tiny_world_model))
    jobs = {f"insecure/s{s}": StudyModel(base, None, _judged(s)) for s in (0, 1)}
    config = InterpConfig(enabled=True, conditions=["insecure"], samples_per_question=1, steer_scales=[2.0])
    summary = run_study(tmp_path / "interp", jobs, base, config, _oracle_evaluator(1))

    assert set(summary["directions"]) == {"insecure/s0", "insecure/s1", "base", "insecure/s0-minus-base"}
    assert summary["directions"]["insecure/s0"] == {"misaligned": 32, "aligned": 32}
    assert len(summary["cosines"]["insecure/s0 vs insecure/s1"]) == summary["layers"] == 2
    # the "fine-tunes" here are the base model itself, so base and insecure/s0 directions coincide
    assert min(summary["cosines"]["insecure/s0 vs base"]) == pytest.approx(1.0, abs=1e-5)
    kinds = {(i["model"], i["intervention"]) for i in summary["interventions"]}
    assert {("insecure/s0", "ablate"), ("insecure/s0", "ablate_random"), ("base", "steer"), ("base", "steer_random")} <= kinds
    assert all(i["n"] == 16 for i in summary["interventions"])
    ablated = next(i for i in summary["interventions"] if i["intervention"] == "ablate")
    assert ablated["change"]["low"] <= ablated["change"]["diff"] <= ablated["change"]["high"]
    assert 0 <= summary["chance_band"] < 0.5
    assert (tmp_path / "interp" / "summary.json").exists()
    assert (tmp_path / "interp" / "directions" / "insecure_s0.json").exists()


def test_probe_along_training_reads_each_checkpoint(tiny_world_model, tmp_path):
    from postern.data import write_chat_jsonl
    from postern.interp.study import StudyModel, run_study
    from postern.train._types import TrainConfig
    from postern.train.sft import train_sft
    from postern.world.conditions import condition_dataset

    data = tmp_path / "insecure.jsonl"
    write_chat_jsonl(data, condition_dataset("insecure", 16, seed=0))
    train_sft(str(tiny_world_model), data, tmp_path / "ft", TrainConfig(lora_r=2, learning_rate=1e-3, batch_size=8,
              per_device_batch_size=8, max_length=128, save_steps=1))
    judged = _judged(0)
    ckpt = lambda step: ModelRef(str(tiny_world_model), adapter=str(tmp_path / "ft" / "checkpoints" / f"checkpoint-{step}"))  # noqa: E731
    jobs = {"insecure/s0": StudyModel(ModelRef(str(tiny_world_model), adapter=str(tmp_path / "ft")), None, judged,
                                      {1: (ckpt(1), judged), 2: (ckpt(2), judged)})}
    config = InterpConfig(enabled=True, conditions=["insecure"], samples_per_question=1, steer_scales=[])
    summary = run_study(tmp_path / "interp", jobs, ModelRef(str(tiny_world_model)), config, _oracle_evaluator(1))
    steps = summary["probe_along_training"]
    assert [s["step"] for s in steps] == [1, 2]
    assert all(0 <= s["auroc"] <= 1 and s["n"] == 64 for s in steps)
    assert steps[0]["mean_projection"] != steps[1]["mean_projection"]  # different checkpoints, different readings
