"""The bundle manifest: its JSON schema, its validation and a typed read-only view of it.

A bundle is a folder ``<id>-<version>/`` holding ``manifest.json`` and the weights
(``model.safetensors``). The manifest format is defined by ``schemas/bundle-manifest.schema.json``
(JSON Schema draft 2020-12); a manifest that breaks it raises a
:class:`~SlicerMedFuse.errors.ModelError` naming the bad field. This module imports no torch.

Validation rule: jsonschema is imported only inside validation. Where it is not installed (a
fresh Slicer before the first-use install, listing the bundled models) a manifest gets the
structural check of :mod:`~SlicerMedFuse.models.structural_check`, which covers every field
:class:`BundleManifest` reads; loading a bundle's weights (:func:`~SlicerMedFuse.models.bundle.load_bundle`,
which needs torch and the rest of the backend's requirements) always validates against the full schema.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from SlicerMedFuse.contract import Label
from SlicerMedFuse.errors import ModelError
from SlicerMedFuse.models.structural_check import structural_problem, training_acquisition_problem
from SlicerMedFuse.nets.registry import is_registered, known_architectures

if TYPE_CHECKING:  # imported inside validation only: the model listing runs where jsonschema is not installed
    import jsonschema
    from jsonschema.exceptions import ValidationError

__all__ = [
    "MANIFEST_FILE",
    "SCHEMA_VERSION",
    "WEIGHTS_FILE",
    "BundleInput",
    "BundleManifest",
    "describe_validation_error",
    "first_schema_error",
    "load_schema",
    "schema_problem",
    "validate_manifest",
    "version_key",
]

MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "model.safetensors"
SCHEMA_VERSION = 1

_VERSION_CORE = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


@functools.cache
def _schema(name: str) -> dict[str, Any]:
    text = (
        resources.files("SlicerMedFuse.models").joinpath("schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    )
    return json.loads(text)


def load_schema(name: str) -> dict[str, Any]:
    """A copy of a packaged JSON schema, by file stem: ``"bundle-manifest"`` or ``"catalog"``."""
    return copy.deepcopy(_schema(name))


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(_schema(name))


def _field_path(parts: list[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def describe_validation_error(error: ValidationError) -> str:
    """``field 'x.y' <reason>`` for a JSON-schema error, naming the field a person must fix."""
    parts = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, Mapping):
        missing = [name for name in error.validator_value if name not in error.instance]
        return f"field '{_field_path([*parts, missing[0]])}' is missing"
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(str(name) for name in error.instance if name not in allowed)
        if extra:
            return f"field '{_field_path([*parts, extra[0]])}' is not allowed"
    message = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    return f"field '{_field_path(parts)}' is invalid: {message}"


def first_schema_error(schema_name: str, data: Any) -> ValidationError | None:
    """The most relevant error of ``data`` against a packaged schema, or None when it is valid (needs jsonschema)."""
    from jsonschema.exceptions import best_match

    return best_match(_validator(schema_name).iter_errors(data))


def _jsonschema_installed() -> bool:
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        return False
    return True


def schema_problem(schema_name: str, data: Any, *, schema_required: bool = False) -> str | None:
    """What is wrong with ``data`` against a packaged schema, as ``"field 'x.y' ..."``; None when it is valid.

    With jsonschema importable this is the full schema; without it (a fresh Slicer) the structural
    check of :func:`~SlicerMedFuse.models.structural_check.structural_problem`.

    Args:
        schema_name: ``"bundle-manifest"`` or ``"catalog"``.
        data: the parsed JSON document.
        schema_required: refuse the structural fallback (before weights are loaded).

    Raises:
        ModelError: jsonschema is not installed and ``schema_required`` is set.
    """
    if _jsonschema_installed():
        error = first_schema_error(schema_name, data)
        return None if error is None else describe_validation_error(error)
    if schema_required:
        raise ModelError(
            f"A {schema_name} cannot be fully validated because jsonschema is not installed; install the "
            "SlicerMedFuse backend's requirements (in Slicer: the module's first-use install)."
        )
    return structural_problem(schema_name, data)


def validate_manifest(data: Any, source: str = "", *, schema_required: bool = False) -> None:
    """Check a manifest against the schema (or, without jsonschema, its structure) and the architecture registry.

    Args:
        data: the parsed ``manifest.json``.
        source: where it came from, for the message (a path).
        schema_required: refuse to fall back to the structural check (before weights are loaded).

    Raises:
        ModelError: naming the first bad field, or jsonschema missing when ``schema_required``.
    """
    where = f" {source}" if source else ""
    problem = schema_problem("bundle-manifest", data, schema_required=schema_required)
    if problem is not None:
        raise ModelError(f"The bundle manifest{where} is invalid: {problem}; fix it or get the bundle again.")
    problem = training_acquisition_problem(data)  # the order of each range's ends, which the schema cannot check
    if problem is not None:
        raise ModelError(f"The bundle manifest{where} is invalid: {problem}; fix it or get the bundle again.")
    name = data["architecture"]["name"]
    if not is_registered(name):
        raise ModelError(
            f"The bundle manifest{where} names an unknown architecture in field 'architecture.name': '{name}'; "
            f"known architectures are {', '.join(known_architectures())}."
        )
    values = [label["value"] for label in data["labels"]]
    if len(set(values)) != len(values):
        raise ModelError(f"The bundle manifest{where} is invalid: field 'labels' repeats a label value {values}.")
    roles = [item["role"] for item in data["inputs"]]
    if len(set(roles)) != len(roles):
        raise ModelError(f"The bundle manifest{where} is invalid: field 'inputs' repeats a role {roles}.")


def version_key(version: str) -> tuple[Any, ...]:
    """A sort key ordering versions as semantic versioning does (``1.10.0 > 1.9.0 > 1.9.0-rc1``).

    Text that is not semantic versioning sorts below every real version, by its text.
    """
    core, _, _build = version.partition("+")
    core, _, pre = core.partition("-")
    match = _VERSION_CORE.match(core)
    if not match or match.end() != len(core):
        return (0, version)
    numbers = tuple(int(part) for part in match.groups())
    # A release sorts after its pre-releases; pre-release identifiers compare numerically when numeric.
    pre_key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")) if pre else ()
    return (1, numbers, 0 if pre else 1, pre_key)


@dataclasses.dataclass(frozen=True)
class BundleInput:
    """One network input channel: the task's input role and the imaging modality it expects."""

    role: str
    modality: str


