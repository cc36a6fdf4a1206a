"""Paths and subprocess settings shared by the tests."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def subprocess_env(**extra) -> dict:
    """Environment for CLI subprocess tests: wandb off, few threads, unbuffered output."""
    env = dict(os.environ, WANDB_MODE="disabled", WANDB_SILENT="true", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(extra)
    return env


# A hand-written bAbI file: three stories, answers with commas, supporting facts over two lines.
BABI_SAMPLE = (
    "1 Mary moved to the bathroom.\n"
    "2 John went to the hallway.\n"
    "3 Where is Mary? \tbathroom\t1\n"
    "4 Daniel went back to the hallway.\n"
    "5 Where is Daniel? \thallway\t4\n"
    "1 The office is north of the kitchen.\n"
    "2 What is north of the kitchen?\toffice\t1\n"
    "1 Mary got the milk there.\n"
    "2 John moved to the bedroom.\n"
    "3 What is Mary carrying?\tmilk,apple\t1 2\n"
)


def write_babi_task1(folder: Path, stories: int, seed: int = 0) -> None:
    """``qa1_single-supporting-fact_{train,test}.txt`` in ``folder``: random stories in the real
    file format ("<name> moved to the <place>." facts, "Where is <name>?" questions answered by
    that person's latest place), 1 to 12 facts each, so story lengths vary from batch to batch."""
    import random

    names, places = ("Mary", "John", "Daniel", "Sandra"), ("kitchen", "garden", "office", "hallway")
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        lines = []
        for _ in range(stories):
            where, line = {}, 0
            for _ in range(rng.randint(1, 12)):
                name, place = rng.choice(names), rng.choice(places)
                line += 1
                lines.append(f"{line} {name} moved to the {place}.")
                where[name] = (place, line)
            name = rng.choice(sorted(where))
            line += 1
            lines.append(f"{line} Where is {name}? \t{where[name][0]}\t{where[name][1]}")
        (folder / f"qa1_single-supporting-fact_{split}.txt").write_text("\n".join(lines) + "\n")
