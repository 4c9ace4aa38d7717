"""The MedFuseRegistration panel's parameter pack: what the panel shows, saved with the scene.

Kept without ``from __future__ import annotations``: Slicer's ``parameterNodeWrapper`` reads the
field annotations as objects.
"""

from typing import Annotated

import slicer
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper

from MedFuseRegistrationLib import (
    DEVICE_CHOICES,
    builtinPresetValues,
    panelValues,
    parameterChoices,
    parameterRange,
)

_FAST = panelValues(builtinPresetValues("fast"))


@parameterNodeWrapper
class MedFuseRegistrationParameterNode:
    """What the panel shows, saved with the scene. Choices and ranges come from the backend's task declaration.

    fixedVolume, movingVolume - the pair (never modified).
    fixedMask, movingMask - optional label maps restricting the similarity.
    preset - built-in or saved preset the Advanced values started from.
    similarity, regularizer, levels, iterations, diffeomorphic - Advanced values (the preset's unless changed).
    device - where the optimisation runs.
    outputTransform - grid transform that receives the result; None creates one.
    createResampledVolume, outputVolume - whether to compute the resampled moving volume, and where.
    movingSegmentation - optional segmentation of the moving volume to carry over.
    outputSegmentation - segmentation that receives the registered segments; None creates one.
    labelInterpolation - how the segments are interpolated.
    """

    fixedVolume: slicer.vtkMRMLScalarVolumeNode
    movingVolume: slicer.vtkMRMLScalarVolumeNode
    fixedMask: slicer.vtkMRMLLabelMapVolumeNode
    movingMask: slicer.vtkMRMLLabelMapVolumeNode
    preset: str = "fast"
    similarity: Annotated[str, Choice(list(parameterChoices("similarity")))] = _FAST["similarity"]
    regularizer: Annotated[str, Choice(list(parameterChoices("regularizer")))] = _FAST["regularizer"]
    levels: Annotated[int, WithinRange(*(int(v) for v in parameterRange("levels")))] = int(_FAST["levels"])
    iterations: str = _FAST["iterations"]
    diffeomorphic: bool = bool(_FAST["diffeomorphic"])
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "auto"
    outputTransform: slicer.vtkMRMLGridTransformNode
    createResampledVolume: bool = True
    outputVolume: slicer.vtkMRMLScalarVolumeNode
    movingSegmentation: slicer.vtkMRMLSegmentationNode
    outputSegmentation: slicer.vtkMRMLSegmentationNode
    labelInterpolation: Annotated[str, Choice(list(parameterChoices("label_interpolation")))] = "label"
