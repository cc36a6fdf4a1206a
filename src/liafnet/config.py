"""Config composition: the one conf location, the resolvers, the typed schemas, the checks.

Every entry point (train, eval, profile, viz, tables, tests) composes through this module, so a
config means the same thing everywhere:

- :data:`CONF_DIR` -- the Hydra config tree shipped inside the package (``liafnet/conf``).
- :func:`register` -- registers the ``liafnet.*`` resolvers and the structured schemas with
  Hydra's ConfigStore; idempotent, done on import.
- :func:`compose` -- ``conf/<config_name>.yaml`` plus overrides, checked (:func:`validate`).
- :func:`validate` -- rejects bad values and unknown or ignored keys, naming the key; called by
  :func:`compose` and by the ``@hydra.main`` entry points before anything is built.
- :func:`to_plain` -- a resolved plain ``dict`` of a config (stored in checkpoints and metrics.json).

Schemas are plain dataclasses defined next to the code they configure (:mod:`liafnet.schema` has the
checking machinery, :mod:`liafnet.neurons` the neuron options, :mod:`liafnet.models.options` the
model families); this module only registers them. Only this module, :mod:`liafnet.build` and the
``liafnet.cli`` entry points import Hydra.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from liafnet.schema import OptionError
from liafnet.models.options import MODEL_SCHEMAS, check_model_config
from liafnet.run_options import OPTIMIZER_SCHEMAS, SCHEDULER_SCHEMAS, check_run_config

CONF_DIR = Path(__file__).resolve().parent / "conf"
"""The Hydra config tree (``data/ model/ trainer/ logger/ optimizer/ scheduler/ experiment/ table/ ...``)."""

_REGISTERED = False


def register() -> None:
    """Register resolvers and schemas (idempotent; runs on import of this module).

    Resolvers: ``${liafnet.unique:}`` -- a 4-hex-digit random suffix for run folders, cached like
    Hydra's own ``now`` so every job of a sweep agrees on the sweep dir (the value travels with the
    config into submitit jobs).

    Schemas (ConfigStore group ``schema/<group>``, used by the YAML files through
    ``defaults: [/schema/<group>/<name>@_here_, _self_]``): ``schema/model/<family>`` for each
    family of :data:`liafnet.models.options.MODEL_SCHEMAS`, ``schema/optimizer/<name>`` and
    ``schema/scheduler/<name>``. A YAML file on top of a schema can only set the schema's keys with
    values of the schema's types; Hydra names the key otherwise.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    OmegaConf.register_new_resolver("liafnet.unique", lambda: secrets.token_hex(2), use_cache=True,
                                    replace=True)
    store = ConfigStore.instance()
    for group, schemas in (("model", MODEL_SCHEMAS), ("optimizer", OPTIMIZER_SCHEMAS),
                           ("scheduler", SCHEDULER_SCHEMAS)):
        for name, schema in schemas.items():
            store.store(group=f"schema/{group}", name=name, node=schema)
    _REGISTERED = True


register()


def group_options(group: str) -> list[str]:
    """The choices of a config group (``model`` -> ``['conv3d', 'convlstm', ...]``), sorted.

    Read from the YAML files of ``conf/<group>/``; raises ``ValueError`` for an unknown group.
    """
    folder = CONF_DIR / group
    if not folder.is_dir():
        raise ValueError(f"no config group {group!r} in {CONF_DIR}")
    return sorted(path.stem for path in folder.glob("*.yaml"))


def first_of_sweeps(overrides: Sequence[str]) -> list[str]:
    """``overrides`` with every sweep (``model=liaf,lif``, ``seed=range(3)``) collapsed to its first
    value: what one job of the sweep would compose (used to read a sweep's shared settings)."""
    plain = []
    for text, override in zip(overrides, OverridesParser.create().parse_overrides(list(overrides))):
        if override.is_sweep_override():
            first = next(iter(override.sweep_string_iterator()))
            plain.append(f"{override.get_key_element()}={first}")
        else:
            plain.append(text)
    return plain


