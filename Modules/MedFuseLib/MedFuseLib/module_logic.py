"""The ``ScriptedLoadableModuleLogic`` of every MedFuse module: owns the parameter pack, delegates the work.

A module's logic holds its panel's ``@parameterNodeWrapper`` pack and a
:class:`MedFuseLib.task_logic.TaskLogic` (:attr:`taskLogic`) that does the work. Task parameters
travel from the pack by name (a pack field is the camelCase name of a task parameter), so a new task
parameter needs a field in the pack and a widget in the ``.ui``, nothing here. A subclass sets
:attr:`PARAMETER_PACK` and implements :meth:`startJob` for its input and output nodes. Needs
Slicer's Python application layer (``ScriptedLoadableModuleLogic``); imported after the version check.
"""

from __future__ import annotations

from typing import Any

from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

__all__ = ["MedFuseModuleLogic"]


class MedFuseModuleLogic(ScriptedLoadableModuleLogic):
    """Parameter node owner of a module; the task work is :attr:`taskLogic`'s.

    Args:
        taskLogic: the module's :class:`MedFuseLib.task_logic.TaskLogic`.
    """

    #: The module's ``@parameterNodeWrapper`` class.
    PARAMETER_PACK: Any = None

    def __init__(self, taskLogic: Any) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.taskLogic = taskLogic

    def getParameterNode(self) -> Any:
        return self.PARAMETER_PACK(super().getParameterNode())

    def taskKeywords(self, parameters: Any) -> dict[str, Any]:
        """The task parameters the pack holds, as the keywords ``taskLogic.startJob`` takes."""
        return self.taskLogic.packValues(parameters)

    def startJob(self, parameters: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement startJob(parameters)")

    def finishJob(self, job: Any, *outputNodes: Any) -> Any:
        """Put a finished job's result into the scene (see ``taskLogic.finishJob``)."""
        return self.taskLogic.finishJob(job, *outputNodes)

    def process(self, *args: Any, **options: Any) -> Any:
        """Blocking run for scripts (see :meth:`MedFuseLib.task_logic.TaskLogic.process`)."""
        return self.taskLogic.process(*args, **options)

    def processAsync(self, *args: Any, **options: Any) -> Any:
        """Non-blocking run (see :meth:`MedFuseLib.task_logic.TaskLogic.processAsync`)."""
        return self.taskLogic.processAsync(*args, **options)
