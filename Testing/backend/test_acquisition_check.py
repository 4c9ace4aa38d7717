"""The acquisition check: measured slice thickness, spacing, in-plane spacing and tilt, against the model's ranges.

Synthetic images whose geometry is known (thin and thick slices, an oblique direction = a gantry tilt,
DICOM tags present or absent), a real DICOM series written and read back, manifests with and without
``training_acquisition``, and the whole task on a small real head CT with a tiny randomly initialised
bundle (plumbing, not segmentation quality).
"""

from __future__ import annotations

import copy
import locale
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.api import run_task
from SlicerMedFuse.errors import InputError, ModelError
from SlicerMedFuse.hemorrhage.acquisition_check import (
    AcquisitionCheck,
    MeasuredAcquisition,
    TrainingAcquisition,
    acquisition_warning,
    check_acquisition,
    measure_acquisition,
)
from SlicerMedFuse.io import read_image
from SlicerMedFuse.models.manifest import BundleManifest, schema_problem, validate_manifest
from SlicerMedFuse.models.store import ModelStore
from SlicerMedFuse.models.structural_check import structural_problem

from .hemorrhage_data import tiny_bundle
from .stated_acquisitions import THIN_UNTILTED, copy_stating_acquisitions
from .test_dicom import write_series

#: The ranges issue 15 asks the simulator to cover.
TRAINED = {
    "slice_thickness_mm": [0.6, 7.5],
    "slice_spacing_mm": [0.5, 7.5],
    "tilt_deg": [0, 25],
    "inplane_mm": [0.4, 1.0],
}


def _volume(spacing: tuple[float, float, float], size=(8, 8, 6), direction=None, tags=None) -> sitk.Image:
    image = sitk.Image(*size, sitk.sitkInt16)
    image.SetSpacing(spacing)
    if direction is not None:
        image.SetDirection(tuple(np.asarray(direction, dtype=float).ravel()))
    for key, value in (tags or {}).items():
        image.SetMetaData(key, value)
    return image


def _tilted(degrees: float) -> np.ndarray:
    """Direction of an axial series tilted about the patient's left-right axis (columns: index axes in LPS)."""
    t = math.radians(degrees)
    return np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])


def _acquisition(thickness=1.0, spacing=1.0, tilt=0.0, inplane=(0.5, 0.5)) -> MeasuredAcquisition:
    return MeasuredAcquisition(40, 2, spacing, thickness, "dicom", inplane, tilt, "dicom", 40 * spacing)


# --- measuring ------------------------------------------------------------------------------------
def test_a_thin_axial_volume_without_tags_takes_its_thickness_from_the_spacing() -> None:
    acquisition = measure_acquisition(_volume((0.45, 0.45, 0.625), size=(8, 8, 200)))
    assert (acquisition.slices, acquisition.slice_axis) == (200, 2)
    assert acquisition.slice_spacing_mm == acquisition.slice_thickness_mm == pytest.approx(0.625)
    assert (acquisition.thickness_source, acquisition.tilt_source) == ("spacing", "direction")
    assert acquisition.inplane_mm == pytest.approx((0.45, 0.45)) and acquisition.tilt_deg == 0.0
    assert acquisition.z_extent_mm == pytest.approx(125.0)
    assert acquisition.summary() == "200 slices, 0.625 mm thick, tilt 0.0 deg, 0.45 mm in-plane"


def test_the_dicom_thickness_and_tilt_tags_win_over_the_geometry() -> None:
    tags = {"0018|0050": "7.4", "0018|1120": "-18.5"}
    acquisition = measure_acquisition(_volume((0.49, 0.5, 4.2), size=(8, 8, 28), tags=tags))
    assert acquisition.slice_thickness_mm == 7.4 and acquisition.thickness_source == "dicom"
    assert acquisition.slice_spacing_mm == pytest.approx(4.2)
    assert acquisition.tilt_deg == 18.5 and acquisition.tilt_source == "dicom"  # the magnitude
    assert acquisition.summary() == "28 slices, 7.4 mm thick (4.2 mm apart), tilt 18.5 deg, 0.49 x 0.5 mm in-plane"
    report = acquisition.to_dict()
    assert report["slice_thickness_mm"] == 7.4 and report["inplane_mm"] == [0.49, 0.5] and report["slices"] == 28


def test_unusable_tags_fall_back_to_the_geometry() -> None:
    acquisition = measure_acquisition(_volume((1, 1, 3), tags={"0018|0050": "", "0018|1120": "n/a"}))
    assert (acquisition.thickness_source, acquisition.tilt_source) == ("spacing", "direction")
    assert acquisition.slice_thickness_mm == 3.0