def compose(overrides: Sequence[str] = (), config_name: str = "train", *, hydra_config: bool = False,
            check: bool = True) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with command-line style ``overrides``.

    ``hydra_config=True`` keeps the ``hydra`` node (sweep dir, sweeper params, launcher), which has
    ``${hydra:runtime.output_dir}``-style values that resolve only inside a Hydra run; sweep
    overrides are then collapsed to their first value (:func:`first_of_sweeps`). ``check=True``
    runs :func:`validate` on ``train`` configs. Outside ``@hydra.main`` ``paths.run_dir`` has no
    value unless an override sets it. Raises Hydra's errors for unknown groups/keys and
    ``ValueError`` (from :func:`validate`) naming the key of a bad value.
    """
    overrides = first_of_sweeps(overrides) if hydra_config else list(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name, overrides=overrides, return_hydra_config=hydra_config)
    finally:
        GlobalHydra.instance().clear()
    if check and config_name == "train":
        validate(cfg)
    return cfg


def validate(cfg: DictConfig) -> None:
    """Check a composed ``train`` config; raise ``ValueError`` naming the key, the value and what is
    allowed. Checks the model options against the family's schema (including keys that the chosen
    data kind ignores, e.g. ``model.hidden_size`` with text data), the optimiser and scheduler, and
    the run-level keys (``loss``, ``seed``, ``trainer.max_epochs``, ``data.batch_size``,
    ``logger.wandb.mode``, ...)."""
    try:
        check_model_config(to_plain(cfg.model), data_kind=data_kind(cfg))
        check_run_config(cfg)
    except OptionError as error:
        raise ValueError(str(error)) from None


def data_kind(cfg: DictConfig) -> str:
    """``"events"`` or ``"text"``: the kind of input the config's data produces (``data.kind``)."""
    return OmegaConf.select(cfg, "data.kind") or OmegaConf.select(cfg, "data.spec.kind") or "events"


def to_plain(cfg: DictConfig) -> dict:
    """``cfg`` resolved to plain Python containers; a value that only Hydra's runtime can resolve
    (``${hydra:...}`` outside a run) is kept in its ``${...}`` form instead of failing."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - an interpolation only Hydra's runtime can resolve
        return OmegaConf.to_container(cfg, resolve=False)


TARGET_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")


def _group_choice(group: str, node: Mapping | None) -> str | None:
    """The ``optimizer``/``scheduler`` choice whose schema builds ``node["_target_"]``."""
    if not node:
        return None
    schemas = OPTIMIZER_SCHEMAS if group == "optimizer" else SCHEDULER_SCHEMAS
    for name, schema in schemas.items():
        if schema._target_ == node.get("_target_"):
            return name
    raise ValueError(f"{group}._target_={node.get('_target_')!r} is not a liafnet {group} "
                     f"(choose {group}=<{'|'.join(schemas)}>)")


def _overlay(fresh: DictConfig, stored: Mapping, interpolations: bool) -> None:
    """Copy ``stored`` values into ``fresh`` where ``fresh`` has the key; ``_target_``-style keys
    and keys ``fresh`` lacks are never taken from ``stored``. With ``interpolations=False`` only the
    plain values are copied; with ``True`` an interpolation of ``fresh`` is kept where it resolves to
    the stored value (so it still follows its source, e.g. ``data.root``) and replaced otherwise."""
    for key, value in stored.items():
        if key in TARGET_KEYS or key not in fresh:
            continue
        if OmegaConf.is_interpolation(fresh, key):
            if interpolations:
                try:
                    current = fresh[key]
                except Exception:  # noqa: BLE001 - unresolvable here: take the stored value
                    current = object()
                if current != value:
                    fresh[key] = value
            continue
        node = fresh[key]
        if isinstance(value, Mapping) and isinstance(node, DictConfig):
            _overlay(node, value, interpolations)
        elif not interpolations:
            fresh[key] = value


def from_plain(tree: Mapping, overrides: Sequence[str] = ()) -> DictConfig:
    """Rebuild a ``train`` config from a plain stored tree (e.g. a checkpoint's), safely.

    The config is composed afresh from the package's own tree for the stored data, model,
    optimiser and scheduler choices; then the stored values are copied in where the fresh config
    has the key, never a ``_target_`` (so no callable named in the file is ever instantiated),
    and the result is checked (:func:`validate`). ``overrides`` (command-line style) come last.
    Raises ``ValueError`` naming the key for a value the schemas reject.
    """
    choices = [f"data={tree['data']['name']}", f"model={tree['model']['family']}"]
    for group in ("optimizer", "scheduler"):
        choice = _group_choice(group, tree.get(group))
        if choice is not None:
            choices.append(f"{group}={choice}")
    fresh = compose([*choices, "paths.run_dir=."], check=False)
    stored = {k: v for k, v in tree.items() if k not in ("hydra",)}
    _overlay(fresh, stored, interpolations=False)
    _overlay(fresh, stored, interpolations=True)
    if overrides:
        fresh = OmegaConf.merge(fresh, OmegaConf.from_dotlist(list(overrides)))
    validate(fresh)
    return fresh
