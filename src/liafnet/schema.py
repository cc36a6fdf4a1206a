"""Typed option sets: one dataclass per set, each field with its default and its check.

A schema is a dataclass deriving from :class:`Options` whose fields are declared with
:func:`option`; the field holds the default, the allowed choices or bounds, and which data kind the
key applies to. The same dataclass is

- registered with Hydra's ConfigStore by :mod:`liafnet.config`, so composition rejects unknown keys
  and values of the wrong type (``optimizer.lr=abc``) naming the key, and
- checked in Python by :meth:`Options.parse` (choices, bounds, types), so ``build_model(...)``
  called directly from user code gets the same errors as the command line.

No Hydra here (OmegaConf is not needed either): the models and neurons import this module.

Adding a key: add one field with :func:`option` to the schema that owns it (e.g.
``dropout: float = option(0.0, ge=0, lt=1, doc="...")`` on :class:`liafnet.models.options.NetworkOptions`),
then read it where it is used; the YAML files need no change unless the key's default differs
for one config.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

KINDS = ("events", "text")

T = TypeVar("T", bound="Options")


class OptionError(ValueError):
    """A bad option: ``key`` (dotted, e.g. ``model.act``), the value and what is allowed."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"{key} {message}")

    def under(self, prefix: str) -> OptionError:
        """The same error with ``prefix`` (``"model."``) in front of the key."""
        return OptionError(prefix + self.key, self.message)


def option(default: Any = dataclasses.MISSING, *, choices: tuple | None = None, ge: float | None = None,
           gt: float | None = None, lt: float | None = None, le: float | None = None, odd: bool = False,
           kind: str | None = None, doc: str = "") -> Any:
    """A schema field: ``default``; allowed ``choices``; bounds ``ge gt lt le``; ``odd`` integers only;
    ``kind`` (``"events"``/``"text"``) when only one data kind uses the key (setting it for the other
    kind is an error); ``doc`` for humans. Mutable defaults (dict, list) are copied per instance."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    meta = {"choices": choices, "ge": ge, "gt": gt, "lt": lt, "le": le, "odd": odd, "kind": kind, "doc": doc}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _base_type(hint: Any) -> tuple[Any, bool]:
    """``Optional[X]`` / ``X | None`` -> ``(X, True)``; anything else -> ``(hint, False)``."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _coerce(name: str, value: Any, hint: Any) -> Any:
    base, optional = _base_type(hint)
    if value is None:
        if optional or base is Any:
            return None
        raise OptionError(name, "must be set, got null")
    origin = typing.get_origin(base) or base
    if base is Any:
        return value
    if base is bool:
        if not isinstance(value, bool):
            raise OptionError(name, f"must be true or false, got {value!r}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise OptionError(name, f"must be an integer, got {value!r}")
        return int(value)
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise OptionError(name, f"must be a number, got {value!r}")
        return float(value)
    if base is str:
        if not isinstance(value, str):
            raise OptionError(name, f"must be a string, got {value!r}")
        return value
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise OptionError(name, f"must be a mapping, got {value!r}")
        return dict(value)
    if origin in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise OptionError(name, f"must be a list, got {value!r}")
        return list(value)
    return value


def _check_bounds(name: str, value: Any, meta: Mapping) -> None:
    if value is None:
        return
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise OptionError(name, f"must be one of {', '.join(map(str, choices))}; got {value!r}")
    for bound, fails, text in (("ge", lambda v, b: v < b, ">="), ("gt", lambda v, b: v <= b, ">"),
                               ("le", lambda v, b: v > b, "<="), ("lt", lambda v, b: v >= b, "<")):
        limit = meta.get(bound)
        if limit is not None and fails(value, limit):
            raise OptionError(name, f"must be {text} {limit}, got {value!r}")
    if meta.get("odd") and value % 2 == 0:
        raise OptionError(name, f"must be odd, got {value!r}")


class Options:
    """Base of every schema dataclass: checks its fields on construction (``__post_init__``).

    Subclasses are ``@dataclasses.dataclass`` classes whose fields come from :func:`option`.
    Errors are :class:`OptionError` naming the field; :meth:`parse` adds the config prefix.
    """

    _hints: ClassVar[dict[str, dict]] = {}

    def __post_init__(self) -> None:
        hints = Options._hints.get(type(self).__qualname__ + type(self).__module__)
        if hints is None:
            hints = typing.get_type_hints(type(self))
            Options._hints[type(self).__qualname__ + type(self).__module__] = hints
        for f in dataclasses.fields(self):
            value = _coerce(f.name, getattr(self, f.name), hints[f.name])
            _check_bounds(f.name, value, f.metadata)
            object.__setattr__(self, f.name, value)

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The option names of this schema, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def parse(cls: type[T], values: Mapping[str, Any], prefix: str = "") -> T:
        """An instance from ``values`` (missing keys take their defaults).

        Raises :class:`OptionError` naming ``prefix + key`` for an unknown key (listing the known
        ones), a value of the wrong type, outside its bounds or not among its choices.
        """
        known = cls.keys()
        for key in values:
            if key not in known:
                raise OptionError(f"{prefix}{key}", f"is not an option of {cls.__name__} "
                                                    f"(known: {', '.join(sorted(known))})")
        try:
            return cls(**values)
        except OptionError as error:
            raise error.under(prefix) from None

    def to_dict(self) -> dict[str, Any]:
        """The options as a plain ``dict`` (field name -> value)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def ignored_for(self, data_kind: str, prefix: str = "") -> None:
        """Raise :class:`OptionError` for a key that ``data_kind`` data ignores but that differs from
        its default (``model.hidden_size=64`` with text data): a silent no-op is a wrong result."""
        for f in dataclasses.fields(self):
            kind = f.metadata.get("kind")
            if kind is None or kind == data_kind:
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if getattr(self, f.name) != default:
                raise OptionError(f"{prefix}{f.name}",
                                  f"applies to {kind} data only; {data_kind} data ignores it "
                                  f"(got {getattr(self, f.name)!r}; remove the override)")
