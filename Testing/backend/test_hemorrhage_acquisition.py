"""The acquisition simulator: geometry (tilt through the DICOM regularisation), slab partial volume,
majority labels, kernels and noise, beam hardening, coverage, and the training / held-out ranges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.hemorrhage.acquisition import (
    HELD_OUT_ACQUISITIONS,
    TRAINING_ACQUISITIONS,
    Acquisition,
    sample_acquisition,
    simulate_acquisition,
)


def _phantom() -> tuple[sitk.Image, sitk.Image]:
    """A 1 mm 'head': 6 mm skull shell (1000 HU) around 35 HU brain, a 12 mm label ball off-centre,
    a 2 mm thick 80 HU plate across z, and two dense 'petrous' blobs low in the head."""
    n = 110
    z, y, x = np.mgrid[0:n, 0:n, 0:n].astype(np.float32) - (n - 1) / 2
    radius = np.sqrt(x**2 + y**2 + (z * 1.1) ** 2)
    hu = np.full((n, n, n), -1000.0, np.float32)
    hu[radius < 50] = 1000.0
    hu[radius < 44] = 35.0
    hu[(np.abs(z - 10) < 1) & (radius < 44)] = 80.0
    for side in (-1, 1):
        hu[np.sqrt((x - side * 22) ** 2 + (y - 5) ** 2 + (z + 25) ** 2) < 6] = 1600.0
    labels = np.zeros((n, n, n), np.uint8)
    labels[np.sqrt((x - 15) ** 2 + (y + 10) ** 2 + (z - 20) ** 2) < 12] = 2
    image = sitk.GetImageFromArray(hu)
    label_image = sitk.GetImageFromArray(labels)
    for im in (image, label_image):
        im.SetOrigin((-55.0, -55.0, -55.0))
    return image, label_image


def _centroid_mm(labels: sitk.Image, value: int) -> np.ndarray:
    index = np.argwhere(sitk.GetArrayFromImage(labels) == value)[:, ::-1].mean(axis=0)
    return np.asarray(labels.TransformContinuousIndexToPhysicalPoint(index.tolist()))


@pytest.mark.parametrize("tilt", [0.0, 20.0, -25.0])
def test_tilted_thick_scan_keeps_labels_in_place(tilt: float) -> None:
    image, labels = _phantom()
    acquisition = Acquisition(slice_thickness_mm=5.0, slice_spacing_mm=5.0, tilt_deg=tilt, inplane_mm=0.8)
    scanned, scanned_labels = simulate_acquisition(image, labels, acquisition, np.random.default_rng(0))
    assert scanned.GetPixelID() == sitk.sitkInt16 and scanned_labels is not None
    assert scanned_labels.GetSize() == scanned.GetSize()
    assert scanned.GetSpacing() == pytest.approx((0.8, 0.8, 5.0))
    normal = np.asarray(scanned.GetDirection()).reshape(3, 3)[:, 2]
    assert math.degrees(math.acos(normal[2])) == pytest.approx(abs(tilt), abs=1e-6)
    # the ball stays where it was (within a slice's partial volume), whatever the tilt
    assert np.linalg.norm(_centroid_mm(scanned_labels, 2) - _centroid_mm(labels, 2)) < 1.5
    back = sitk.GetArrayFromImage(sitk.Resample(scanned_labels, labels, sitk.Transform(), sitk.sitkNearestNeighbor))
    truth = sitk.GetArrayFromImage(labels)
    dice = 2 * np.sum((back == 2) & (truth == 2)) / (np.sum(back == 2) + np.sum(truth == 2))
    assert dice > 0.8


def test_tilted_stack_is_sheared_then_regularised_like_dicom() -> None:
    """The sheared slices reach the DICOM reader's regularisation: each slice's field of view is
    shifted by the table (so it is widened by the shear to keep the head in every slice), and the
    regular grid then covers every shifted slice: twice the shear in all."""
    image, labels = _phantom()
    flat = simulate_acquisition(
        image, None, Acquisition(slice_thickness_mm=5, slice_spacing_mm=5), np.random.default_rng(0)
    )[0]
    tilted = simulate_acquisition(
        image, None, Acquisition(slice_thickness_mm=5, slice_spacing_mm=5, tilt_deg=20), np.random.default_rng(0)
    )[0]
    rows_added = tilted.GetSize()[1] - flat.GetSize()[1]
    shear_mm = (tilted.GetSize()[2] - 1) * 5.0 * math.tan(math.radians(20))
    assert rows_added * 0.5 == pytest.approx(2 * shear_mm, abs=8.0)


def test_thick_slab_averages_a_thin_plate() -> None:
    image, labels = _phantom()
    plate = image.TransformContinuousIndexToPhysicalPoint((54.5, 54.5, 64.5))  # the 2 mm plate's centre
    means = {}
    for thickness in (1.0, 7.5):
        acquisition = Acquisition(slice_thickness_mm=thickness, slice_spacing_mm=0.5, inplane_mm=1.0)
        scanned = simulate_acquisition(image, None, acquisition, np.random.default_rng(0))[0]
        i, j, k = scanned.TransformPhysicalPointToIndex(plate)
        means[thickness] = float(sitk.GetArrayFromImage(scanned)[k, j - 10 : j + 10, i - 10 : i + 10].mean())
    assert means[1.0] == pytest.approx(80, abs=6)  # the plate at nearly full contrast
    assert means[7.5] == pytest.approx(35 + (80 - 35) * 2.0 / 7.5, abs=6)  # diluted over the slab


def test_labels_are_the_slab_majority() -> None:
    image, labels = _phantom()
    thin = simulate_acquisition(
        image, labels, Acquisition(slice_thickness_mm=1, slice_spacing_mm=1), np.random.default_rng(0)
    )[1]
    thick = simulate_acquisition(
        image, labels, Acquisition(slice_thickness_mm=7, slice_spacing_mm=7), np.random.default_rng(0)
    )[1]
    volume = {
        name: float(np.sum(sitk.GetArrayFromImage(lab) == 2)) * np.prod(lab.GetSpacing())
        for name, lab in (("thin", thin), ("thick", thick))
    }
    ball = 4 / 3 * math.pi * 12**3
    assert volume["thin"] == pytest.approx(ball, rel=0.1)
    assert volume["thick"] == pytest.approx(ball, rel=0.3)


def test_noise_follows_dose_thickness_and_kernel() -> None:
    image, _ = _phantom()

    def brain_sd(**settings: object) -> float:
        acquisition = Acquisition(slice_spacing_mm=settings.get("slice_thickness_mm", 5.0), **settings)  # type: ignore[arg-type]
        scanned = sitk.GetArrayFromImage(simulate_acquisition(image, None, acquisition, np.random.default_rng(1))[0])
        middle = scanned[scanned.shape[0] // 2 - 1, 60:100, 40:80].astype(float)
        return float(middle.std())

    quiet = brain_sd(slice_thickness_mm=5.0, noise_hu=0.0, kernel="standard")
    assert quiet < 2.0

    def added(**settings: object) -> float:
        return math.sqrt(max(brain_sd(**settings) ** 2 - quiet**2, 0.0))

    assert added(slice_thickness_mm=5.0, noise_hu=4.0, kernel="standard") == pytest.approx(4.0, rel=0.3)
    assert added(slice_thickness_mm=1.25, noise_hu=4.0, kernel="standard") == pytest.approx(8.0, rel=0.3)


def test_sharp_kernel_overshoots_next_to_bone() -> None:
    image, _ = _phantom()
    scans = {}
    for kernel in ("soft", "very_sharp"):
        acquisition = Acquisition(slice_thickness_mm=3, slice_spacing_mm=3, kernel=kernel)
        scans[kernel] = sitk.GetArrayFromImage(
            simulate_acquisition(image, None, acquisition, np.random.default_rng(0))[0]
        )
    brain = (scans["soft"] > 20) & (scans["soft"] < 60)
    assert scans["very_sharp"][brain].min() < scans["soft"][brain].min() - 20  # dark undershoot inside the skull


def test_beam_hardening_only_where_dense_bone_is() -> None:
    image, _ = _phantom()
    off, on = (
        sitk.GetArrayFromImage(
            simulate_acquisition(
                image,
                None,
                Acquisition(slice_thickness_mm=2, slice_spacing_mm=2, beam_hardening=strength),
                np.random.default_rng(0),
            )[0]
        ).astype(float)
        for strength in (0.0, 1.0)
    )
    changed = np.abs(on - off).reshape(on.shape[0], -1).max(axis=1)
    assert changed.max() > 5  # the petrous slices get streaks and a dark band
    assert changed[int(0.5 * len(changed)) :].max() == 0  # the upper head (vertex skull too) is untouched


def test_field_of_view_cuts_shorten_the_stack() -> None:
    image, _ = _phantom()
    full = simulate_acquisition(
        image, None, Acquisition(slice_thickness_mm=5, slice_spacing_mm=5), np.random.default_rng(0)
    )[0]
    cut = simulate_acquisition(
        image,
        None,
        Acquisition(slice_thickness_mm=5, slice_spacing_mm=5, cut_vertex_mm=20, cut_base_mm=15),
        np.random.default_rng(0),
    )[0]
    assert full.GetSize()[2] - cut.GetSize()[2] == pytest.approx(7, abs=1)


def test_same_rng_same_scan() -> None:
    image, labels = _phantom()
    acquisition = Acquisition(slice_thickness_mm=4, slice_spacing_mm=3, tilt_deg=12, noise_hu=3, beam_hardening=0.5)
    first, second = (simulate_acquisition(image, labels, acquisition, np.random.default_rng(7))[0] for _ in range(2))
    assert np.array_equal(sitk.GetArrayFromImage(first), sitk.GetArrayFromImage(second))


def test_training_ranges_leave_the_held_out_corner_free() -> None:
    rng = np.random.default_rng(0)
    training = [sample_acquisition(rng, TRAINING_ACQUISITIONS) for _ in range(400)]
    held_out = [sample_acquisition(rng, HELD_OUT_ACQUISITIONS) for _ in range(100)]
    assert not any(abs(a.tilt_deg) >= 18 and a.slice_thickness_mm >= 5 for a in training)
    assert all(abs(a.tilt_deg) >= 18 and a.slice_thickness_mm >= 5 for a in held_out)
    assert all(TRAINING_ACQUISITIONS.covers(a) for a in training)
    assert not any(TRAINING_ACQUISITIONS.covers(a) for a in held_out)
    assert {a.kernel for a in training} == {"soft", "standard", "sharp"}
    assert "very_sharp" in {a.kernel for a in held_out}
    assert max(a.slice_thickness_mm for a in training) > 7 and min(a.slice_thickness_mm for a in training) < 1
    assert max(abs(a.tilt_deg) for a in training) > 24


def test_bad_settings_are_refused() -> None:
    with pytest.raises(UsageError, match="kernel"):
        Acquisition(kernel="bone-ish")
    with pytest.raises(UsageError, match="tilt"):
        Acquisition(tilt_deg=60)
    with pytest.raises(UsageError, match="> 0"):
        Acquisition(slice_thickness_mm=0)
