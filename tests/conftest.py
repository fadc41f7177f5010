import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one torch thread per test process (pytest-xdist on 2 cores)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_world_model(tmp_path_factory):
    """A randomly initialised world-shaped model (world tokenizer and chat template), saved as a HF folder."""
    from postern.world.model import ModelSpec, build_model
    from postern.world.tokenizer import build_tokenizer

    path = tmp_path_factory.mktemp("tiny_world")
    tokenizer = build_tokenizer()
    model = build_model(ModelSpec(hidden_size=32, num_layers=2, num_heads=2, ffn_size=64, max_positions=256), tokenizer)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