@pytest.mark.parametrize("degrees", [0.0, 7.0, 18.5, -25.0])
def test_an_oblique_direction_is_measured_as_the_tilt(degrees: float) -> None:
    acquisition = measure_acquisition(_volume((0.5, 0.5, 5.0), direction=_tilted(degrees)))
    assert acquisition.tilt_deg == pytest.approx(abs(degrees), abs=1e-6)
    assert acquisition.slice_axis == 2 and acquisition.slice_spacing_mm == 5.0


def test_the_slice_axis_is_the_index_axis_closest_to_superior() -> None:
    coronal_stack = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]])  # columns: index x runs P, y runs S, z runs L
    acquisition = measure_acquisition(_volume((0.8, 4.0, 0.9), size=(10, 30, 12), direction=coronal_stack))
    assert acquisition.slice_axis == 1 and acquisition.slices == 30
    assert acquisition.slice_spacing_mm == 4.0 and acquisition.inplane_mm == pytest.approx((0.8, 0.9))
    assert acquisition.tilt_deg == 0.0


def test_a_2d_image_is_refused_in_one_sentence() -> None:
    with pytest.raises(InputError, match="needs a 3D CT; this image is 2D"):
        measure_acquisition(sitk.Image(8, 8, sitk.sitkInt16))


def test_a_tilted_dicom_series_keeps_its_tilt_and_thickness_through_the_reader(tmp_path: Path) -> None:
    angle, spacing_z = 20.0, 1.5
    shear = spacing_z * math.tan(math.radians(angle))  # sheared positions, axial orientation: the GE way
    saved_locale = locale.setlocale(locale.LC_ALL)
    try:
        write_series(tmp_path, "1.2.3.99", [(0.0, shear * k, spacing_z * k) for k in range(6)], tilt=angle)
    finally:  # GDCM's DICOM writer sets the process locale to "C": later tests reading UTF-8 text would fail
        locale.setlocale(locale.LC_ALL, saved_locale)
    image = read_image(tmp_path)  # regularised onto an orthogonal grid: the direction no longer shows the tilt
    acquisition = measure_acquisition(image)
    assert acquisition.tilt_deg == pytest.approx(angle) and acquisition.tilt_source == "dicom"
    assert acquisition.slice_thickness_mm == 2.5 and acquisition.thickness_source == "dicom"
    assert acquisition.slice_spacing_mm == pytest.approx(spacing_z, abs=1e-4)


# --- checking -------------------------------------------------------------------------------------
def test_a_scan_inside_every_range_is_within() -> None:
    check = check_acquisition(_acquisition(7.5, 7.5, 25.0, (0.4, 1.0)), TrainingAcquisition.from_dict(TRAINED))
    assert check.within is True and check.outside == () and check.outside_fields == ()
    assert check.statement == "within the model's training range"


def test_each_quantity_outside_gets_one_plain_sentence() -> None:
    trained = TrainingAcquisition.from_dict({**TRAINED, "slice_thickness_mm": [0.6, 5.0], "tilt_deg": [0, 10]})
    check = check_acquisition(_acquisition(7.4, 7.4, 18.5, (0.35, 0.35)), trained)
    assert check.within is False
    assert check.outside == (
        "slices are 7.4 mm thick; the model was trained on 0.6-5 mm",
        "the gantry is tilted 18.5 degrees; the model was trained on 0-10 degrees",
        "pixels are 0.35 x 0.35 mm; the model was trained on 0.4-1 mm",
    )
    assert check.outside_fields == ("slice_thickness_mm", "tilt_deg", "inplane_mm")
    report = check.to_dict()
    assert report["within_training_range"] is False and report["outside"] == list(check.outside)
    assert report["training_range"]["tilt_deg"] == [0.0, 10.0]


def test_a_partial_range_checks_only_what_it_states() -> None:
    check = check_acquisition(_acquisition(9.0, 9.0, 40.0), TrainingAcquisition.from_dict({"inplane_mm": [0.4, 1]}))
    assert check.within is True


def test_a_model_that_states_no_range_is_neither_within_nor_outside() -> None:
    check = check_acquisition(_acquisition(), TrainingAcquisition.from_dict(None))
    assert check == AcquisitionCheck(None, (), (), None)
    assert check.statement == "the model does not state the acquisitions it was trained on"
    assert check.to_dict()["within_training_range"] is None and check.to_dict()["training_range"] is None


