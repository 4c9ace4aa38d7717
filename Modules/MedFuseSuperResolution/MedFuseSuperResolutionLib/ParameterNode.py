"""The MedFuseSuperResolution panel's parameter pack: what the panel shows, saved with the scene.

Kept without ``from __future__ import annotations``: Slicer's ``parameterNodeWrapper`` reads the
field annotations as objects.
"""

from typing import Annotated

import slicer
from MedFuseLib.parameter_pack import taskParameterFields
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper

from MedFuseSuperResolutionLib import DEVICE_CHOICES


@parameterNodeWrapper
class MedFuseSuperResolutionParameterNode(taskParameterFields("superres")):
    """What the panel shows, saved with the scene.

    The task's parameters (method, targetSpacing, factor, sliceThickness, quality, epochs, seed) come
    from its declaration, with their defaults, ranges and choices (:mod:`MedFuseLib.parameter_pack`).

    inputVolume - thick-slice volume (never modified).
    outputVolume - volume that receives the result; None creates one at Apply.
    method - SR4ZCT (network trained on the volume) or an interpolation baseline.
    targetSpacing - new slice spacing in mm; 0 = the in-plane spacing (isotropic voxels).
    factor - when > 0, new slice spacing = slice spacing / factor (overrides targetSpacing).
    sliceThickness - slice thickness in mm; 0 = detect (DICOM Slice Thickness, else the spacing).
    quality - SR4ZCT configuration: fast (CPU, minutes) or faithful (the paper's, GPU).
    epochs - SR4ZCT training epochs; 0 = the quality's default.
    seed - seed of SR4ZCT's initial weights and training samples.
    device - where network methods run.
    compareAfterRun - switch to the side-by-side layout after each run (off: the layout is left alone).
    """

    inputVolume: slicer.vtkMRMLScalarVolumeNode
    outputVolume: slicer.vtkMRMLScalarVolumeNode
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "auto"
    compareAfterRun: bool = False
