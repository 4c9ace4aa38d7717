"""MRML nodes <-> SimpleITK images, label maps -> segments, displacement fields -> grid transforms.

Everything here needs only MRML (``slicer`` node classes, ``slicer.util`` array helpers) and VTK,
so it runs headless on slicer-core as well as inside the Slicer application.

Geometry conventions: SimpleITK images are in LPS (ITK), nodes are in RAS (Slicer). Every flip goes
through :mod:`SlicerMedFuse.geometry.coordinates`; nothing here negates an axis by hand. Voxel
arrays are numpy ``(k, j, i)`` (slowest axis first) on both sides, so no axis reordering happens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from vtk.util import numpy_support

from SlicerMedFuse.facade import (
    ImageGeometry,
    Label,
    ijk_to_ras_matrix,
    lps_to_ras_points,
    lps_to_ras_vectors,
    ras_to_lps_points,
    ras_to_lps_vectors,
    resample_to_reference,
    same_grid,
)

__all__ = [
    "displacement_field_to_grid_transform",
    "image_to_volume_node",
    "labelmap_to_segmentation",
    "place_under_study",
    "segmentation_to_labelmap",
    "volume_node_to_image",
]

_SCALAR_VOLUME_CLASSES = ("vtkMRMLScalarVolumeNode", "vtkMRMLLabelMapVolumeNode")
_GEOMETRY_TOLERANCE = 1e-4  # mm (origin) and relative units (spacing, direction)


# --- small matrix helpers -------------------------------------------------------------------------
def _to_vtk_matrix(array: np.ndarray) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            matrix.SetElement(row, column, float(array[row, column]))
    return matrix


def _from_vtk_matrix(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[matrix.GetElement(row, column) for column in range(4)] for row in range(4)])


def _node_ijk_to_world_ras(volume_node) -> np.ndarray:
    """The node's IJK -> world RAS (mm) 4x4, including a linear parent transform if there is one."""
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = _from_vtk_matrix(matrix)
    parent = volume_node.GetParentTransformNode()
    if parent is None:
        return ijk_to_ras
    if not parent.IsTransformToWorldLinear():
        raise ValueError(
            f"Volume '{volume_node.GetName()}' is under a non-linear transform; harden the transform "
            "(Data module, right-click > Harden transform) before using it as input."
        )
    to_world = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(to_world)
    return _from_vtk_matrix(to_world) @ ijk_to_ras


