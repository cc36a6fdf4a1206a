"""Print the sbatch script that `python train.py -m hydra/launcher=slurm <overrides>` would submit.

Runs without a cluster: it composes the same config, hands the launcher settings to submitit exactly
as Hydra's submitit launcher does, and asks submitit to render its submission file.

    python scripts/render_sbatch.py model=liaf,lif trainer.max_epochs=1 hydra.launcher.partition=gpu
"""

from __future__ import annotations

import sys
import tempfile
from unittest import mock

import submitit
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf

from liafnet.config import CONF_DIR


def split_sweep(overrides: list[str]) -> tuple[list[str], int]:
    """Separate plain overrides from sweep overrides; return the plain ones and the job count
    (the product of the sizes of every sweep override)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    plain, jobs = [], 1
    for text, override in zip(overrides, parsed):
        if override.is_sweep_override():
            jobs *= len(list(override.sweep_string_iterator()))
        else:
            plain.append(text)
    return plain, jobs


def render(overrides: list[str]) -> str:
    plain, jobs = split_sweep([o for o in overrides if not o.startswith("hydra/launcher=")])
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose("train", overrides=["hydra/launcher=slurm", *plain], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    params.pop("_target_", None)
    folder = tempfile.mkdtemp(prefix="liafnet-sbatch-")
    # submitit refuses to build a SLURM executor where `srun` is missing; rendering submits nothing.
    with mock.patch.object(submitit.SlurmExecutor, "affinity", return_value=1):
        executor = submitit.AutoExecutor(cluster="slurm", folder=folder,
                                         slurm_max_num_timeout=params.pop("max_num_timeout"))
    params.pop("submitit_folder")
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    params["name"] = "train"
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    slurm = executor._executor
    slurm.parameters["map_count"] = jobs
    command = " ".join(slurm._submitit_command_str.split())
    return slurm._make_submission_file_text(command, "%A_%a")


if __name__ == "__main__":
    print(render(sys.argv[1:]))
