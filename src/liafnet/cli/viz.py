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

    from liafnet import build, config

    cfg = config.compose(["paths.run_dir=.", *args.overrides])  # no run folder: nothing trains
    out = Path(args.out or Path(cfg.paths.output_dir) / "viz")
    if config.data_kind(cfg) != "events":
        parser.error(f"data={cfg.data.name} is not event data; choose an event dataset")
    datamodule = build.build_datamodule(cfg)
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
    if args.ckpt:
        # The network as it was trained (its stored config, checked), its weights read safely.
        checkpoint = build.load_checkpoint(args.ckpt)
        model_cfg = build.run_config_of(checkpoint)
        if model_cfg.data.name != cfg.data.name:
            parser.error(f"--ckpt {args.ckpt} was trained on data={model_cfg.data.name}; pass data="
                         f"{model_cfg.data.name} to draw its samples")
        spec, drawn = build.spec_from_checkpoint(checkpoint), build.spec_of(datamodule)
        if spec is not None and spec != drawn:
            differ = [f"{key}: trained {getattr(spec, key)}, composed {getattr(drawn, key)}"
                      for key in vars(spec) if getattr(spec, key) != getattr(drawn, key)]
            parser.error(f"--ckpt {args.ckpt} does not fit the composed data ({'; '.join(differ)}); pass the "
                         "training run's data overrides, e.g. data.spec.time_steps=...")
        model = build.build_model_from_config(model_cfg, spec or drawn, compile=False)
        model.load_state_dict(build.model_state(checkpoint))
    else:
        model_cfg = cfg
        model = build.build_model_from_config(cfg, build.spec_of(datamodule), compile=False)
    inputs = torch.as_tensor(frames, dtype=torch.float32).unsqueeze(1)  # [T, 1, C, H, W]
    record = record_membrane(model, inputs, layer=args.layer)
    # Trained and untrained traces side by side: the weights are part of the file name.
    weights = f"trained ({Path(args.ckpt).name})" if args.ckpt else "untrained"
    suffix = Path(args.ckpt).stem if args.ckpt else "untrained"
    written.append(plot_membrane_traces(
        record, out / f"{model_cfg.model.family}_{cfg.data.name}_membrane_{suffix}.png",
        title=f"{model_cfg.model.family} ({weights}) layer {record.name}, sample {args.index}"))
    for path in written:
        print(f"wrote {path}")
    return 0

