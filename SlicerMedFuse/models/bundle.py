"""Writing, packing, reading and loading model bundles (DESIGN rule 3).

A bundle is a folder ``<id>-<version>/`` holding ``manifest.json`` (see
:mod:`SlicerMedFuse.models.manifest`) and the weights as ``model.safetensors``. It is distributed
as a ``.zip`` of that folder. Weights are never unpickled: they are read with
``safetensors.torch.load_file`` after their sha256 has been checked against the manifest.

torch and safetensors are imported inside the functions that need them.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from SlicerMedFuse.contract import TaskSpec
from SlicerMedFuse.errors import ModelError, UsageError
from SlicerMedFuse.io.atomic import atomic_path, replace_folder, write_json_atomic
from SlicerMedFuse.models.download import sha256_file
from SlicerMedFuse.models.manifest import (
    MANIFEST_FILE,
    SCHEMA_VERSION,
    WEIGHTS_FILE,
    BundleManifest,
    validate_manifest,
)
from SlicerMedFuse.models.safetensors_header import read_safetensors_shapes
from SlicerMedFuse.models.size_budget import planned_network_shapes
from SlicerMedFuse.nets.registry import build_network

if TYPE_CHECKING:
    import torch

__all__ = [
    "LoadedBundle",
    "check_bundle_for_task",
    "check_weights_fit",
    "keep_loaded_bundles",
    "load_bundle",
    "load_manifest",
    "pack_bundle",
    "save_bundle",
    "verify_weights",
]

_PLACEHOLDER_SHA256 = "0" * 64


@dataclasses.dataclass(frozen=True)
class LoadedBundle:
    """A bundle ready for inference.

    Attributes:
        manifest: the bundle's manifest.
        network: the network with the bundle's weights, in eval mode, on the requested device.
    """

    manifest: BundleManifest
    network: torch.nn.Module


# --- reading ---------------------------------------------------------------------------------------


def _bundle_folder(folder: str | os.PathLike[str]) -> Path:
    path = Path(folder)
    if path.is_file() and path.name == MANIFEST_FILE:
        return path.parent
    if path.suffix.lower() == ".zip" and path.is_file():
        raise ModelError(
            f"{path} is a zipped bundle; install it with 'medfuse models install {path}' or unzip it first."
        )
    if not (path / MANIFEST_FILE).is_file():
        raise ModelError(f"{path} is not a model bundle: it has no {MANIFEST_FILE}; give the bundle folder.")
    return path


def load_manifest(folder: str | os.PathLike[str]) -> BundleManifest:
    """Read and validate a bundle's ``manifest.json``.

    Args:
        folder: the bundle folder (or its ``manifest.json``).

    Raises:
        ModelError: the folder has no manifest, it is not JSON, or it breaks the schema.
    """
    folder = _bundle_folder(folder)
    path = folder / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"The bundle manifest {path} cannot be read ({exc}); get the bundle again.") from exc
    return BundleManifest.from_dict(data, folder)


def verify_weights(manifest: BundleManifest) -> str:
    """Check the weights file against the manifest's sha256.

    Returns:
        The sha256 (hex).

    Raises:
        ModelError: the file is missing, links out of the bundle folder, or its sha256 differs.
    """
    path = manifest.weights_path
    if not path.is_file():
        raise ModelError(f"Bundle '{manifest.name}' has no weights file {path}; install the bundle again.")
    if manifest.folder is not None and not path.resolve().is_relative_to(manifest.folder.resolve()):
        raise ModelError(
            f"Bundle '{manifest.name}' is refused: its weights file {path} is a link to {path.resolve()}, outside "
            "the bundle folder; put the weights file itself into the bundle folder."
        )
    actual = sha256_file(path)
    if actual != manifest.weights_sha256:
        raise ModelError(
            f"Bundle '{manifest.name}' is corrupt: the sha256 of {path.name} is {actual}, its manifest says "
            f"{manifest.weights_sha256}; remove it and install it again."
        )
    return actual


def _shape_mismatch(expected: Mapping[str, tuple[int, ...]], actual: Mapping[str, tuple[int, ...]]) -> str:
    """A short description of how two state-dict key->shape maps differ ('' when they match)."""

    def some(names: list[str]) -> str:
        return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")

    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    shapes = sorted(k for k in set(expected) & set(actual) if tuple(expected[k]) != tuple(actual[k]))
    parts = []
    if missing:
        parts.append(f"missing {some(missing)}")
    if unexpected:
        parts.append(f"unexpected {some(unexpected)}")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} shape mismatch(es), e.g. {k} {tuple(actual[k])} vs {tuple(expected[k])}")
    return "; ".join(parts)


def _unfit(manifest: BundleManifest, problem: str) -> ModelError:
    return ModelError(
        f"The bundle's weights do not fit its architecture '{manifest.architecture}' with the manifest's args "
        f"(bundle '{manifest.name}': {problem}); the bundle is broken, ask its author for a fixed one."
    )


def check_weights_fit(manifest: BundleManifest) -> None:
    """Check, before any network is built, that the weights file is safetensors and fits the architecture.

    The safetensors header is parsed (no torch, nothing unpickled), the network is planned on the
    meta device within the memory budget, and the tensor names and shapes are compared.

    Raises:
        ModelError: the file is not safetensors, the network would exceed the budget, or the
            names/shapes differ.
    """
    stored = read_safetensors_shapes(manifest.weights_path)
    problem = _shape_mismatch(planned_network_shapes(manifest.architecture, manifest.architecture_args), stored)
    if problem:
        raise _unfit(manifest, problem)


#: Bundles kept loaded in this process once :func:`keep_loaded_bundles` was called (batch workers), by
#: folder, device and the folder's files (name, size, mtime): a bundle changed on disk is loaded and verified anew.
_KEPT: dict[tuple[Any, ...], LoadedBundle] | None = None


def keep_loaded_bundles() -> None:
    """From now on, keep each bundle this process loads and return it on the next load (batch workers)."""
    global _KEPT
    if _KEPT is None:
        _KEPT = {}


def load_bundle(folder: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> LoadedBundle:
    """Verify a bundle and build its network with its weights (once per process after :func:`keep_loaded_bundles`).

    The weights' sha256 is checked before the file is opened; the weights are read with
    safetensors (never pickle) and loaded with ``strict=True``.

    Args:
        folder: the bundle folder.
        device: where to put the network (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).

    Returns:
        The manifest and the network in eval mode on ``device``.

    Raises:
        ModelError: the manifest is invalid, the weights are corrupt, or they do not fit the architecture.
    """
    root = Path(folder).resolve()
    if _KEPT is None or not root.is_dir():
        return _load_bundle(folder, device=device)
    files = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in root.iterdir() if p.is_file()))
    key = (str(root), str(device), files)
    if key not in _KEPT:
        _KEPT[key] = _load_bundle(folder, device=device)
    return _KEPT[key]


def _load_bundle(folder: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> LoadedBundle:
    """Verify and build a bundle (no cache): see :func:`load_bundle`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    manifest = load_manifest(folder)
    # the full schema, never the structural fallback, before anything of the bundle is executed or loaded
    validate_manifest(manifest.data, str(manifest.folder / MANIFEST_FILE), schema_required=True)
    verify_weights(manifest)
    check_weights_fit(manifest)  # before building: a huge or mismatched network never gets memory
    try:
        state = load_file(manifest.weights_path, device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"The weights of bundle '{manifest.name}' cannot be read as safetensors ({exc}).") from exc
    network = build_network(manifest.architecture, manifest.architecture_args)
    expected = {key: tuple(value.shape) for key, value in network.state_dict().items()}
    problem = _shape_mismatch(expected, {key: tuple(value.shape) for key, value in state.items()})
    if not problem:
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            problem = str(exc).splitlines()[0]
    if problem:
        raise _unfit(manifest, problem)
    network.to(device)
    network.eval()
    return LoadedBundle(manifest, network)


