"""A seeded phantom of two-sequence breast MRI (T1C-like, T2W-like, optional pre-contrast) with exact mass masks.

No multi-sequence breast MRI with lesion masks can be reached from this project (issue 6,
section 4), so tests, the demo bundle and the benchmark use this phantom. It renders a prone axial
breast study in physical space (LPS, mm, identity direction):

* **air** outside the body; a **thorax** (chest wall muscle, lungs and an enhancing **heart**, the
  "organs" of the breast paper's Fig. 2) posterior to two **breasts** (half-ellipsoids with a
  skin rim) made of suppressed **fat** and smooth random **fibroglandular** tissue;
* **masses** (lobulated ellipsoids, the label) and **enhancing non-lesion tissue** (background
  parenchymal enhancement foci of the same size and shape distribution, inside the glandular tissue).

Contrasts (:class:`TissueContrast`): in the **T1C** (fat-suppressed, post-contrast) masses, the
enhancing foci and the heart are all bright, so T1C alone cannot tell a mass from a focus. In the
**T2W** (fat-suppressed) the foci and the heart are bright (fluid-rich) while masses stay
intermediate, like the glandular tissue: T2W tells the foci apart but does not show the masses.
Both together identify the masses (Li et al., MICCAI 2019, Fig. 2: "T1C images highlight
irrelevant regions ... T2W can distinguish these regions from the targeted breast masses").
The **pre-contrast** T1 is the T1C without the enhancement, so ``t1c - pre`` is the subtraction
image of the DCE paper (Zhang et al., MLMI 2023).

Grounding in the real crop ``shared/data/breast_mri`` (a single post-contrast-like sequence,
45x120x21 voxels, one lesion; :func:`measure_crop_statistics` recomputes these numbers and a test
checks them against :data:`REAL_CROP`):

* voxel spacing 0.664 x 0.664 x 2.1 mm: the default spacing of :func:`study_geometry` (the
  512 x 512 in-plane grid then spans 340 mm, close to the paper's 336 mm field of view);
* the T1C intensity scale: glandular/background median 60 (8-bit range), lesion median 130 (ratio
  2.17), lesion heterogeneity (std / median 0.123) and the background spread (IQR / 1.349 = 8.2,
  used as the noise sigma); the bright non-lesion tail of the crop (95th percentile 95) sets the
  plain glandular enhancement;
* the smallest mass diameter, 6 mm (the crop lesion's equivalent-sphere diameter, 132 mm^3).
  Larger sizes (up to 30 mm), the T2W and pre-contrast values and the anatomy are not in the crop;
  they are plausible choices documented in :class:`PhantomConfig` and :class:`TissueContrast`.

Everything random comes from one ``numpy.random.Generator`` seeded by ``seed``: the same seed and
geometry give the same study, voxel for voxel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import UsageError

__all__ = [
    "REAL_CROP",
    "BreastPhantom",
    "CropStatistics",
    "PhantomConfig",
    "PhantomMass",
    "Tissue",
    "TissueContrast",
    "generate_phantom",
    "measure_crop_statistics",
    "study_geometry",
]


class Tissue:
    """Values of the phantom's tissue map (uint8)."""

    AIR = 0
    FAT = 1
    GLANDULAR = 2
    ENHANCING_FOCUS = 3  # enhancing non-lesion tissue (T1C-bright, T2W-bright)
    MASS = 4
    MUSCLE = 5
    HEART = 6
    LUNG = 7
    SKIN = 8
    COUNT = 9


@dataclasses.dataclass(frozen=True)
class CropStatistics:
    """Numbers measured on the real breast MRI crop (see :func:`measure_crop_statistics`)."""

    spacing_mm: tuple[float, float, float]
    background_median: float
    background_sigma: float
    background_p95: float
    lesion_median: float
    lesion_relative_std: float
    lesion_volume_mm3: float

    @property
    def lesion_diameter_mm(self) -> float:
        """Diameter of the sphere with the lesion's volume."""
        return float((6.0 * self.lesion_volume_mm3 / np.pi) ** (1.0 / 3.0))