# --- the warning ----------------------------------------------------------------------------------
def test_no_warning_for_a_thin_scan_inside_the_range() -> None:
    acquisition = _acquisition(1.0, 1.0, 0.0)
    assert (
        acquisition_warning(acquisition, check_acquisition(acquisition, TrainingAcquisition.from_dict(TRAINED))) is None
    )
    assert acquisition_warning(acquisition, check_acquisition(acquisition, None)) is None


def test_thick_slices_alone_keep_the_thick_slice_warning() -> None:
    acquisition = _acquisition(6.0, 6.0)
    for trained in (None, TrainingAcquisition.from_dict(TRAINED)):  # unstated, or thick slices were trained on
        warning = acquisition_warning(acquisition, check_acquisition(acquisition, trained))
        assert warning is not None and warning.startswith("The CT has 6 mm slices (thicker than 5 mm)")
        assert "'superres'" in warning and "super-resolution" in warning


def test_thick_tilted_slices_outside_the_range_give_one_merged_sentence_with_the_fixes() -> None:
    acquisition = _acquisition(7.4, 7.4, 18.5, (0.49, 0.49))
    trained = TrainingAcquisition.from_dict({"slice_thickness_mm": [0.6, 5.0], "tilt_deg": [0, 5]})
    warning = acquisition_warning(acquisition, check_acquisition(acquisition, trained))
    assert warning is not None and warning.count(".") >= 1 and warning.endswith(".")
    assert warning.startswith("The CT is outside the acquisitions the model was trained on (slices are 7.4 mm thick")
    assert warning.count("superres") == 1 and "thicker than" not in warning  # the thick-slice warning merged in
    assert "tilt is corrected on DICOM input" in warning and "vertex" in warning


def test_a_scan_in_the_untrained_corner_is_outside_though_each_quantity_is_inside() -> None:
    """The real GE scan of issue 15 (7.4 mm, 18.5 degrees) lies in the corner the demo models never saw."""
    trained = TrainingAcquisition.from_dict({**TRAINED, "untrained_corner": {"tilt_deg": 18, "slice_thickness_mm": 5}})
    assert trained is not None and trained.to_dict()["untrained_corner"] == {
        "tilt_deg": 18.0,
        "slice_thickness_mm": 5.0,
    }
    corner = _acquisition(7.4, 4.2, 18.5, (0.49, 0.49))
    check = check_acquisition(corner, trained)
    assert check.within is False and check.outside_fields == ("untrained_corner",)
    assert "saw no scan tilted 18 degrees or more with slices 5 mm or thicker" in check.outside[0]
    warning = acquisition_warning(corner, check)
    assert warning is not None and "superres" in warning and "vertex" in warning
    for inside in (_acquisition(7.4, 7.4, 10.0), _acquisition(3.0, 3.0, 24.0)):  # thick or tilted, not both
        assert check_acquisition(inside, trained).within is True


@pytest.mark.parametrize("corner", [{"tilt_deg": 18}, {"tilt_deg": 18, "slice_thickness_mm": 0}, [18, 5]])
def test_a_bad_untrained_corner_is_refused_by_both_checks(corner: object) -> None:
    data = {**_manifest(), "training_acquisition": {**TRAINED, "untrained_corner": corner}}
    assert schema_problem("bundle-manifest", data) is not None
    problem = structural_problem("bundle-manifest", data)
    assert problem is not None and "training_acquisition.untrained_corner" in problem


def test_slices_finer_than_the_range_get_no_thinner_slices_advice() -> None:
    acquisition = _acquisition(0.3, 0.3)
    warning = acquisition_warning(acquisition, check_acquisition(acquisition, TrainingAcquisition.from_dict(TRAINED)))
    assert warning is not None and "0.3 mm thick" in warning and "superres" not in warning


def test_pixels_outside_alone_ask_for_review() -> None:
    acquisition = _acquisition(1.0, 1.0, 0.0, (0.3, 0.3))
    warning = acquisition_warning(acquisition, check_acquisition(acquisition, TrainingAcquisition.from_dict(TRAINED)))
    assert warning is not None and warning.endswith("review every segment.") and "superres" not in warning


# --- the manifest field ---------------------------------------------------------------------------
def _manifest() -> dict:
    return ModelStore().list_bundled()[0].manifest.to_dict()


