"""Every task's declaration (:class:`~SlicerMedFuse.contract.TaskSpec`), importable without torch, monai or jsonschema.

One module per built-in task holds its ``SPEC``, the user-facing names of its parameter choices,
the constants a panel needs and the checks that need only the inputs' grids. The task modules
(:mod:`SlicerMedFuse.tasks`) take their spec from here and only add how the task runs, so the
CLI's task listing, the catalog and the Slicer panels read a declaration without importing a
network. Tasks contributed by other packages (entry point group :data:`ENTRY_POINT_GROUP`) have
no spec module: their spec is read from their Task class, which is imported for it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from SlicerMedFuse.contract import TaskSpec
from SlicerMedFuse.errors import UsageError

__all__ = ["ENTRY_POINT_GROUP", "all_specs", "plugin_references", "precheck_grids", "task_names", "task_spec"]

#: Entry point group under which other packages contribute tasks (``name = "package.module:TaskClass"``).
ENTRY_POINT_GROUP = "SlicerMedFuse.tasks"

#: Built-in task name -> its module in this package, in listing order.
_BUILTIN: dict[str, str] = {
    "superres": "superres",
    "hemorrhage": "hemorrhage",
    "registration": "registration",
    "breast-mass": "breast_mass",
    "aln-metastasis": "aln_metastasis",
}

_log = logging.getLogger(__name__)


def plugin_references() -> dict[str, str]:
    """Tasks other installed packages contribute: name -> ``"module:TaskClass"`` (nothing is imported).

    A plugin that takes a built-in task's name is ignored with a warning.
    """
    found = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in _BUILTIN:
            _log.warning("ignoring plugin task %r: a built-in task has that name", entry.name)
            continue
        found[entry.name] = entry.value
    return found


def task_names() -> list[str]:
    """The names of every available task: the built-in ones in their order, then the contributed ones."""
    return [*_BUILTIN, *plugin_references()]


def _builtin_module(name: str) -> Any:
    return importlib.import_module(f"{__name__}.{_BUILTIN[name]}")


def _plugin_spec(name: str, reference: str) -> TaskSpec:
    module_name, _, attribute = reference.partition(":")
    spec = getattr(getattr(importlib.import_module(module_name), attribute), "spec", None)
    if not isinstance(spec, TaskSpec):
        raise UsageError(f"The plugin task '{name}' ({reference}) declares no TaskSpec; ask its author for a fix.")
    return spec


def task_spec(name: str) -> TaskSpec:
    """The declaration of task ``name``; for a built-in task this imports neither torch nor the task's module.

    Raises:
        UsageError: no such task (the message lists the available ones).
    """
    if name in _BUILTIN:
        return _builtin_module(name).SPEC
    plugins = plugin_references()
    if name in plugins:
        return _plugin_spec(name, plugins[name])
    raise UsageError(
        f"There is no task '{name}'; available tasks: {', '.join(sorted([*_BUILTIN, *plugins]))} (see 'medfuse tasks')."
    )


def all_specs() -> list[TaskSpec]:
    """Every available task's spec, built-in first; a plugin whose spec cannot be loaded is skipped with a warning."""
    found = [_builtin_module(name).SPEC for name in _BUILTIN]
    for name, reference in plugin_references().items():
        try:
            found.append(_plugin_spec(name, reference))
        except Exception as error:  # a broken plugin must not hide the built-in tasks
            _log.warning("plugin task %r (%s) could not be loaded: %s", name, reference, error)
    return found


def precheck_grids(name: str, grids: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    """Run task ``name``'s checks that need only its inputs' grids (size, spacing, thickness), not their voxels.

    A task without such checks (or a contributed one) passes.

    Args:
        name: task name.
        grids: input role -> :class:`~SlicerMedFuse.superres.slice_geometry.VolumeGrid` of the input.
        params: the task parameters, resolved (defaults filled in).

    Raises:
        InputError: one sentence naming the problem and the fix.
    """
    check = getattr(_builtin_module(name), "check_grids", None) if name in _BUILTIN else None
    if check is not None:
        check(grids, params)