#: Measured on ``shared/data/breast_mri/pyradiomics_breast1_{image,label}.nrrd`` (2026-11-30).
REAL_CROP = CropStatistics(
    spacing_mm=(0.664062, 0.664062, 2.1),
    background_median=60.0,
    background_sigma=8.15,
    background_p95=95.0,
    lesion_median=130.0,
    lesion_relative_std=0.123,
    lesion_volume_mm3=132.4,
)


def measure_crop_statistics(image: sitk.Image, label: sitk.Image) -> CropStatistics:
    """The phantom's grounding numbers from a real image with a lesion mask (same grid).

    Background sigma is the interquartile range of the non-lesion voxels / 1.349 (a robust
    standard deviation: the crop is 8-bit quantised, so a local high-pass estimate is zero).
    """
    values = sitk.GetArrayViewFromImage(image).astype(np.float64)
    mask = sitk.GetArrayViewFromImage(label) > 0
    if not mask.any() or mask.all():
        raise ValueError("the label must mark a lesion and leave background")
    lesion, background = values[mask], values[~mask]
    q25, q50, q75, q95 = np.percentile(background, [25, 50, 75, 95])
    lesion_median = float(np.median(lesion))
    return CropStatistics(
        spacing_mm=tuple(round(s, 6) for s in image.GetSpacing()),  # type: ignore[arg-type]
        background_median=float(q50),
        background_sigma=float((q75 - q25) / 1.349),
        background_p95=float(q95),
        lesion_median=lesion_median,
        lesion_relative_std=float(lesion.std() / lesion_median),
        lesion_volume_mm3=float(mask.sum() * np.prod(image.GetSpacing())),
    )


@dataclasses.dataclass(frozen=True)
class TissueContrast:
    """Mean intensity of each tissue in one sequence (arbitrary units on the crop's 8-bit scale)."""

    air: float
    fat: float
    glandular: float
    focus: float
    mass: float
    muscle: float
    heart: float
    lung: float
    skin: float

    def table(self) -> np.ndarray:
        """Means indexed by :class:`Tissue` value."""
        order = ("air", "fat", "glandular", "focus", "mass", "muscle", "heart", "lung", "skin")
        return np.array([getattr(self, name) for name in order], dtype=np.float32)


#: T1C: glandular at the crop's background median, mass and foci at its lesion median.
T1C_CONTRAST = TissueContrast(
    air=0.0,
    fat=25.0,
    glandular=REAL_CROP.background_median,
    focus=REAL_CROP.lesion_median,
    mass=REAL_CROP.lesion_median,
    muscle=45.0,
    heart=170.0,
    lung=8.0,
    skin=70.0,
)
#: T2W (fat-suppressed): masses like glandular tissue, enhancing foci and heart fluid-bright.
T2W_CONTRAST = TissueContrast(
    air=0.0, fat=30.0, glandular=90.0, focus=190.0, mass=85.0, muscle=40.0, heart=170.0, lung=10.0, skin=80.0
)
#: Pre-contrast T1 (fat-suppressed): the T1C without enhancement.
PRE_CONTRAST = TissueContrast(
    air=0.0, fat=25.0, glandular=52.0, focus=55.0, mass=55.0, muscle=42.0, heart=70.0, lung=8.0, skin=65.0
)


