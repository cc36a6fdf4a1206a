"""Figure plumbing shared by every plot: PNGs of a fixed pixel size, written atomically.

Figures are built as ``matplotlib.figure.Figure`` objects, never through pyplot, so nothing here
touches global backend state, and every PNG is ``figsize * DPI`` pixels (no tight bounding box).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from liafnet.io import atomic_write_bytes

DPI = 100


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` atomically; the PNG is ``figsize * DPI`` pixels."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return atomic_write_bytes(path, buffer.getvalue())


def colours(labels: Sequence[str]) -> dict[str, Any]:
    """One matplotlib cycle colour per label, in order (cycling after ten)."""
    palette = [f"C{i}" for i in range(10)]
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def empty(ax, text: str) -> None:
    """Say on an axis why it is empty."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