def _lps_geometry(ijk_to_ras: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """(spacing mm, origin LPS mm, direction row-major LPS) of an IJK -> RAS 4x4 matrix."""
    axes_ras = ijk_to_ras[:3, :3]
    spacing = np.linalg.norm(axes_ras, axis=0)
    if np.any(spacing <= 0):
        raise ValueError(f"IJK-to-RAS matrix has a zero-length axis: {ijk_to_ras.tolist()}")
    directions_ras = axes_ras / spacing  # columns are the RAS directions of i, j, k
    directions_lps = ras_to_lps_vectors(directions_ras.T).T  # flip each column (a direction vector)
    origin_lps = ras_to_lps_points(ijk_to_ras[:3, 3])
    return tuple(spacing.tolist()), tuple(origin_lps.tolist()), tuple(directions_lps.ravel().tolist())


def _reference_grid(reference_node) -> ImageGeometry:
    """The LPS voxel grid of a volume node (world coordinates, parent transform included)."""
    image_data = reference_node.GetImageData()
    if image_data is None:
        raise ValueError(f"Reference volume '{reference_node.GetName()}' has no voxels.")
    spacing, origin, direction = _lps_geometry(_node_ijk_to_world_ras(reference_node))
    return ImageGeometry(tuple(int(n) for n in image_data.GetDimensions()), spacing, origin, direction)


# --- volumes --------------------------------------------------------------------------------------
def volume_node_to_image(volume_node) -> sitk.Image:
    """A copy of a volume node's voxels as a SimpleITK image with exact LPS geometry.

    Works for scalar, labelmap and vector volumes. The geometry comes from the node's IJK-to-RAS
    matrix (composed with a linear parent transform, if any) converted to LPS. The node is not modified.

    Args:
        volume_node: a ``vtkMRMLScalarVolumeNode`` (or labelmap / vector volume) with image data.

    Returns:
        A 3D image (vector image for multi-component volumes): spacing in mm, origin and direction in LPS.
    """
    if volume_node is None or volume_node.GetImageData() is None:
        raise ValueError("volume_node has no voxels; select a loaded volume.")
    array = slicer.util.arrayFromVolume(volume_node)
    is_vector = array.ndim == 4
    image = sitk.GetImageFromArray(np.array(array, copy=True), isVector=is_vector)
    spacing, origin, direction = _lps_geometry(_node_ijk_to_world_ras(volume_node))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    return image


def _volume_array(image: sitk.Image) -> np.ndarray:
    if image.GetDimension() != 3:
        raise ValueError(f"image must be 3D, got a {image.GetDimension()}D image")
    array = sitk.GetArrayFromImage(image)
    if array.dtype in (np.int64, np.uint64):  # VTK's "long long" volumes do not display; narrow when lossless
        if array.size and (array.min() < np.iinfo(np.int32).min or array.max() > np.iinfo(np.int32).max):
            raise ValueError("image has 64-bit integer voxels outside the 32-bit range; cast it before loading")
        array = array.astype(np.int32)
    return array


def image_to_volume_node(
    image: sitk.Image,
    scene,
    name: str,
    *,
    node=None,
    class_name: str = "vtkMRMLScalarVolumeNode",
    reference_node=None,
):
    """Put a SimpleITK image into the scene as a volume node (new, or ``node`` updated in place).

    The image's LPS geometry becomes the node's RAS IJK-to-RAS matrix. A display node is created
    when the node has none. With ``reference_node`` the node is placed beside it in subject
    hierarchy (its study) and, for scalar volumes, takes over its window/level and colour map.

    Args:
        image: 3D image (scalar, or vector for ``vtkMRMLVectorVolumeNode``), geometry in LPS mm.
        scene: the ``vtkMRMLScene`` to add a new node to.
        name: name of a new node (an existing ``node`` keeps its name).
        node: existing volume node to overwrite (voxels and geometry), or None to create one.
        class_name: MRML class of a new node, e.g. ``"vtkMRMLLabelMapVolumeNode"``.
        reference_node: volume whose study and display settings the result should share.

    Returns:
        The volume node.
    """
    array = _volume_array(image)
    if node is None:
        node = scene.AddNewNodeByClass(class_name, name)
    slicer.util.updateVolumeFromArray(node, array)
    ijk_to_ras = ijk_to_ras_matrix(image.GetSpacing(), image.GetOrigin(), image.GetDirection())
    parent = node.GetParentTransformNode()
    if parent is not None:  # express the world geometry in the parent's coordinates
        if not parent.IsTransformToWorldLinear():
            raise ValueError(f"Volume '{node.GetName()}' is under a non-linear transform; remove or harden it first.")
        to_world = vtk.vtkMatrix4x4()
        parent.GetMatrixTransformToWorld(to_world)
        ijk_to_ras = np.linalg.inv(_from_vtk_matrix(to_world)) @ ijk_to_ras
    node.SetIJKToRASMatrix(_to_vtk_matrix(ijk_to_ras))
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    if reference_node is not None:
        place_under_study(node, reference_node)
        _copy_window_level(reference_node, node)
    return node


def _copy_window_level(source_node, target_node) -> None:
    source = source_node.GetDisplayNode()
    target = target_node.GetDisplayNode()
    scalar_display = "vtkMRMLScalarVolumeDisplayNode"
    if source is None or target is None or target_node.IsA("vtkMRMLLabelMapVolumeNode"):
        return
    if source.GetClassName() != scalar_display or target.GetClassName() != scalar_display:
        return
    target.AutoWindowLevelOff()
    target.SetWindowLevel(source.GetWindow(), source.GetLevel())
    if source.GetColorNodeID():
        target.SetAndObserveColorNodeID(source.GetColorNodeID())


# --- subject hierarchy ----------------------------------------------------------------------------
def place_under_study(node, reference_node) -> None:
    """Move ``node`` in subject hierarchy to the parent item (normally the study) of ``reference_node``.

    Creates the node's subject hierarchy item when it has none (headless scenes have no plugin that
    does it). Nothing moves when the reference has no item or sits directly under the scene.
    """
    scene = node.GetScene()
    if scene is None or reference_node is None:
        return
    sh = scene.GetSubjectHierarchyNode()
    invalid = sh.GetInvalidItemID()
    reference_item = sh.GetItemByDataNode(reference_node)
    if reference_item == invalid:
        return
    parent_item = sh.GetItemParent(reference_item)
    if parent_item in (invalid, sh.GetSceneItemID()):
        return
    item = sh.GetItemByDataNode(node)
    if item == invalid:
        sh.CreateItem(parent_item, node)
    else:
        sh.SetItemParent(item, parent_item)


# --- segmentations --------------------------------------------------------------------------------
def _segment_id(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_") or "segment"
    candidate, counter = base, 2
    while candidate in taken:
        candidate, counter = f"{base}_{counter}", counter + 1
    taken.add(candidate)
    return candidate


def _check_labels(labels: Sequence[Label]) -> None:
    names = [label.name for label in labels]
    values = [label.value for label in labels]
    if len(set(names)) != len(names) or len(set(values)) != len(values):
        raise ValueError(f"labels must have distinct names and values, got {list(zip(values, names, strict=True))}")


def _label_dtype(max_value: int) -> np.dtype:
    for dtype in (np.uint8, np.int16, np.int32):
        if max_value <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"label value {max_value} does not fit a 32-bit label map")


def labelmap_to_segmentation(
    label_image: sitk.Image,
    labels: Sequence[Label],
    scene,
    name: str,
    *,
    reference_node,
    node=None,
):
    """A segmentation node with one segment per task label, on the reference volume's grid.

    Every label gets a segment, also when its value does not occur in the image, so the user can
    paint it. Segment name, colour (RGB / 255) and ``TerminologyEntry`` tag come from the contract
    :class:`Label`; the segment id is derived from the name. Voxels with values that are not a
    label value are dropped. A label image on another grid is resampled (nearest neighbour) onto
    the reference grid in physical (LPS/RAS) space. All segments share one label map layer.

    Args:
        label_image: 3D integer image (LPS geometry); voxel value = :attr:`Label.value`, 0 = background.
        labels: the task's labels, in display order.
        scene: the ``vtkMRMLScene`` for a new node.
        name: name of a new node.
        reference_node: the volume whose grid and study the segmentation uses.
        node: existing segmentation node whose segments are replaced, or None to create one.

    Returns:
        The ``vtkMRMLSegmentationNode``.
    """
    labels = list(labels)
    _check_labels(labels)
    if label_image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError("label_image must have one component per voxel")
    grid = _reference_grid(reference_node)
    if not same_grid(label_image, grid):
        reference = grid.apply_to(sitk.Image(list(grid.size), sitk.sitkUInt8))
        label_image = resample_to_reference(label_image, reference, interpolation="nearest", default_value=0)
    values = np.array([label.value for label in labels], dtype=np.int64)
    voxels = sitk.GetArrayFromImage(label_image)
    dtype = _label_dtype(int(values.max()) if len(values) else 1)
    voxels = np.where(np.isin(voxels, values), voxels, 0).astype(dtype)

    layer = slicer.vtkOrientedImageData()
    size = grid.size
    layer.SetExtent(0, size[0] - 1, 0, size[1] - 1, 0, size[2] - 1)
    layer.AllocateScalars(numpy_support.get_vtk_array_type(dtype), 1)
    numpy_support.vtk_to_numpy(layer.GetPointData().GetScalars()).reshape(voxels.shape)[:] = voxels
    layer.SetImageToWorldMatrix(_to_vtk_matrix(_node_ijk_to_world_ras(reference_node)))

    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
    segmentation = node.GetSegmentation()
    labelmap_name = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    was_modifying = node.StartModify()
    try:
        segmentation.RemoveAllSegments()
        segmentation.SetSourceRepresentationName(labelmap_name)
        taken: set[str] = set()
        for label in labels:
            segment = slicer.vtkSegment()
            segment.SetName(label.name)
            segment.SetColor(*(channel / 255.0 for channel in label.color))
            segment.SetLabelValue(label.value)
            if label.terminology is not None:
                segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), label.terminology.to_slicer_entry())
            segment.AddRepresentation(labelmap_name, layer)  # the same object: one shared layer
            segmentation.AddSegment(segment, _segment_id(label.name, taken))
    finally:
        node.EndModify(was_modifying)
    place_under_study(node, reference_node)
    return node