@dataclasses.dataclass(frozen=True)
class PhantomConfig:
    """What a study holds (mm).

    Attributes:
        masses: Range (inclusive) of the number of masses per study; 0 allows mass-free studies.
        mass_diameter_mm: Range of mass diameters (lower end: the real crop lesion's 6 mm).
        foci: Range of the number of enhancing non-lesion foci per study.
        glandular_density: Range of the fibroglandular fraction of the breast volume.
        noise_sigma: Gaussian noise sigma of each sequence's magnitude image (crop: 8.15).
        bias_amplitude: Maximum relative amplitude of the smooth coil-sensitivity field.
        heterogeneity: Relative std of the smooth texture inside tissues (crop lesion: 0.123).
        contrasts: Tissue means per sequence (``t1c``, ``t2w``, ``pre``).
    """

    masses: tuple[int, int] = (1, 2)
    mass_diameter_mm: tuple[float, float] = (6.0, 30.0)
    foci: tuple[int, int] = (2, 4)
    glandular_density: tuple[float, float] = (0.15, 0.45)
    noise_sigma: float = REAL_CROP.background_sigma
    bias_amplitude: float = 0.1
    heterogeneity: float = REAL_CROP.lesion_relative_std
    contrasts: Mapping[str, TissueContrast] = dataclasses.field(
        default_factory=lambda: {"t1c": T1C_CONTRAST, "t2w": T2W_CONTRAST, "pre": PRE_CONTRAST}
    )

    def __post_init__(self) -> None:
        for name in ("masses", "mass_diameter_mm", "foci", "glandular_density"):
            low, high = getattr(self, name)
            if low < 0 or high < low:
                raise UsageError(
                    f"PhantomConfig.{name} must be a range (low <= high, non-negative); got {low}, {high}."
                )
        if self.mass_diameter_mm[0] <= 0:
            raise UsageError("PhantomConfig.mass_diameter_mm must be positive.")
        missing = {"t1c", "t2w", "pre"} - set(self.contrasts)
        if missing:
            raise UsageError(f"PhantomConfig.contrasts lacks {', '.join(sorted(missing))}.")


@dataclasses.dataclass(frozen=True)
class PhantomMass:
    """One rendered mass: centre (LPS, mm), diameter (mm) and volume of its mask (mm^3)."""

    center_mm: tuple[float, float, float]
    diameter_mm: float
    volume_mm3: float


@dataclasses.dataclass(frozen=True)
class BreastPhantom:
    """One phantom study, all images on the same grid.

    Attributes:
        images: ``"t1c"``, ``"t2w"`` and ``"pre"`` (float32).
        mass: The exact mass mask (uint8 0/1): voxel centres inside a mass.
        tissue: The tissue map (uint8, :class:`Tissue` values).
        masses: The masses painted.
        seed: The seed that produced the study.
    """

    images: dict[str, sitk.Image]
    mass: sitk.Image
    tissue: sitk.Image
    masses: tuple[PhantomMass, ...]
    seed: int


def study_geometry(
    size_xy: int = 512, slices: int = 120, spacing_mm: Sequence[float] | None = None, fov_mm: float | None = None
) -> sitk.Image:
    """An empty float32 reference grid for :func:`generate_phantom` (LPS, identity direction, centred).

    Args:
        size_xy: In-plane size (voxels).
        slices: Number of axial slices.
        spacing_mm: ``(x, y, z)`` spacing; default the real crop's (0.664, 0.664, 2.1 mm).
        fov_mm: In-plane field of view; when given, it sets the in-plane spacing (``fov / size``).
    """
    if size_xy < 16 or slices < 2:
        raise UsageError(f"A phantom needs at least 16 x 16 voxels in-plane and 2 slices; got {size_xy}, {slices}.")
    spacing = list(spacing_mm or REAL_CROP.spacing_mm)
    if fov_mm is not None:
        spacing[0] = spacing[1] = float(fov_mm) / size_xy
    grid = sitk.Image([size_xy, size_xy, slices], sitk.sitkFloat32)
    grid.SetSpacing(spacing)
    grid.SetOrigin([-(n - 1) * s / 2.0 for n, s in zip(grid.GetSize(), spacing, strict=True)])
    return grid


