"""Errors raised for missing or bad data, so users see what to fix and callers can catch them."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing or incomplete; the message names the path and the make target."""

    def __init__(self, name: str, path, missing: str, target: str | None = None):
        target = target or f"make data-{name}"
        super().__init__(
            f"{name}: expected data at {path}, but {missing}. Run `{target}` for download "
            f"instructions, or point data.root at an existing copy."
        )
        self.path = path


class CorruptFileError(ValueError):
    """A data file cannot be decoded; the message names the file and the byte offset (``offset`` is
    ``None`` for faults found in the decoded events, e.g. time going backwards: the reason says where)."""

    def __init__(self, path, offset: int | None, reason: str):
        where = "corrupt" if offset is None else f"corrupt at byte {offset}"
        super().__init__(f"{path}: {where}: {reason}")
        self.path = path
        self.offset = offset


def check_choice(key: str, value, choices) -> None:
    """Raise ``ValueError("<key> must be one of <choices>, got <value>")`` unless ``value`` is a choice."""
    if value not in choices:
        raise ValueError(f"{key} must be one of {tuple(choices)}, got {value!r}")
