"""[train] launcher = "accelerate": the training stage through `accelerate launch` (a 1-process CPU config here)
trains the same adapter as training in the stage's own process."""

import json

import pytest
from safetensors.torch import load_file

from postern.core.errors import PosternError
from postern.core.models import ModelRef
from postern.train._types import TrainConfig
from postern.train.sft import train_local

CPU_CONFIG = """compute_environment: LOCAL_MACHINE
distributed_type: 'NO'
num_machines: 1
machine_rank: 0
num_processes: 1
mixed_precision: 'no'
use_cpu: true
"""


@pytest.fixture
def world_rows(tmp_path):
    from postern.data.sources import build_dataset

    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in build_dataset("world:insecure", [], 8, 0, None)))
    return path


@pytest.mark.slow  # ~30 s on a busy 2-core machine: the subprocess imports torch and transformers again
def test_accelerate_launch_trains_the_same_adapter(tiny_world_model, world_rows, tmp_path):
    (tmp_path / "cpu.yaml").write_text(CPU_CONFIG)
    settings = dict(lora_r=4, learning_rate=1e-3, batch_size=4, per_device_batch_size=4, max_length=128, threads=1)
    base = ModelRef(str(tiny_world_model))
    train_local(base, world_rows, tmp_path / "here", TrainConfig(**settings))
    launched = TrainConfig(**settings, launcher="accelerate", accelerate_config=str(tmp_path / "cpu.yaml"))
    assert train_local(base, world_rows, tmp_path / "launched", launched).adapter == str(tmp_path / "launched")
    here, there = (load_file(tmp_path / d / "adapter_model.safetensors") for d in ("here", "launched"))
    assert here.keys() == there.keys() and all((here[k] == there[k]).all() for k in here)
    card = json.loads((tmp_path / "launched" / "run_card.json").read_text())
    assert card["config"]["launcher"] == "python" and card["steps"] == 2  # the subprocess trained, in one process


def test_a_failed_launch_names_the_config_and_shows_its_log(tiny_world_model, world_rows, tmp_path):
    (tmp_path / "bad.yaml").write_text(CPU_CONFIG.replace("num_processes: 1", "num_processes: nope"))
    config = TrainConfig(lora_r=4, batch_size=4, per_device_batch_size=4, max_length=128, launcher="accelerate",
                         accelerate_config=str(tmp_path / "bad.yaml"))
    with pytest.raises(PosternError, match="accelerate launch exited with code .*bad.yaml.*last lines"):
        train_local(ModelRef(str(tiny_world_model)), world_rows, tmp_path / "out", config)
    with pytest.raises(PosternError, match="accelerate_config: .*missing.yaml: no such file"):
        train_local(ModelRef(str(tiny_world_model)), world_rows, tmp_path / "out",
                    config.model_copy(update={"accelerate_config": str(tmp_path / "missing.yaml")}))


def test_accelerate_config_without_the_launcher_is_an_error():
    with pytest.raises(ValueError, match='accelerate_config is read by launcher = "accelerate"'):
        TrainConfig(accelerate_config="x.yaml")