def check_bundle_for_task(manifest: BundleManifest, task_spec: TaskSpec) -> None:
    """Check that a bundle was made for a task and can be given its inputs.

    The task names must match, every required input role of the task must be a bundle input,
    every bundle input must be a task input, and where the task restricts an input's modalities
    the bundle's modality must be one of them (case-insensitive).

    Raises:
        ModelError: naming what does not fit.
    """
    if manifest.task != task_spec.name:
        raise ModelError(
            f"Model '{manifest.name}' is for task '{manifest.task}', not '{task_spec.name}'; "
            f"choose a model made for '{task_spec.name}' (see 'medfuse models list')."
        )
    roles = manifest.input_roles
    missing = [spec.role for spec in task_spec.inputs if spec.required and spec.role not in roles]
    if missing:
        raise ModelError(
            f"Model '{manifest.name}' does not take the input(s) {', '.join(missing)} that task '{task_spec.name}' "
            "requires; the model is not usable with this version of the task."
        )
    task_roles = {spec.role: spec for spec in task_spec.inputs}
    for item in manifest.inputs:
        spec = task_roles.get(item.role)
        if spec is None:
            raise ModelError(
                f"Model '{manifest.name}' needs input '{item.role}', which task '{task_spec.name}' does not have "
                f"(its inputs are {', '.join(task_roles)})."
            )
        allowed = [m.lower() for m in spec.modalities]
        if "any" not in allowed and item.modality.lower() not in allowed:
            raise ModelError(
                f"Model '{manifest.name}' expects a {item.modality} image as '{item.role}', but task "
                f"'{task_spec.name}' takes {', '.join(spec.modalities)} there."
            )


