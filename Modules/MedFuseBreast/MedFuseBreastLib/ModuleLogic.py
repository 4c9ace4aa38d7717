"""The MedFuseBreast module's logic: owns the parameter node; the work is :class:`BreastLogic`'s."""

from __future__ import annotations

from MedFuseLib.module_logic import MedFuseModuleLogic

from MedFuseBreastLib.Aln import CLINICAL_FIELDS, panelFieldName
from MedFuseBreastLib.Logic import BreastLogic
from MedFuseBreastLib.ParameterNode import TASK_FIELDS, MedFuseBreastParameterNode


class MedFuseBreastLogic(MedFuseModuleLogic):
    """The module's logic.

    Args:
        breast: the task logic; default one on the user's model store.
    """

    PARAMETER_PACK = MedFuseBreastParameterNode

    def __init__(self, breast: BreastLogic | None = None) -> None:
        super().__init__(breast or BreastLogic())

    @staticmethod
    def volumesOf(parameters: MedFuseBreastParameterNode) -> tuple:
        """(T1C, T2W or None, pre-contrast or None): the selections whose presence box is checked."""
        return (
            parameters.t1cVolume,
            parameters.t2wVolume if parameters.useT2w else None,
            parameters.preVolume if parameters.usePre else None,
        )

    @staticmethod
    def phasesOf(parameters: MedFuseBreastParameterNode) -> dict:
        """``phase`` and ``prePhase`` for :class:`BreastLogic` (None where the panel shows 'not chosen')."""
        return {
            "phase": parameters.phase if parameters.phase >= 0 else None,
            "prePhase": parameters.prePhase if parameters.prePhase >= 0 else None,
        }

    def startJob(self, parameters: MedFuseBreastParameterNode):
        """Start the backend with the parameter node's settings; see :meth:`BreastLogic.startJob`."""
        return self.taskLogic.startJob(
            *self.volumesOf(parameters),
            **self.phasesOf(parameters),
            alignFirst=parameters.alignFirst,
            model=parameters.model or None,
            device=parameters.device,
            **self.taskLogic.packValues(parameters, TASK_FIELDS),
        )

    def startAlnJob(self, parameters: MedFuseBreastParameterNode):
        """Start the ALN task with the research section's sequences and clinical values; see :meth:`BreastLogic.startAlnJob`."""
        clinical = {field.name: float(getattr(parameters, panelFieldName(field.name))) for field in CLINICAL_FIELDS}
        return self.taskLogic.startAlnJob(
            parameters.alnDceVolume,
            parameters.alnT2wVolume,
            parameters.alnMass,
            clinical=clinical,
            model=parameters.alnModel or None,
            device=parameters.device,
        )