def _axes(grid: sitk.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Physical x, y, z coordinates shaped for broadcasting over a ``(z, y, x)`` array."""
    if not np.allclose(grid.GetDirection(), np.eye(3).ravel()):
        raise UsageError("The phantom grid must have the identity direction (axial LPS).")
    size, spacing, origin = grid.GetSize(), grid.GetSpacing(), grid.GetOrigin()
    x, y, z = (origin[i] + spacing[i] * np.arange(size[i], dtype=np.float32) for i in range(3))
    return x[None, None, :], y[None, :, None], z[:, None, None]


def _smooth_field(shape: tuple[int, ...], spacing_zyx: Sequence[float], sigma_mm: float, rng: np.random.Generator):
    """Zero-mean unit-std Gaussian random field with correlation length ``sigma_mm`` (float32)."""
    # Draw on a coarse grid (about sigma / 2 per voxel) and interpolate: same look, far less work.
    factors = [max(1, int(sigma_mm / 2.0 / s)) for s in spacing_zyx]
    coarse_shape = [max(4, -(-n // f) + 1) for n, f in zip(shape, factors, strict=True)]
    noise = sitk.GetImageFromArray(rng.standard_normal(coarse_shape).astype(np.float32))
    coarse_spacing = [f * s for f, s in zip(factors, spacing_zyx, strict=True)][::-1]
    noise.SetSpacing(coarse_spacing)
    noise = sitk.SmoothingRecursiveGaussian(noise, sigma_mm)
    reference = sitk.Image([int(n) for n in shape[::-1]], sitk.sitkFloat32)
    reference.SetSpacing([float(s) for s in spacing_zyx[::-1]])
    field = sitk.GetArrayFromImage(sitk.Resample(noise, reference, sitk.Transform(), sitk.sitkLinear, 0.0))
    return (field - field.mean()) / max(float(field.std()), 1e-6)


def _lobulated(
    axes: tuple[np.ndarray, np.ndarray, np.ndarray], center: np.ndarray, radii: np.ndarray, rng: np.random.Generator
) -> tuple[tuple[slice, ...], np.ndarray]:
    """Normalised radius ``r`` (inside where ``r < 1``) of a rotated, lobulated ellipsoid, on its bounding box."""
    x, y, z = axes
    extent = 1.3 * radii.max()
    box = []
    for coordinate, c in ((z, center[2]), (y, center[1]), (x, center[0])):
        values = coordinate.reshape(-1)
        inside = np.nonzero(np.abs(values - c) <= extent)[0]
        if inside.size == 0:
            return (slice(0, 0),) * 3, np.ones((0, 0, 0), np.float32)
        box.append(slice(int(inside[0]), int(inside[-1]) + 1))
    bz, by, bx = box
    offsets = np.broadcast_arrays(x[..., bx] - center[0], y[:, by] - center[1], z[bz] - center[2])
    points = np.stack(offsets, axis=-1)  # (z, y, x, 3) in mm
    rotation, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    local = points @ rotation.astype(np.float32)
    r = np.linalg.norm(local / radii.astype(np.float32), axis=-1)
    directions = local / np.maximum(np.linalg.norm(local, axis=-1, keepdims=True), 1e-6)
    lobes = np.zeros_like(r)
    for _ in range(3):  # lobulation: a few smooth angular bumps of the surface
        axis = rng.standard_normal(3).astype(np.float32)
        axis /= np.linalg.norm(axis)
        lobes += rng.uniform(0.03, 0.1) * np.cos(rng.integers(2, 5) * np.arccos(np.clip(directions @ axis, -1, 1)))
    return (bz, by, bx), r / (1.0 + lobes)


def _draw_site(candidates: np.ndarray, axes, rng: np.random.Generator) -> np.ndarray | None:
    """A random voxel centre (x, y, z mm) among ``candidates`` (boolean array), or None."""
    flat = np.flatnonzero(candidates)
    if flat.size == 0:
        return None
    k, j, i = np.unravel_index(flat[rng.integers(flat.size)], candidates.shape)
    x, y, z = axes
    return np.array([x[0, 0, i], y[0, j, 0], z[k, 0, 0]], dtype=np.float32)


def _paint_blobs(
    tissue: np.ndarray,
    value: int,
    count: int,
    sites: np.ndarray,
    allowed: np.ndarray,
    axes,
    config: PhantomConfig,
    rng: np.random.Generator,
) -> list[PhantomMass]:
    painted = []
    spacing = [float(a.reshape(-1)[1] - a.reshape(-1)[0]) if a.size > 1 else 1.0 for a in axes]
    voxel_mm3 = float(np.prod(spacing))
    for _ in range(count):
        center = _draw_site(sites, axes, rng)
        if center is None:
            break
        diameter = float(rng.uniform(*config.mass_diameter_mm))
        radii = diameter / 2.0 * rng.uniform(0.7, 1.3, size=3)
        radii *= (diameter / 2.0) / float(np.prod(radii) ** (1.0 / 3.0))  # keep the equivalent diameter
        box, r = _lobulated(axes, center, radii, rng)
        inside = (r < 1.0) & allowed[box]
        tissue[box][inside] = value
        painted.append(PhantomMass(tuple(float(c) for c in center), diameter, float(inside.sum()) * voxel_mm3))
    return painted


def _anatomy(axes, shape: tuple[int, ...], spacing_zyx, config: PhantomConfig, rng: np.random.Generator):
    """The tissue map without masses and foci, and the breast mask."""
    x, y, z = axes
    tissue = np.zeros(shape, dtype=np.uint8)
    # Thorax: posterior ellipse (y > 0 is posterior in LPS); lungs and heart inside the chest wall.
    thorax = ((x / 150.0) ** 2 + ((y - 125.0) / 75.0) ** 2) < 1.0
    tissue[np.broadcast_to(thorax, shape)] = Tissue.MUSCLE
    lungs = (((np.abs(x) - 70.0) / 50.0) ** 2 + ((y - 140.0) / 45.0) ** 2) < 1.0
    tissue[np.broadcast_to(lungs & thorax, shape)] = Tissue.LUNG
    heart = ((x / 45.0) ** 2 + ((y - 125.0) / 35.0) ** 2 + (z / 90.0) ** 2) < 1.0
    tissue[heart] = Tissue.HEART
    # Breasts: half-ellipsoids hanging anteriorly (prone), each side with its own size.
    breast = np.zeros(shape, dtype=bool)
    skin = np.zeros(shape, dtype=bool)
    for side in (-1.0, 1.0):
        cx = side * rng.uniform(70.0, 85.0)
        ax, ay, az = rng.uniform(55.0, 70.0), rng.uniform(75.0, 100.0), rng.uniform(55.0, 75.0)
        r = ((x - cx) / ax) ** 2 + ((y - 55.0) / ay) ** 2 + (z / az) ** 2
        half = (y < 55.0) & ~np.broadcast_to(thorax, r.shape)
        breast |= (r < 1.0) & half
        skin |= (r >= 1.0) & (r < (1.0 + 2.5 / min(ax, ay)) ** 2) & half
    tissue[breast] = Tissue.FAT
    tissue[skin & ~breast] = Tissue.SKIN
    # Fibroglandular tissue: a smooth random field thresholded to the drawn density, denser near
    # the centre of each breast cone.
    field = _smooth_field(shape, spacing_zyx, 6.0, rng)
    field += 1.5 * np.exp(-((np.abs(x) - 77.0) ** 2) / (2 * 35.0**2))  # denser behind the nipple
    density = rng.uniform(*config.glandular_density)
    if breast.any():
        threshold = np.quantile(field[breast], 1.0 - density)
        tissue[breast & (field > threshold)] = Tissue.GLANDULAR
    return tissue, breast


def _render(
    tissue: np.ndarray, contrast: TissueContrast, spacing_zyx, config: PhantomConfig, rng: np.random.Generator
) -> np.ndarray:
    """One sequence: tissue means, partial-volume blur, texture, bias field and Rician noise."""
    means = contrast.table()[tissue]
    texture = _smooth_field(tissue.shape, spacing_zyx, 2.0, rng)
    signal = means * (1.0 + config.heterogeneity * texture * (tissue != Tissue.AIR))
    image = sitk.GetImageFromArray(signal)
    image.SetSpacing([float(s) for s in spacing_zyx[::-1]])
    # Partial volume of the acquisition: a blur of about half an in-plane voxel and half a slice.
    signal = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(image, [0.5 * s for s in spacing_zyx[::-1]]))
    bias = 1.0 + config.bias_amplitude * np.tanh(_smooth_field(tissue.shape, spacing_zyx, 80.0, rng))
    signal = signal * bias
    real = signal + config.noise_sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    imaginary = config.noise_sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    return np.sqrt(real * real + imaginary * imaginary).astype(np.float32)  # magnitude image: Rician noise


def generate_phantom(
    seed: int,
    grid: sitk.Image | None = None,
    config: PhantomConfig | None = None,
    *,
    sequences: Sequence[str] = ("t1c", "t2w", "pre"),
) -> BreastPhantom:
    """Render one phantom study.

    Args:
        seed: Seed of everything random (same seed and grid -> identical study).
        grid: Reference grid (identity direction); default :func:`study_geometry` at 256 x 256 x 32
            over the paper's 336 mm field of view.
        config: What the study holds (default :class:`PhantomConfig`).
        sequences: Which of ``"t1c"``, ``"t2w"``, ``"pre"`` to render (anatomy does not depend on it).

    Returns:
        A :class:`BreastPhantom` whose images, mass mask and tissue map share ``grid``'s geometry.
    """
    config = config or PhantomConfig()
    grid = grid if grid is not None else study_geometry(256, 32, (1.3125, 1.3125, 2.1))
    unknown = set(sequences) - set(config.contrasts)
    if unknown or not sequences:
        raise UsageError(f"sequences must be among {', '.join(sorted(config.contrasts))}; got {list(sequences)}.")
    rng = np.random.default_rng(seed)
    axes = _axes(grid)
    shape = tuple(int(n) for n in grid.GetSize()[::-1])
    spacing_zyx = tuple(float(s) for s in grid.GetSpacing()[::-1])
    tissue, breast = _anatomy(axes, shape, spacing_zyx, config, rng)
    glandular = tissue == Tissue.GLANDULAR
    # Foci start in glandular tissue (background parenchymal enhancement) and may extend into fat.
    foci = int(rng.integers(config.foci[0], config.foci[1] + 1))
    _paint_blobs(tissue, Tissue.ENHANCING_FOCUS, foci, glandular, breast, axes, config, rng)
    # Masses grow anywhere in the breast, over fat or glandular tissue, but not over a focus.
    allowed = breast & (tissue != Tissue.ENHANCING_FOCUS)
    count = int(rng.integers(config.masses[0], config.masses[1] + 1))
    masses = _paint_blobs(tissue, Tissue.MASS, count, allowed, allowed, axes, config, rng)
    images = {}
    for name in ("t1c", "t2w", "pre"):  # fixed order, so the noise of one does not depend on the others' presence
        sequence_rng = np.random.default_rng([seed, ("t1c", "t2w", "pre").index(name)])
        if name in sequences:
            images[name] = _to_image(_render(tissue, config.contrasts[name], spacing_zyx, config, sequence_rng), grid)
    return BreastPhantom(
        images=images,
        mass=_to_image((tissue == Tissue.MASS).astype(np.uint8), grid),
        tissue=_to_image(tissue, grid),
        masses=tuple(masses),
        seed=int(seed),
    )


def _to_image(array: np.ndarray, grid: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(grid)
    return image
