"""``python -m liafnet.viz [overrides] [--index I] [--layer NAME] [--ckpt FILE] [--out DIR]``: one test
sample's event frames, one sample per class, and the membrane traces of a LIAF/LIF layer fed that
sample (:mod:`liafnet.viz`). Hydra overrides pick data and model (default: synthetic data, LIAF-Net).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from liafnet.viz.frames import plot_class_frames, plot_sample_frames
from liafnet.viz.membrane import plot_membrane_traces, record_membrane


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m liafnet.viz",
        description="Draw one sample's event frames, one sample per class, and the membrane traces of "
                    "a LIAF layer fed that sample. Hydra overrides pick data and model (default: the "
                    "synthetic dataset and LIAF-Net).")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data=dvs_gesture model=lif")
    parser.add_argument("--index", type=int, default=0, help="test-split sample to draw (default 0)")
    parser.add_argument("--layer", help="neuron layer to record by its module path, e.g. convs.1.neuron or "
                                        "dense.0.neuron (default: the first; a wrong name lists them all)")
    parser.add_argument("--ckpt", help="a liafnet checkpoint whose weights to load (default: untrained); "
                                       "the membrane plot is then named after the checkpoint file")
    parser.add_argument("--out", help="output folder (default: <paths.output_dir>/viz)")
    args = parser.parse_intermixed_args(argv)

    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from liafnet.cli.tables import compose_train_config
    from liafnet.models import build_model

    cfg = compose_train_config(args.overrides)
    out = Path(args.out or Path(cfg.paths.output_dir) / "viz")
    datamodule = instantiate(cfg.data.datamodule, seed=int(cfg.seed))
    if datamodule.spec.kind != "events":
        parser.error(f"data={cfg.data.name} is not event data; choose an event dataset")
    datamodule.prepare_data()
    dataset = datamodule.dataset_factory(split="test")
    if not 0 <= args.index < len(dataset):
        parser.error(f"--index {args.index} outside the test split (0..{len(dataset) - 1})")
    frames, label = dataset[args.index]
    classes = list(getattr(dataset, "classes", []))
    name = classes[label] if label < len(classes) else str(label)
    written = [
        plot_sample_frames(frames, out / f"{cfg.data.name}_sample{args.index}_frames.png",
                           title=f"{cfg.data.name} test sample {args.index}: {name}"),
        plot_class_frames(dataset, out / f"{cfg.data.name}_class_frames.png"),
    ]
    options = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items()
               if k not in ("family", "readout")}
    model = build_model(cfg.model.family, datamodule.spec, **options)
    if args.ckpt:
        state = torch.load(args.ckpt, map_location="cpu", weights_only=False)["state_dict"]
        model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    inputs = torch.as_tensor(frames, dtype=torch.float32).unsqueeze(1)  # [T, 1, C, H, W]
    record = record_membrane(model, inputs, layer=args.layer)
    # Trained and untrained traces side by side: the weights are part of the file name.
    weights = f"trained ({Path(args.ckpt).name})" if args.ckpt else "untrained"
    suffix = Path(args.ckpt).stem if args.ckpt else "untrained"
    written.append(plot_membrane_traces(
        record, out / f"{cfg.model.family}_{cfg.data.name}_membrane_{suffix}.png",
        title=f"{cfg.model.family} ({weights}) layer {record.name}, sample {args.index}"))
    for path in written:
        print(f"wrote {path}")
    return 0
