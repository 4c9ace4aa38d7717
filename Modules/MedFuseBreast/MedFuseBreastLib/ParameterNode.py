"""The MedFuseBreast panel's parameter pack: what the panel shows, saved with the scene.

Kept without ``from __future__ import annotations``: Slicer's ``parameterNodeWrapper`` reads the
field annotations as objects.
"""

from typing import Annotated

import slicer
from MedFuseLib.parameter_pack import taskParameterFields
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper

from MedFuseBreastLib import CLINICAL_FIELDS, DEVICE_CHOICES, PANEL_DEFAULTS

#: The breast-mass parameters the panel sends as they are; phase and prePhase pick 3D volumes on the
#: Slicer side (-1 = none), so they are the pack's own fields below.
TASK_FIELDS = ("attentionMaps", "maxMisalignmentMm", "threshold")


def _clinicalRange(name: str) -> tuple[float, float]:
    field = next(field for field in CLINICAL_FIELDS if field.name == name)
    return field.minimum, field.maximum


@parameterNodeWrapper
class MedFuseBreastParameterNode(taskParameterFields("breast-mass", TASK_FIELDS)):
    """What the panel shows, saved with the scene. Defaults and ranges come from the backend's task declarations
    (:data:`TASK_FIELDS` through :mod:`MedFuseLib.parameter_pack`, the clinical fields from ``CLINICAL_FIELDS``).

    t1cVolume, t2wVolume, preVolume - the sequences by role (T1C required); never modified.
    useT2w, usePre - whether the T2W / pre-contrast selection is used (presence checkboxes).
    phase, prePhase - phases of a multi-phase (DCE) series; -1 = not chosen / none.
    alignFirst - align T2W and pre-contrast rigidly to the T1C (registration task) before segmenting.
    model - model as ``id@version``; empty = the default (demo) model.
    device - where the network runs.
    threshold - mass probability at or above which a voxel is labelled.
    maxMisalignmentMm - largest tolerated shift of a sequence against the T1C (0: no check).
    attentionMaps - also add the five master attention maps as volumes.
    outputSegmentation - segmentation that receives the Mass segment; None creates one at Apply.
    alnDceVolume, alnT2wVolume, alnMass, aln<Field>, alnModel - the ALN metastasis (research) section.
    """

    t1cVolume: slicer.vtkMRMLScalarVolumeNode
    t2wVolume: slicer.vtkMRMLScalarVolumeNode
    preVolume: slicer.vtkMRMLScalarVolumeNode
    useT2w: bool = True
    usePre: bool = True
    phase: Annotated[int, WithinRange(-1, 999)] = -1
    prePhase: Annotated[int, WithinRange(-1, 999)] = -1
    alignFirst: bool = False
    model: str = ""
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "auto"
    outputSegmentation: slicer.vtkMRMLSegmentationNode
    alnDceVolume: slicer.vtkMRMLScalarVolumeNode
    alnT2wVolume: slicer.vtkMRMLScalarVolumeNode
    alnMass: slicer.vtkMRMLSegmentationNode
    alnAge: Annotated[float, WithinRange(*_clinicalRange("age"))] = PANEL_DEFAULTS["age"]
    alnFamilyHistory: bool = bool(PANEL_DEFAULTS["family_history"])
    alnHormoneTherapy: bool = bool(PANEL_DEFAULTS["hormone_therapy"])
    alnMenopause: bool = bool(PANEL_DEFAULTS["menopause"])
    alnTumourSizeMm: Annotated[float, WithinRange(*_clinicalRange("tumour_size_mm"))] = PANEL_DEFAULTS["tumour_size_mm"]
    alnErPercent: Annotated[float, WithinRange(*_clinicalRange("er_percent"))] = PANEL_DEFAULTS["er_percent"]
    alnPgrPercent: Annotated[float, WithinRange(*_clinicalRange("pgr_percent"))] = PANEL_DEFAULTS["pgr_percent"]
    alnKi67Percent: Annotated[float, WithinRange(*_clinicalRange("ki67_percent"))] = PANEL_DEFAULTS["ki67_percent"]
    alnHer2: bool = bool(PANEL_DEFAULTS["her2"])
    alnGrade: Annotated[int, WithinRange(1, 3)] = int(PANEL_DEFAULTS["grade"])
    alnModel: str = ""
