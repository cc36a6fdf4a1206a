"""Run folder names and finding an earlier run: one definition for runs, sweep jobs and table cells.

A folder name is a short readable part plus a stable hash of the run's identity, the command-line
overrides that can change its result. Left out of the identity (and so of names and hashes):

- where things live: ``paths.*``, ``hydra.*`` and any override whose value is a file path
  (``data.root=/big/disk/DvsGesture``), so moving the data keeps every table cell's folder;
- how a run is watched or resumed: ``ckpt_path``, ``force``, ``logger``, ``callbacks`` (extra
  callbacks from the command line observe a run: monitors, profilers), ``trainer.enable_progress_bar``.

Everything else counts, ``trainer.max_epochs`` included: a table rerun with another budget gets new
cells instead of silently reusing results of the old one. The hash covers the full identity; the
readable part is cut to a few dozen characters, so no override list makes a name too long.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from omegaconf import OmegaConf

#: Keys (and key prefixes, ending in ".") that never enter a run's identity.
NOT_IDENTITY = ("ckpt_path", "force", "logger", "logger.", "callbacks", "callbacks.", "paths.", "hydra.",
                "hydra/", "trainer.enable_progress_bar")
#: Keys that a resumed run may change and still continue the same run ("train longer").
RESUMABLE_CHANGES = ("trainer.max_epochs", "trainer.min_epochs", "early_stopping.patience")
READABLE_CHARS = 40
HASH_CHARS = 8


def override_key(override: str) -> str:
    """``+trainer.max_epochs=3`` -> ``trainer.max_epochs``; ``~logger`` -> ``logger``."""
    return override.split("=", 1)[0].lstrip("+~")


def _is_path_value(override: str) -> bool:
    value = override.split("=", 1)[1] if "=" in override else ""
    return "/" in value or "\\" in value or value.startswith("~")


def _excluded(key: str, ignore: Iterable[str]) -> bool:
    return any(key == k or (k.endswith((".", "/")) and key.startswith(k)) for k in ignore)


def identity(overrides: Iterable[str], also_ignore: Iterable[str] = ()) -> list[str]:
    """The overrides that define a run, normalised (no leading ``+``) and sorted."""
    ignore = (*NOT_IDENTITY, *also_ignore)
    kept = (str(o).lstrip("+") for o in overrides)
    return sorted(o for o in kept if not _excluded(override_key(o), ignore) and not _is_path_value(o))


def run_name(overrides: Iterable[str], prefix: str = "") -> str:
    """``<prefix>_<readable overrides>_<hash>``: e.g. ``model-lif+seed-1_3f0c2a9e``.

    The readable part shows each identity override as ``<last key part>-<value>``, joined by ``+``
    and cut to ``READABLE_CHARS``; it uses only characters that Hydra accepts in an unquoted value
    (no ``=``, ``,`` or ``:``), so a path into the folder can be passed back as an override
    (``ckpt_path=<run>/checkpoints/best.ckpt``). The hash is the first ``HASH_CHARS`` hex digits of
    the SHA-1 of the whole identity, so two runs share a name exactly when they share an identity.
    """
    kept = identity(OmegaConf.to_container(overrides) if OmegaConf.is_config(overrides) else overrides)
    digest = hashlib.sha1("\n".join(kept).encode()).hexdigest()[:HASH_CHARS]
    readable = "+".join(f"{override_key(o).rsplit('.', 1)[-1]}-{o.split('=', 1)[1]}" if "=" in o else o
                        for o in kept)
    readable = re.sub(r"[^A-Za-z0-9._+-]+", "-", readable)[:READABLE_CHARS].strip("+-")
    return "_".join(part for part in (prefix, readable, digest) if part)