def segmentation_to_labelmap(segmentation_node, reference_node, labels: Iterable[Label]) -> sitk.Image:
    """The segments whose names match ``labels`` as one label image on the reference grid.

    Each segment is resampled (nearest neighbour) onto the reference volume's grid and written with
    its label's value; where segments overlap, the later label in ``labels`` wins. Segments without
    a matching label are ignored; labels without a segment stay absent.

    Returns:
        A 3D image (uint8/int16/int32 by the largest value) with the reference's LPS geometry.
    """
    labels = list(labels)
    _check_labels(labels)
    grid = _reference_grid(reference_node)
    size = grid.size
    dtype = _label_dtype(max((label.value for label in labels), default=1))
    result = np.zeros(tuple(reversed(size)), dtype=dtype)

    reference_geometry = slicer.vtkOrientedImageData()
    reference_geometry.SetExtent(0, size[0] - 1, 0, size[1] - 1, 0, size[2] - 1)
    reference_geometry.SetImageToWorldMatrix(_to_vtk_matrix(_node_ijk_to_world_ras(reference_node)))
    segmentation = segmentation_node.GetSegmentation()
    for label in labels:
        segment_id = segmentation.GetSegmentIdBySegmentName(label.name)
        if not segment_id:
            continue
        mask = _segment_mask(segmentation_node, segment_id, reference_geometry)
        result[mask] = label.value

    return grid.apply_to(sitk.GetImageFromArray(result))


