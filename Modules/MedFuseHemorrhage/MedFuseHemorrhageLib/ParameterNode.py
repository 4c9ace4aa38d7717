"""The MedFuseHemorrhage panel's parameter pack: what the panel shows, saved with the scene.

Kept without ``from __future__ import annotations``: Slicer's ``parameterNodeWrapper`` reads the
field annotations as objects.
"""

from typing import Annotated

import slicer
from MedFuseLib.parameter_pack import taskParameterFields
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper

from MedFuseHemorrhageLib import DEVICE_CHOICES, DISPLAY_WINDOWS


@parameterNodeWrapper
class MedFuseHemorrhageParameterNode(taskParameterFields("hemorrhage")):
    """What the panel shows, saved with the scene.

    The task's parameters (mirroring, minComponentMl, modelPostprocessing, overlap) come from its
    declaration, with their defaults and ranges (:mod:`MedFuseLib.parameter_pack`).

    inputVolume - head CT in HU (never modified, its display included).
    model - installed model as ``id@version``; empty = the default (demo) model.
    device - where the network runs.
    mirroring - average over left-right mirrored copies (test-time augmentation).
    minComponentMl - components of a class smaller than this (mL) are removed.
    modelPostprocessing - also remove components below the model's own per-class minimum volumes.
    overlap - sliding-window overlap (fraction of the patch).
    displayWindow - CT window the Show button applies (brain W80 L40, blood W160 L40); never applied by a run.
    outputSegmentation - segmentation that receives the segments; None creates one at Apply.
    outputTable - table that receives the per-class volumes; None creates one at Apply.
    """

    inputVolume: slicer.vtkMRMLScalarVolumeNode
    model: str = ""
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "auto"
    displayWindow: Annotated[str, Choice(list(DISPLAY_WINDOWS))] = "brain"
    outputSegmentation: slicer.vtkMRMLSegmentationNode
    outputTable: slicer.vtkMRMLTableNode