# --- writing ---------------------------------------------------------------------------------------


def _tensors_for_saving(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as CPU tensors that safetensors accepts: contiguous, each with its own storage."""
    tensors: dict[str, torch.Tensor] = {}
    seen_storages: set[int] = set()
    for key, value in model.state_dict().items():
        tensor = value.detach().to("cpu")
        storage = tensor.untyped_storage()
        whole = storage.nbytes() == tensor.numel() * tensor.element_size()
        # Tied weights and views share storage, which safetensors refuses; give each key its own copy.
        if storage.data_ptr() in seen_storages or not whole or not tensor.is_contiguous():
            tensor = tensor.contiguous().clone()
        else:
            seen_storages.add(storage.data_ptr())
        tensors[key] = tensor
    return tensors


def _check_model_fits(model: torch.nn.Module, manifest: Mapping[str, Any]) -> None:
    """Raise unless the manifest's architecture builds a network whose state dict matches ``model``'s."""
    import torch

    name, args = manifest["architecture"]["name"], manifest["architecture"]["args"]
    try:
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            reference = build_network(name, args)
    except ModelError:
        reference = build_network(name, args)  # some constructors cannot run on meta; raises if args are bad
    expected = {key: tuple(value.shape) for key, value in reference.state_dict().items()}
    actual = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    problem = _shape_mismatch(expected, actual)
    if problem:
        raise ModelError(f"The model does not fit the manifest's architecture '{name}' with its args: {problem}.")


def save_bundle(
    model: torch.nn.Module,
    manifest: Mapping[str, Any],
    folder: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` and ``manifest`` as the bundle folder ``<folder>/<id>-<version>/``.

    The manifest's ``weights`` field is filled in (file, sha256, format); ``schema_version`` and
    ``created`` (UTC now) are filled in when absent. The manifest is validated and the model's
    state dict is checked against the manifest's architecture before anything is written. The
    bundle is written into a temporary sibling folder and renamed into place, so the target
    never holds half a bundle.

    Args:
        model: the trained network; its state dict is saved (any device).
        manifest: the manifest fields (see ``schemas/bundle-manifest.schema.json``).
        folder: the folder in which the bundle folder is created.
        overwrite: replace an existing bundle folder of the same id and version.

    Returns:
        The bundle folder.

    Raises:
        ModelError: the manifest is invalid or the model does not fit its architecture.
        UsageError: the bundle folder exists and ``overwrite`` is false.
    """
    from safetensors.torch import save_file

    data = copy.deepcopy(dict(manifest))
    data.setdefault("schema_version", SCHEMA_VERSION)
    data.setdefault("created", datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat())
    data["weights"] = {"file": WEIGHTS_FILE, "sha256": _PLACEHOLDER_SHA256, "format": "safetensors"}
    BundleManifest.from_dict(data)  # fail early, before writing weights
    parent = Path(folder)
    target = parent / f"{data['id']}-{data['version']}"
    if target.exists() and not overwrite:
        raise UsageError(f"The bundle folder {target} already exists; remove it or pass overwrite=True.")
    _check_model_fits(model, data)

    parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=parent))
    try:
        weights = temp / WEIGHTS_FILE
        save_file(_tensors_for_saving(model), weights, metadata={"format": "pt"})
        data["weights"]["sha256"] = sha256_file(weights)
        write_json_atomic(data, temp / MANIFEST_FILE)
        replace_folder(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return target


def pack_bundle(folder: str | os.PathLike[str], zip_path: str | os.PathLike[str]) -> str:
    """Zip a bundle folder for distribution, after checking it.

    The zip holds one folder named ``<id>-<version>/`` with the manifest and the weights.

    Args:
        folder: the bundle folder.
        zip_path: the ``.zip`` file to write (replaced atomically if it exists).

    Returns:
        The sha256 of the zip, for the catalog entry.

    Raises:
        ModelError: the bundle is invalid or its weights fail the sha256 check.
    """
    manifest = load_manifest(folder)
    verify_weights(manifest)
    assert manifest.folder is not None  # set by load_manifest
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(zip_path) as temp, zipfile.ZipFile(temp, "w") as archive:
        archive.write(manifest.folder / MANIFEST_FILE, f"{manifest.name}/{MANIFEST_FILE}", zipfile.ZIP_DEFLATED)
        # Float weights barely compress; storing them keeps packing and installing fast.
        archive.write(manifest.weights_path, f"{manifest.name}/{manifest.weights_file}", zipfile.ZIP_STORED)
    return sha256_file(zip_path)