def _segment_mask(segmentation_node, segment_id: str, reference_geometry) -> np.ndarray:
    """Boolean (k, j, i) mask of one segment on ``reference_geometry`` (a vtkOrientedImageData).

    The representation Slicer hands out is the segment's whole layer, which it may share with other
    segments, so the mask is where the layer holds this segment's label value.
    """
    segment_image = slicer.vtkOrientedImageData()
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    if not logic.GetSegmentBinaryLabelmapRepresentation(segmentation_node, segment_id, segment_image):
        raise RuntimeError(
            f"Segment '{segment_id}' of '{segmentation_node.GetName()}' has no label map representation."
        )
    resampled = slicer.vtkOrientedImageData()
    slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
        segment_image, reference_geometry, resampled, False, True
    )
    extent = reference_geometry.GetExtent()
    shape = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
    voxels = numpy_support.vtk_to_numpy(resampled.GetPointData().GetScalars()).reshape(shape)
    return voxels == segmentation_node.GetSegmentation().GetSegment(segment_id).GetLabelValue()


# --- transforms -----------------------------------------------------------------------------------
def displacement_field_to_grid_transform(
    field: sitk.Image, scene, name: str, *, fixed_node=None, moving_node=None, node=None
):
    """A grid transform node from an ITK displacement field (the resampling transform).

    ``field`` follows ITK: 3 float components per voxel, on the fixed image's grid in LPS; it maps
    a fixed-space point p to ``p + d(p)`` in moving space (what ``sitk.DisplacementFieldTransform``
    does). The grid geometry and the vectors are converted to RAS and stored as the node's
    TransformFromParent, which is how Slicer stores resampling transforms read from ITK files.

    Args:
        field: 3D vector image, 3 components (mm, LPS), geometry in LPS.
        scene: the ``vtkMRMLScene`` for a new node.
        name: name of a new node.
        fixed_node, moving_node: volumes saved as node references ``fixedVolume`` / ``movingVolume``;
            the transform is placed under the fixed volume's study.
        node: existing ``vtkMRMLGridTransformNode`` to overwrite, or None to create one.

    Returns:
        The ``vtkMRMLGridTransformNode``.
    """
    if field.GetDimension() != 3 or field.GetNumberOfComponentsPerPixel() != 3:
        raise ValueError(
            f"field must be a 3D image with 3 components per voxel, got {field.GetDimension()}D with "
            f"{field.GetNumberOfComponentsPerPixel()} components"
        )
    vectors_ras = lps_to_ras_vectors(sitk.GetArrayFromImage(field).astype(np.float64))  # (k, j, i, 3)
    direction_lps = np.asarray(field.GetDirection(), dtype=np.float64).reshape(3, 3)
    direction_ras = lps_to_ras_vectors(direction_lps.T).T  # flip each column (a direction vector)

    grid = vtk.vtkImageData()
    grid.SetDimensions(*field.GetSize())
    grid.SetSpacing(*field.GetSpacing())
    grid.SetOrigin(*lps_to_ras_points(np.asarray(field.GetOrigin())).tolist())
    scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(vectors_ras.reshape(-1, 3)), deep=True)
    scalars.SetName("DisplacementField")
    grid.GetPointData().SetScalars(scalars)

    direction_matrix = np.eye(4)
    direction_matrix[:3, :3] = direction_ras
    transform = slicer.vtkOrientedGridTransform()
    transform.SetDisplacementGridData(grid)
    transform.SetGridDirectionMatrix(_to_vtk_matrix(direction_matrix))
    transform.SetInterpolationModeToLinear()  # what itk::DisplacementFieldTransform does

    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLGridTransformNode", name)
    node.SetAndObserveTransformFromParent(transform)
    for role, volume in (("fixedVolume", fixed_node), ("movingVolume", moving_node)):
        if volume is not None:
            node.SetNodeReferenceID(role, volume.GetID())
    if fixed_node is not None:
        place_under_study(node, fixed_node)
    return node