@dataclasses.dataclass(frozen=True)
class BundleManifest:
    """A validated ``manifest.json``, read-only.

    Attributes:
        id: model identifier.
        version: semantic version string.
        task: name of the task the model serves.
        title: human-readable name.
        inputs: network input channels in order.
        labels: output labels (empty for models that do not segment).
        architecture: registry name of the network.
        architecture_args: constructor arguments of the network.
        weights_file: file name of the safetensors weights inside the bundle folder.
        weights_sha256: sha256 the weights file must have.
        license: licence of the weights.
        intended_use: what the model may be used for.
        simulated_training: whether the training data was simulated.
        folder: the bundle folder it was read from, if any.
        data: the whole manifest as parsed (a private copy; use :meth:`to_dict` to get one to edit).
    """

    id: str
    version: str
    task: str
    title: str
    inputs: tuple[BundleInput, ...]
    labels: tuple[Label, ...]
    architecture: str
    architecture_args: Mapping[str, Any] = dataclasses.field(hash=False, compare=False)
    weights_file: str = ""
    weights_sha256: str = ""
    license: str = ""
    intended_use: str = ""
    simulated_training: bool = False
    folder: Path | None = None
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], folder: str | os.PathLike[str] | None = None) -> BundleManifest:
        """Validate ``data`` and wrap it.

        Raises:
            ModelError: the manifest is invalid (the message names the field).
        """
        source = str(Path(folder) / MANIFEST_FILE) if folder is not None else ""
        validate_manifest(data, source)
        data = copy.deepcopy(dict(data))
        return cls(
            id=data["id"],
            version=data["version"],
            task=data["task"],
            title=data["title"],
            inputs=tuple(BundleInput(item["role"], item["modality"]) for item in data["inputs"]),
            labels=tuple(Label(item["value"], item["name"], tuple(item["color"])) for item in data["labels"]),
            architecture=data["architecture"]["name"],
            architecture_args=copy.deepcopy(data["architecture"]["args"]),
            weights_file=data["weights"]["file"],
            weights_sha256=data["weights"]["sha256"],
            license=data["license"],
            intended_use=data["intended_use"],
            simulated_training=data["training"]["simulated"],
            folder=Path(folder) if folder is not None else None,
            data=data,
        )

    @property
    def name(self) -> str:
        """``id-version``, the bundle folder's conventional name."""
        return f"{self.id}-{self.version}"

    @property
    def input_roles(self) -> tuple[str, ...]:
        """The input roles in channel order."""
        return tuple(item.role for item in self.inputs)

    @property
    def preprocessing(self) -> dict[str, Any]:
        """The preprocessing settings (a copy; empty when the manifest has none)."""
        return copy.deepcopy(self.data.get("preprocessing", {}))

    @property
    def postprocessing(self) -> dict[str, Any]:
        """The post-processing settings chosen after training (a copy; empty when the manifest has none)."""
        return copy.deepcopy(self.data.get("postprocessing", {}))

    @property
    def training_acquisition(self) -> dict[str, Any] | None:
        """The acquisitions the model was trained on (a copy), or None when the manifest does not state them.

        ``{"slice_thickness_mm": [low, high], "slice_spacing_mm": [...], "tilt_deg": [...],
        "inplane_mm": [...]}``, any subset, inclusive ranges in mm and degrees; optionally
        ``"untrained_corner": {"tilt_deg": t, "slice_thickness_mm": s}`` (no scan both that tilted and that thick).
        """
        ranges = self.data.get("training_acquisition")
        return copy.deepcopy(dict(ranges)) if ranges is not None else None

    @property
    def weights_path(self) -> Path:
        """Path of the weights file; needs :attr:`folder`."""
        if self.folder is None:
            raise ModelError(f"Bundle '{self.name}' was not read from a folder, so it has no weights file.")
        return self.folder / self.weights_file

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the manifest as parsed."""
        return copy.deepcopy(dict(self.data))
