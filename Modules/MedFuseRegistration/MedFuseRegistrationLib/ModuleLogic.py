"""The MedFuseRegistration module's logic: owns the parameter node; the work is :class:`RegistrationLogic`'s."""

from __future__ import annotations

from MedFuseLib.module_logic import MedFuseModuleLogic

from MedFuseRegistrationLib.Logic import PANEL_PARAMETERS, RegistrationLogic, defaultPresetDirectory
from MedFuseRegistrationLib.ParameterNode import MedFuseRegistrationParameterNode


class MedFuseRegistrationLogic(MedFuseModuleLogic):
    """The module's logic.

    Args:
        registration: the task logic; default one whose user presets live beside Slicer's user
            settings file (:func:`MedFuseRegistrationLib.defaultPresetDirectory`).
    """

    PARAMETER_PACK = MedFuseRegistrationParameterNode

    def __init__(self, registration: RegistrationLogic | None = None) -> None:
        super().__init__(registration or RegistrationLogic(presetDirectory=defaultPresetDirectory()))

    @staticmethod
    def overrides(parameters: MedFuseRegistrationParameterNode) -> dict:
        """The Advanced values of the panel, by backend parameter name (they override the preset's)."""
        return {name: getattr(parameters, name) for name in PANEL_PARAMETERS}

    def startJob(self, parameters: MedFuseRegistrationParameterNode):
        """Start the backend with the parameter node's settings; see :meth:`RegistrationLogic.startJob`."""
        return self.taskLogic.startJob(
            parameters.fixedVolume,
            parameters.movingVolume,
            fixedMask=parameters.fixedMask,
            movingMask=parameters.movingMask,
            movingSegmentation=parameters.movingSegmentation,
            preset=parameters.preset,
            overrides=self.overrides(parameters),
            resampledVolume=parameters.createResampledVolume,
            labelInterpolation=parameters.labelInterpolation,
            device=parameters.device,
        )
