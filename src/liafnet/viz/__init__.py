"""Pictures of data and neurons: event frames (:mod:`.frames`) and membrane traces (:mod:`.membrane`).

Command line (``python -m liafnet.viz --help``)::

    python -m liafnet.viz                     # a synthetic sample's frames + LIAF membrane traces
    python -m liafnet.viz data=dvs_gesture --index 3 --out outputs/viz
"""

from liafnet.viz.figure import DPI, save_png
from liafnet.viz.frames import (
    class_frames_figsize, frames_to_rgb, plot_class_frames, plot_sample_frames, sample_frames_figsize,
)
from liafnet.viz.membrane import MembraneRecord, membrane_figure, plot_membrane_traces, record_membrane

__all__ = [
    "DPI", "MembraneRecord", "class_frames_figsize", "membrane_figure", "frames_to_rgb", "plot_class_frames", "plot_membrane_traces",
    "plot_sample_frames", "record_membrane", "sample_frames_figsize", "save_png",
]
