"""The MedFuseHemorrhage module's logic: owns the parameter node; the work is :class:`HemorrhageLogic`'s."""

from __future__ import annotations

from MedFuseLib.module_logic import MedFuseModuleLogic

from MedFuseHemorrhageLib.Logic import HemorrhageLogic
from MedFuseHemorrhageLib.ParameterNode import MedFuseHemorrhageParameterNode


class MedFuseHemorrhageLogic(MedFuseModuleLogic):
    """The module's logic.

    Args:
        hemorrhage: the task logic; default one on the user's model store.
    """

    PARAMETER_PACK = MedFuseHemorrhageParameterNode

    def __init__(self, hemorrhage: HemorrhageLogic | None = None) -> None:
        super().__init__(hemorrhage or HemorrhageLogic())

    def startJob(self, parameters: MedFuseHemorrhageParameterNode):
        """Start the backend with the parameter node's settings; see :meth:`HemorrhageLogic.startJob`."""
        return self.taskLogic.startJob(
            parameters.inputVolume,
            model=parameters.model or None,
            device=parameters.device,
            **self.taskKeywords(parameters),
        )
