"""The structural check of a bundle manifest or a catalog, for Pythons without jsonschema (a fresh Slicer).

Slicer's panels list the installed and bundled models, and read the packaged catalog, before the
first-use install has brought jsonschema. There a document is checked field by field for what the
backend reads from it (presence and JSON type; for catalog entries also that no unknown field is
present, since they become :class:`~SlicerMedFuse.models.catalog.CatalogEntry` keyword arguments),
so a broken file still gives one sentence naming the field instead of a KeyError. The full schema
(patterns, ranges, allowed extra fields) is checked wherever jsonschema is installed, and always
before a bundle's weights are loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["structural_problem", "training_acquisition_problem"]

JsonType = type | tuple[type, ...]

#: Manifest: top-level field -> JSON type, and the fields of the nested objects BundleManifest reads.
_MANIFEST: dict[str, JsonType] = {
    "id": str,
    "version": str,
    "task": str,
    "title": str,
    "inputs": list,
    "labels": list,
    "architecture": dict,
    "weights": dict,
    "license": str,
    "intended_use": str,
    "training": dict,
}
_MANIFEST_OBJECTS: dict[str, dict[str, JsonType]] = {
    "architecture": {"name": str, "args": dict},
    "weights": {"file": str, "sha256": str},
    "training": {"simulated": bool},
}
_MANIFEST_ITEMS: dict[str, dict[str, JsonType]] = {
    "inputs": {"role": str, "modality": str},
    "labels": {"value": int, "name": str, "color": list},
}
#: ``training_acquisition``: quantity -> the rule its ``[low, high]`` must follow (lengths in mm, tilt in degrees).
_TRAINING_ACQUISITION_RULES: dict[str, str] = {
    "slice_thickness_mm": "0 < low <= high",
    "slice_spacing_mm": "0 < low <= high",
    "tilt_deg": "0 <= low <= high <= 90",
    "inplane_mm": "0 < low <= high",
}
#: Catalog: one entry of ``models`` (exactly these fields).
_CATALOG_ENTRY: dict[str, JsonType] = {
    "id": str,
    "version": str,
    "task": str,
    "title": str,
    "url": str,
    "sha256": str,
    "size": int,
    "license": str,
    "intended_use": str,
    "simulated_training": bool,
}


def _type_problem(field: str, value: Any, expected: JsonType) -> str | None:
    # JSON booleans are Python ints: an integer field must not accept true/false
    wrong_bool = isinstance(value, bool) and expected is not bool
    if wrong_bool or not isinstance(value, expected):
        name = expected.__name__ if isinstance(expected, type) else "/".join(t.__name__ for t in expected)
        return f"field '{field}' is invalid: expected {name}, got {type(value).__name__}"
    return None


def _object_problem(prefix: str, data: Any, fields: Mapping[str, JsonType], *, closed: bool = False) -> str | None:
    """The first missing or mistyped field of ``data`` (an object at ``prefix``); ``closed``: no other fields."""
    problem = _type_problem(prefix or "(top level)", data, dict)
    if problem:
        return problem
    for key, expected in fields.items():
        field = f"{prefix}.{key}" if prefix else key
        if key not in data:
            return f"field '{field}' is missing"
        problem = _type_problem(field, data[key], expected)
        if problem:
            return problem
    extra = sorted(str(key) for key in data if key not in fields) if closed else []
    return f"field '{prefix}.{extra[0]}' is not allowed" if extra else None


def _label_problem(index: int, label: Mapping[str, Any]) -> str | None:
    """The checks :class:`~SlicerMedFuse.contract.Label` would otherwise fail with a ValueError."""
    if label["value"] < 1:
        return f"field 'labels[{index}].value' is invalid: labels start at 1 (0 is background)"
    colour = label["color"]
    if len(colour) != 3 or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in colour):
        return f"field 'labels[{index}].color' is invalid: expected three integers 0..255"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def training_acquisition_problem(data: Any) -> str | None:
    """What is wrong with a manifest's optional ``training_acquisition`` field; None when it is absent or sound.

    Each stated quantity must be ``[low, high]``: ``0 < low <= high`` for lengths (mm),
    ``0 <= low <= high <= 90`` for the tilt (degrees). JSON Schema cannot compare the two ends, so
    :func:`~SlicerMedFuse.models.manifest.validate_manifest` calls this after the full schema too.
    """
    if not isinstance(data, Mapping) or "training_acquisition" not in data:
        return None
    ranges = data["training_acquisition"]
    problem = _type_problem("training_acquisition", ranges, dict)
    if problem:
        return problem
    if not ranges:
        return "field 'training_acquisition' is invalid: state at least one range or leave the field out"
    for key, bounds in ranges.items():
        field = f"training_acquisition.{key}"
        if key == "untrained_corner":
            problem = _corner_problem(field, bounds)
            if problem:
                return problem
            continue
        if key not in _TRAINING_ACQUISITION_RULES:
            return f"field '{field}' is not allowed"
        if not (isinstance(bounds, list) and len(bounds) == 2 and all(_is_number(b) for b in bounds)):
            return f"field '{field}' is invalid: expected [low, high], two numbers"
        low, high = bounds
        sound = 0 <= low <= high <= 90 if key == "tilt_deg" else 0 < low <= high
        if not sound:
            return f"field '{field}' is invalid: expected {_TRAINING_ACQUISITION_RULES[key]}, got {bounds}"
    return None


def _corner_problem(field: str, corner: Any) -> str | None:
    """``untrained_corner``: exactly ``tilt_deg`` (0-90) and ``slice_thickness_mm`` (> 0), numbers."""
    if not (isinstance(corner, Mapping) and set(corner) == {"tilt_deg", "slice_thickness_mm"}):
        return f'field \'{field}\' is invalid: expected {{"tilt_deg": ..., "slice_thickness_mm": ...}}'
    tilt, thickness = corner["tilt_deg"], corner["slice_thickness_mm"]
    if not (_is_number(tilt) and _is_number(thickness) and 0 <= tilt <= 90 and thickness > 0):
        return f"field '{field}' is invalid: expected a tilt of 0-90 degrees and a thickness above 0 mm"
    return None


def _manifest_problem(data: Any) -> str | None:
    problem = _object_problem("", data, _MANIFEST)
    for name, fields in _MANIFEST_OBJECTS.items():
        problem = problem or _object_problem(name, data[name], fields)
    for name, fields in _MANIFEST_ITEMS.items():
        for index, item in enumerate(data[name] if problem is None else ()):
            problem = problem or _object_problem(f"{name}[{index}]", item, fields)
            if problem is None and name == "labels":
                problem = _label_problem(index, item)
    return problem or training_acquisition_problem(data)


def _catalog_problem(data: Any) -> str | None:
    problem = _object_problem("", data, {"models": list})
    for index, item in enumerate(data["models"] if problem is None else ()):
        problem = problem or _object_problem(f"models[{index}]", item, _CATALOG_ENTRY, closed=True)
    return problem


_CHECKS = {"bundle-manifest": _manifest_problem, "catalog": _catalog_problem}


def structural_problem(schema_name: str, data: Any) -> str | None:
    """What is wrong with ``data``, checked without jsonschema; None when the fields the backend reads are sound.

    Args:
        schema_name: ``"bundle-manifest"`` or ``"catalog"`` (the packaged schema's file stem).
        data: the parsed JSON document.

    Returns:
        ``"field 'x.y' ..."`` naming the first bad field, or None.
    """
    return _CHECKS[schema_name](data)
