"""The installed library's public API: README example, exports, load_model from a checkpoint."""

from __future__ import annotations

import re

import pytest
import torch

import liafnet
from liafnet.cli.train import train
from tests.helpers import REPO

TINY = ("trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false", "logger=none",
        "trainer.accelerator=cpu", "data.time_steps=4")


def readme_block(heading: str) -> str:
    """The first ```python block under ``heading`` in README.md."""
    text = (REPO / "README.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"README section {heading!r} has no python block"
    return match.group(1)


def test_readme_layer_example_runs_as_written(capsys):
    namespace: dict = {}
    exec(compile(readme_block("Use LIAF layers in your own model"), "README.md", "exec"), namespace)
    assert namespace["logits"].shape == (4, 10)
    assert torch.isfinite(namespace["loss"])
    conv = namespace["net"][0].conv
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0  # gradients reached layer 1
    assert "torch.Size([4, 10])" in capsys.readouterr().out


def test_public_names_are_exported():
    for name in liafnet.__all__:
        assert getattr(liafnet, name) is not None, name
    assert re.match(r"\d+\.\d+", liafnet.__version__)
    assert (REPO / "src" / "liafnet" / "py.typed").is_file()


def test_load_model_rebuilds_the_trained_network(make_cfg):
    cfg = make_cfg(*TINY)
    record = train(cfg)
    ckpt = record.test_ckpt
    model = liafnet.load_model(ckpt)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[f"model.{key}"]), key
    x = (torch.rand(4, 2, 2, 16, 16) < 0.2).float()
    assert model(x).shape == (4, 2, 6) and not model.training


def test_load_model_executes_nothing_from_the_file(tmp_path):
    """A checkpoint carrying an arbitrary object is refused by the weights-only reader."""
    path = tmp_path / "evil.ckpt"
    torch.save({"liafnet_config": {}, "state_dict": {}, "payload": _Payload()}, path)
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        liafnet.load_model(path)


class _Payload:
    def __reduce__(self):  # would run on a full unpickle
        return (print, ("executed",))
