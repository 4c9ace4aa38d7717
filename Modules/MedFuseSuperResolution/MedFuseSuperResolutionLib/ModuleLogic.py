"""The MedFuseSuperResolution module's logic: owns the parameter node; the work is :class:`SuperResolutionLogic`'s."""

from __future__ import annotations

import slicer
from MedFuseLib.module_logic import MedFuseModuleLogic

from MedFuseSuperResolutionLib.Logic import SuperResolutionLogic
from MedFuseSuperResolutionLib.ParameterNode import MedFuseSuperResolutionParameterNode


class MedFuseSuperResolutionLogic(MedFuseModuleLogic):
    """The module's logic.

    Args:
        superResolution: the task logic; default one that reads Slice Thickness from Slicer's DICOM database.
    """

    PARAMETER_PACK = MedFuseSuperResolutionParameterNode

    def __init__(self, superResolution: SuperResolutionLogic | None = None) -> None:
        super().__init__(superResolution or SuperResolutionLogic(dicomDatabase=getattr(slicer, "dicomDatabase", None)))

    def startJob(self, parameters: MedFuseSuperResolutionParameterNode):
        """Start the backend with the parameter node's settings; see :meth:`SuperResolutionLogic.startJob`."""
        return self.taskLogic.startJob(
            parameters.inputVolume, parameters.outputVolume, device=parameters.device, **self.taskKeywords(parameters)
        )

    def detectSliceGeometry(self, volumeNode, sliceThickness: float = 0.0) -> dict:
        return self.taskLogic.detectSliceGeometry(volumeNode, sliceThickness)