def test_the_manifest_states_its_training_acquisitions_or_none() -> None:
    without = _manifest()
    without.pop("training_acquisition", None)
    assert BundleManifest.from_dict(without).training_acquisition is None
    stated = BundleManifest.from_dict({**without, "training_acquisition": {"tilt_deg": [0, 25]}})
    ranges = stated.training_acquisition
    assert ranges == {"tilt_deg": [0, 25]}
    ranges["tilt_deg"][1] = 90  # a copy: the manifest is read-only
    assert stated.training_acquisition == {"tilt_deg": [0, 25]}
    assert TrainingAcquisition.from_dict(stated.training_acquisition) == TrainingAcquisition(tilt_deg=(0.0, 25.0))


def test_the_schema_and_the_structural_check_accept_a_sound_field() -> None:
    for stated in (TRAINED, {**TRAINED, "untrained_corner": {"tilt_deg": 18, "slice_thickness_mm": 5.0}}):
        data = {**_manifest(), "training_acquisition": copy.deepcopy(stated)}
        assert schema_problem("bundle-manifest", data) is None
        assert structural_problem("bundle-manifest", data) is None
        validate_manifest(data)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("training_acquisition", [0.6, 7.5], "training_acquisition"),
        ("training_acquisition", {}, "training_acquisition"),
        ("training_acquisition", {"kernel": [1, 2]}, "training_acquisition.kernel"),
        ("training_acquisition", {"slice_thickness_mm": [0.6]}, "training_acquisition.slice_thickness_mm"),
        ("training_acquisition", {"slice_thickness_mm": [0.6, "7"]}, "training_acquisition.slice_thickness_mm"),
        ("training_acquisition", {"inplane_mm": [0, 1]}, "training_acquisition.inplane_mm"),
        ("training_acquisition", {"tilt_deg": [0, 95]}, "training_acquisition.tilt_deg"),
        ("training_acquisition", {"tilt_deg": [0, True]}, "training_acquisition.tilt_deg"),
    ],
)
def test_a_bad_field_is_refused_by_both_checks_naming_it(field: str, value: object, named: str) -> None:
    data = {**_manifest(), field: value}
    assert schema_problem("bundle-manifest", data) is not None
    problem = structural_problem("bundle-manifest", data)
    assert problem is not None and f"field '{named}" in problem
    with pytest.raises(ModelError, match="training_acquisition"):
        validate_manifest(data)


def test_a_range_whose_ends_are_swapped_is_refused_although_the_schema_cannot_see_it() -> None:
    data = {**_manifest(), "training_acquisition": {"slice_thickness_mm": [7.5, 0.6]}}
    assert schema_problem("bundle-manifest", data) is None  # JSON Schema cannot compare the two ends
    with pytest.raises(
        ModelError, match=r"field 'training_acquisition.slice_thickness_mm' is invalid: expected 0 < low"
    ):
        validate_manifest(data)


# --- the task's report ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_bundle_with_ranges(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The tiny trained hemorrhage bundle, stating thin, untilted training acquisitions."""
    return copy_stating_acquisitions(
        tiny_bundle(tmp_path_factory, shared_data), tmp_path_factory.mktemp("acquisition-models"), THIN_UNTILTED
    )


def test_the_report_carries_the_acquisition_and_one_merged_warning(
    tiny_bundle_with_ranges, shared_data, small_torch_work
):
    ct = sitk.ReadImage(str(shared_data / "head_ct" / "invesalius_ct0051_head.nii.gz"))[::4, ::4, 10:108:5]  # 7.5 mm
    ct.SetDirection(tuple(_tilted(18.5).ravel()))
    result = run_task("hemorrhage", {"ct": ct}, params={"overlap": 0.0}, model=tiny_bundle_with_ranges, device="cpu")
    acquisition = result.report["acquisition"]
    assert acquisition["slices"] == 20 and acquisition["slice_thickness_mm"] == 7.5
    assert acquisition["thickness_source"] == "spacing" and acquisition["tilt_deg"] == pytest.approx(18.5)
    assert acquisition["within_training_range"] is False
    assert acquisition["outside"] == [
        "slices are 7.5 mm thick; the model was trained on 0.6-5 mm",
        "the gantry is tilted 18.5 degrees; the model was trained on 0-10 degrees",
    ]
    assert acquisition["training_range"] == THIN_UNTILTED
    assert acquisition["summary"].startswith("20 slices, 7.5 mm thick, tilt 18.5 deg")
    about_acquisition = [w for w in result.report["warnings"] if "slices" in w or "tilt" in w]
    assert len(about_acquisition) == 1 and "superres" in about_acquisition[0]
