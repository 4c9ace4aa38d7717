"""Registration presets (``fast``, ``accurate``, ``diffeomorphic``, ``multimodal``) and the parameters they set.

A preset is a JSON file in ``SlicerMedFuse/registration/presets/`` holding a value for every
parameter in :data:`PARAMETERS`; a user preset is any JSON file with a subset of them (the rest
come from ``base``, default ``fast``). Every value can be overridden per run, so
``settings_from_parameters(load_preset("fast") | {"gamma": 20.0})`` is the whole mechanism. The
task's parameter list (``medfuse tasks``, the Slicer panel's Advanced section) is generated from
:data:`PARAMETERS`, so names, ranges and descriptions are written once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.registration.options import (
    BOUNDARIES,
    INITIALIZATIONS,
    LINEAR_STAGES,
    REGULARIZERS,
    SCHEMES,
    SIMILARITIES,
)

if TYPE_CHECKING:  # the configs live with torch code; this module stays importable without torch
    from SlicerMedFuse.registration.affine import AffineConfig
    from SlicerMedFuse.registration.instance_optimization import DeformableConfig

__all__ = [
    "PARAMETERS",
    "PRESETS",
    "PRESET_DIR",
    "ParameterInfo",
    "RegistrationSettings",
    "load_preset",
    "settings_from_parameters",
]

PRESET_DIR = Path(__file__).with_name("presets")
#: Built-in preset names.
PRESETS = ("fast", "accurate", "diffeomorphic", "multimodal")


@dataclasses.dataclass(frozen=True)
class ParameterInfo:
    """One registration parameter: kind (``float|int|bool|choice|str|ints|floats``), description, range, choices, unit."""

    kind: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""


#: Every preset parameter. ``ints``/``floats`` are comma-separated lists (``"100,60,30"``).
PARAMETERS: dict[str, ParameterInfo] = {
    "initialization": ParameterInfo(
        "choice",
        "Start of the linear stage: image centres, centres of mass, or moments (principal axes).",
        choices=INITIALIZATIONS,
    ),
    "linear_stage": ParameterInfo("choice", "Linear registration before the deformable stage.", choices=LINEAR_STAGES),
    "linear_iterations": ParameterInfo("ints", "Adam iterations per linear level, coarse to fine."),
    "linear_spacings": ParameterInfo("floats", "Grid spacing of each linear level, coarse to fine.", unit="mm"),
    "linear_learning_rate": ParameterInfo(
        "float", "Linear stage step (rad for rotations; x50 mm for translations).", 1e-5, 1.0
    ),
    "similarity": ParameterInfo(
        "choice",
        "lncc for the same contrast, mind (MIND-SSC) for different contrasts/modalities, mse for identical intensities.",
        choices=SIMILARITIES,
    ),
    "linear_similarity": ParameterInfo(
        "choice",
        "Similarity of the linear stage: 'same' as the deformable stage, or lncc, mind or mse.",
        choices=("same", *SIMILARITIES),
    ),
    "deformable": ParameterInfo("bool", "Run the deformable stage (false: linear registration only)."),
    "levels": ParameterInfo("int", "Pyramid levels of the deformable stage.", 1, 6),
    "iterations": ParameterInfo("ints", "Adam iterations per deformable level, coarse to fine (one per level)."),
    "finest_scale": ParameterInfo(
        "float", "Resolution of the finest level relative to the image (1 = full, 2 = half).", 1.0, 8.0
    ),
    "field_scale": ParameterInfo(
        "float",
        "Finest grid of the deformation field relative to the image (above finest_scale: the field is upsampled "
        "to the images of the finer levels).",
        1.0,
        8.0,
    ),
    "lncc_window": ParameterInfo("int", "LNCC window edge (odd).", 3, 15, unit="voxels"),
    "mind_radius": ParameterInfo("int", "MIND-SSC patch radius.", 0, 4, unit="voxels"),
    "mind_dilation": ParameterInfo("int", "MIND-SSC neighbour distance.", 1, 6, unit="voxels"),
    "regularizer": ParameterInfo(
        "choice",
        "Smoothness model: explicit diffusion, or the implicitly solved diffusion/elastic/curvature (FFT).",
        choices=REGULARIZERS,
    ),
    "scheme": ParameterInfo(
        "choice",
        "How an implicit regulariser enters: projection of the field, or the decoupled penalty.",
        choices=SCHEMES,
    ),
    "gamma": ParameterInfo("float", "Implicit regularisation strength (voxel units of each level).", 0.0, 1e5),
    "sigma": ParameterInfo("float", "Weight of the decoupling term in the penalty scheme.", 0.0, 1e3),
    "reg_weight": ParameterInfo(
        "float", "lambda of the explicit diffusion loss (1-lambda) sim + lambda reg.", 0.0, 0.999
    ),
    "mu": ParameterInfo("float", "Elastic Lame constant mu.", 0.0, 1e3),
    "lam": ParameterInfo("float", "Elastic Lame constant lambda.", 0.0, 1e3),
    "boundary": ParameterInfo(
        "choice",
        "Boundary condition of the FFT solvers: periodic, neumann (mirror) or padded (zeros up to FFT-friendly sizes).",
        choices=BOUNDARIES,
    ),
    "learning_rate": ParameterInfo("float", "Adam step of the deformable stage.", 1e-4, 10.0, unit="voxels"),
    "diffeomorphic": ParameterInfo("bool", "Stationary velocity field + scaling and squaring: no folding."),
    "integration_steps": ParameterInfo("int", "Scaling-and-squaring steps.", 1, 12),
    "max_voxels": ParameterInfo(
        "int", "Larger fixed images are registered on a coarser working grid (a message says so).", 10_000, 500_000_000
    ),
    "min_overlap": ParameterInfo(
        "float",
        "Least fraction of the fixed foreground that must overlap the moving image after the linear stage.",
        0.0,
        1.0,
    ),
}


@dataclasses.dataclass(frozen=True)
class RegistrationSettings:
    """Everything :func:`SlicerMedFuse.registration.pipeline.register` needs besides the images.

    Attributes:
        linear: linear stage settings.
        deformable: deformable stage settings, or None to stop after the linear stage.
        max_voxels: working-grid size limit.
        min_overlap: least overlap after the linear stage (fraction of the fixed foreground).
    """

    linear: AffineConfig
    deformable: DeformableConfig | None
    max_voxels: int = 20_000_000
    min_overlap: float = 0.2


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(
            f"Cannot read the preset '{path}': {error}; check that it is a JSON object of parameters."
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"The preset '{path}' must be a JSON object of parameter values.")
    unknown = sorted(set(data) - set(PARAMETERS) - {"base", "description"})
    if unknown:
        raise UsageError(
            f"The preset '{path}' has unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMETERS)}."
        )
    return data


def load_preset(name_or_path: str | Path) -> dict[str, Any]:
    """All parameter values of a built-in preset (by name) or a user preset (a JSON file path).

    A user preset may set only some parameters and name its ``"base"`` preset (default ``fast``).

    Raises:
        UsageError: unknown preset, unreadable file or unknown parameter names.
    """
    path = Path(name_or_path)
    if str(name_or_path) in PRESETS:
        path = PRESET_DIR / f"{name_or_path}.json"
    elif path.suffix.lower() != ".json" or not path.is_file():
        raise UsageError(
            f"Unknown preset {str(name_or_path)!r}; use one of {', '.join(PRESETS)} or the path of a .json preset file."
        )
    data = _read_json(path)
    base = data.pop("base", None)
    data.pop("description", None)
    if path.parent != PRESET_DIR or base is not None:
        values = load_preset(base or "fast")
        values.update(data)
        data = values
    missing = sorted(set(PARAMETERS) - set(data))
    if missing:
        raise UsageError(f"The preset '{path}' does not set {', '.join(missing)}.")
    return data


def _as_list(name: str, value: Any, kind: type) -> tuple:
    if isinstance(value, str):
        items = [item for item in value.replace(" ", "").split(",") if item]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    try:
        result = tuple(kind(item) for item in items)
    except (TypeError, ValueError):
        raise UsageError(
            f"Parameter '{name}' needs comma-separated {kind.__name__} values, e.g. '100,60,30'; got {value!r}."
        ) from None
    if not result or any(item < 0 for item in result):
        raise UsageError(f"Parameter '{name}' needs one or more non-negative values; got {value!r}.")
    return result


def settings_from_parameters(values: Mapping[str, Any]) -> RegistrationSettings:
    """Build :class:`RegistrationSettings` from a full parameter mapping (a preset plus overrides).

    Raises:
        UsageError: a missing parameter or an inconsistent combination (e.g. iterations that do
            not match the number of levels), naming the parameter.
    """
    from SlicerMedFuse.registration.affine import AffineConfig
    from SlicerMedFuse.registration.instance_optimization import DeformableConfig

    missing = sorted(set(PARAMETERS) - set(values))
    if missing:
        raise UsageError(f"Registration parameters missing: {', '.join(missing)}.")
    v = dict(values)
    try:
        linear = AffineConfig(
            initialization=v["initialization"],
            stage=v["linear_stage"],
            similarity=v["similarity"] if v["linear_similarity"] == "same" else v["linear_similarity"],
            level_spacings=_as_list("linear_spacings", v["linear_spacings"], float),
            iterations=_as_list("linear_iterations", v["linear_iterations"], int),
            learning_rate=float(v["linear_learning_rate"]),
            lncc_window=int(v["lncc_window"]),
        )
        deformable = None
        if v["deformable"]:
            deformable = DeformableConfig(
                levels=int(v["levels"]),
                iterations=_as_list("iterations", v["iterations"], int),
                finest_scale=float(v["finest_scale"]),
                field_scale=float(v["field_scale"]),
                similarity=v["similarity"],
                lncc_window=int(v["lncc_window"]),
                mind_radius=int(v["mind_radius"]),
                mind_dilation=int(v["mind_dilation"]),
                regularizer=v["regularizer"],
                reg_weight=float(v["reg_weight"]),
                sigma=float(v["sigma"]),
                gamma=float(v["gamma"]),
                mu=float(v["mu"]),
                lam=float(v["lam"]),
                boundary=v["boundary"],
                scheme=v["scheme"],
                learning_rate=float(v["learning_rate"]),
                diffeomorphic=bool(v["diffeomorphic"]),
                integration_steps=int(v["integration_steps"]),
            )
    except ValueError as error:
        raise UsageError(f"Invalid registration parameters: {error}.") from None
    if int(v["lncc_window"]) % 2 == 0:
        raise UsageError(f"Parameter 'lncc_window' must be odd; got {v['lncc_window']}.")
    return RegistrationSettings(
        linear=linear, deformable=deformable, max_voxels=int(v["max_voxels"]), min_overlap=float(v["min_overlap"])
    )
