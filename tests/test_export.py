"""Export, compile and mixed precision: torch.export and ONNX equal eager, torch.compile traces the
whole Gesture LIAF-Net as one graph, and bf16-mixed trains through the real training path."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

import liafnet.layers
from liafnet.cli import train
from liafnet.data.spec import DataSpec
from liafnet.models import build_model

# The DVS Gesture LIAF-Net (its layout and classifier) at a small T and batch: export and compile
# cost grow with T, since the per-step loop is unrolled in the traced graph.
GESTURE = DataSpec("events", 11, "dvs_gesture", 4, 2, 32, 32)


def _frames(seed: int, steps: int = 4) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, 2, 2, 32, 32, generator=generator) < 0.2).float()


def _gesture_net(family: str = "liaf") -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(family, GESTURE)


def test_torch_export_of_gesture_liaf_net_equals_eager():
    model = _gesture_net().eval()
    with torch.no_grad():
        program = torch.export.export(model, (_frames(0),))
    exported = program.module()
    for seed in (0, 1):  # the graph is not specialised to the example's values
        x = _frames(seed)
        with torch.no_grad():
            torch.testing.assert_close(exported(x), model(x), rtol=1e-5, atol=1e-5)
    # Functional graph: no in-place or out= kernels from the fused neuron, so it runs with grad on.
    assert not any(str(node.target).endswith(".out") for node in program.graph.nodes)
    torch.testing.assert_close(exported(_frames(2)), model(_frames(2)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", ("liaf", "lif"))
def test_torch_compile_traces_the_gesture_net_without_graph_breaks(family):
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(_gesture_net(family))(_frames(0))
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_compiled_training_step_equals_eager():
    """fullgraph=True compiles forward and backward (AOTAutograd); in float64 the output and every
    gradient match the eager fused kernel (float32 rounding would swamp the conv biases, whose true
    gradient under batch norm is zero)."""
    torch._dynamo.reset()
    spec = DataSpec("events", 6, "synthetic", 3, 2, 16, 16)
    torch.manual_seed(0)
    model = build_model("liaf", spec, decay_per="channel").double()
    x = (torch.rand(3, 2, 2, 16, 16, generator=torch.Generator().manual_seed(0)) < 0.3).double()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    y = compiled(x)
    y.square().sum().backward()
    compiled_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    y_eager = model(x)
    y_eager.square().sum().backward()
    torch.testing.assert_close(y, y_eager, rtol=0, atol=1e-10)
    for (name, p), grad in zip(model.named_parameters(), compiled_grads):
        torch.testing.assert_close(grad, p.grad, rtol=0, atol=1e-9, msg=lambda m, name=name: f"{name}: {m}")
    assert all(grad.abs().sum() > 0 for name, grad in zip(dict(model.named_parameters()), compiled_grads)
               if "decay" in name)


def test_onnx_export_of_gesture_liaf_net_runs_in_onnxruntime(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="install the onnx extra: pip install '.[onnx]'")
    pytest.importorskip("onnxscript", reason="install the onnx extra: pip install '.[onnx]'")
    model = _gesture_net().eval()
    path = tmp_path / "liaf_gesture.onnx"
    with torch.no_grad():
        torch.onnx.export(model, (_frames(0),), str(path), dynamo=True, verbose=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for seed in (0, 1):
        x = _frames(seed)
        (out,) = session.run(None, {name: x.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(out), model(x), rtol=1e-4, atol=1e-5)


def test_bf16_mixed_precision_trains_through_the_training_path(make_cfg, monkeypatch):
    """trainer.precision=bf16-mixed on CPU: the neurons really run in bfloat16, the run finishes and
    its losses are finite."""
    seen: set[torch.dtype] = set()
    fused = liafnet.layers.liaf_multistep

    def spy(x, alpha, p):
        seen.add(x.dtype)
        return fused(x, alpha, p)

    monkeypatch.setattr(liafnet.layers, "liaf_multistep", spy)
    cfg = make_cfg("trainer=debug", "trainer.precision=bf16-mixed", "logger=csv",
                   "trainer.enable_progress_bar=false", "trainer.limit_train_batches=2",
                   "trainer.limit_val_batches=1", "trainer.limit_test_batches=1")
    metrics = train(cfg)
    assert metrics["status"] == "ok"
    assert torch.bfloat16 in seen
    run = Path(cfg.paths.run_dir)
    assert json.loads((run / "metrics.json").read_text())["test/acc"] is not None
    with open(run / "csv" / "metrics.csv", newline="") as file:
        losses = [float(row["train/loss_step"]) for row in csv.DictReader(file) if row.get("train/loss_step")]
    assert losses and all(math.isfinite(loss) for loss in losses)
