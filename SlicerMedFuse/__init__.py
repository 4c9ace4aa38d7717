"""SlicerMedFuse backend: multi-modal medical image analysis behind 3D Slicer's MedFuse panels.

The public API (imported lazily so that ``import SlicerMedFuse`` stays cheap, e.g. for Slicer's
side, which only needs the coordinate conversions)::

    import SlicerMedFuse as mf
    mf.run_task(...)      # SlicerMedFuse.api.run_task
    mf.list_tasks()       # task classes; each has a .spec (TaskSpec)
    mf.get_task(name)
    mf.read_image(path), mf.write_image(image, path)
"""

from __future__ import annotations

from SlicerMedFuse.lazy import lazy_attributes

__version__ = "0.1.0"

__all__ = ["__version__", "get_task", "list_tasks", "read_image", "run_task", "write_image"]

_LAZY = {
    "run_task": "SlicerMedFuse.api",
    "RunResult": "SlicerMedFuse.api",
    "list_tasks": "SlicerMedFuse.tasks.registry",
    "get_task": "SlicerMedFuse.tasks.registry",
    "read_image": "SlicerMedFuse.io",
    "write_image": "SlicerMedFuse.io",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, lambda: list(globals()))
