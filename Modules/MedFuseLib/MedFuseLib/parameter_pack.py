"""A module's parameter pack gets its task parameters from the task's declaration, one field each.

A panel's ``@parameterNodeWrapper`` class derives from :func:`taskParameterFields`, which holds one
typed field per task parameter, named in camelCase (``min_component_ml`` -> ``minComponentMl``),
with the declared default, ``WithinRange`` for a bounded number and ``Choice`` for a choice. The
pack adds only what is the panel's own (nodes, model, device, display options)::

    @parameterNodeWrapper
    class MedFuseHemorrhageParameterNode(taskParameterFields("hemorrhage")):
        inputVolume: slicer.vtkMRMLScalarVolumeNode
        model: str = ""

So a new task parameter needs its declaration in the backend and a widget in the ``.ui`` (named by
its ``SlicerParameterName``); the pack and the Logic (:meth:`MedFuseLib.task_logic.TaskLogic.packValues`)
follow. Slicer's ``parameterNodeWrapper`` reads the fields with ``typing.get_type_hints``, which
includes a base class's. Needs Slicer's Python application layer; imported after the version check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from MedFuseLib.task_logic import camelName, taskSpec

__all__ = ["FIELD_TYPES", "taskParameterFields"]

#: The Python type of a pack field for each kind of task parameter (a choice is stored as its id).
FIELD_TYPES: dict[str, type] = {"float": float, "int": int, "bool": bool, "choice": str, "str": str}


def taskParameterFields(task: str, names: Sequence[str] | None = None) -> type:
    """A base class with one typed, defaulted field per parameter of ``task``.

    Args:
        task: the backend task name, e.g. ``"hemorrhage"``.
        names: the camelCase fields to include; default every task parameter.

    Returns:
        A plain class whose ``__annotations__`` and attributes are the fields and their defaults.

    Raises:
        ValueError: a named parameter the task does not declare, or one without a default (a pack
            field needs a value to start from; list such a field in the pack itself).
    """
    from slicer.parameterNodeWrapper import Choice, WithinRange  # the application layer, after the version check

    spec = taskSpec(task)
    declared = {camelName(parameter.name): parameter for parameter in spec.parameters}
    unknown = sorted(set(names or ()) - set(declared))
    if unknown:
        raise ValueError(f"Task '{task}' declares no parameter {', '.join(unknown)}; it has {', '.join(declared)}.")
    annotations: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for name, parameter in declared.items():
        if names is not None and name not in names:
            continue
        if parameter.default is None:
            raise ValueError(f"Task parameter '{parameter.name}' has no default; give the pack field '{name}' one.")
        fieldType = FIELD_TYPES[parameter.kind]
        if parameter.kind == "choice":
            annotations[name] = Annotated[str, Choice(list(parameter.choices))]
        elif parameter.kind in ("float", "int") and parameter.minimum is not None and parameter.maximum is not None:
            annotations[name] = Annotated[
                fieldType, WithinRange(fieldType(parameter.minimum), fieldType(parameter.maximum))
            ]
        else:
            annotations[name] = fieldType
        defaults[name] = fieldType(parameter.default)
    title = "".join(part.capitalize() for part in task.replace("-", "_").split("_"))
    return type(
        f"{title}TaskParameters",
        (),
        {
            "__annotations__": annotations,
            "__module__": __name__,
            "__doc__": f"The parameters of the '{task}' task as parameter pack fields: {', '.join(annotations)}.",
            **defaults,
        },
    )
