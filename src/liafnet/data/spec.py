"""What a model needs to know about its input, independent of where the data comes from."""

from __future__ import annotations

from dataclasses import dataclass

from liafnet.data.errors import check_choice

KINDS = ("events", "text")


@dataclass(frozen=True)
class DataSpec:
    """Input description handed to model builders.

    Event data: frames are ``[T, channels, height, width]`` per sample. Text data: token ids with
    ``vocab_size`` entries (0 is padding), stories up to ``story_len`` and questions up to
    ``query_len`` tokens.
    """

    kind: str
    num_classes: int
    layout: str = ""
    time_steps: int = 0
    channels: int = 0
    height: int = 0
    width: int = 0
    vocab_size: int = 0
    story_len: int = 0
    query_len: int = 0

    def __post_init__(self) -> None:
        check_choice("data.kind", self.kind, KINDS)
        if self.num_classes < 2:
            raise ValueError(f"data.num_classes must be >= 2, got {self.num_classes}")
        if self.kind == "events":
            for name in ("time_steps", "channels", "height", "width"):
                if getattr(self, name) < 1:
                    raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")
