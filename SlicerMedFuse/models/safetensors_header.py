"""Read a safetensors file's header without torch: tensor names, dtypes, shapes, and that it is one.

The format (https://huggingface.co/docs/safetensors): an 8-byte little-endian unsigned header
length N, then N bytes of UTF-8 JSON ``{"name": {"dtype": "F32", "shape": [..], "data_offsets":
[begin, end]}, ..., "__metadata__": {...}}``, then the tensor bytes, each tensor's range given
relative to the end of the header, the ranges covering the data without holes or overlaps.

A sha256 check only proves that a file is the one its manifest names; this proves that it is
safetensors at all (a pickle renamed ``.safetensors`` fails here, and is never unpickled) and
gives the shapes to compare with the architecture before any network is built.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

from SlicerMedFuse.errors import ModelError

__all__ = ["DTYPE_BYTES", "read_safetensors_shapes"]

#: Bytes per element of each safetensors dtype.
DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
_MAX_HEADER_BYTES = 100 * 2**20  # the format's own limit on the JSON header


def _broken(path: Path, detail: str) -> ModelError:
    return ModelError(
        f"The weights file {path} is not a valid safetensors file ({detail}); the bundle is broken or was "
        "replaced, install it again from a trusted source."
    )


def _read_header(path: Path) -> tuple[dict, int]:
    size = path.stat().st_size
    with path.open("rb") as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise _broken(path, "shorter than its 8-byte header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(_MAX_HEADER_BYTES, size - 8):
            raise _broken(path, f"its header length {length} does not fit the {size}-byte file")
        raw = stream.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _broken(path, "its header is not JSON") from None
    if not isinstance(header, dict):
        raise _broken(path, "its header is not a JSON object")
    return header, size - 8 - length


def _tensor_shape(path: Path, name: str, entry: object) -> tuple[tuple[int, ...], tuple[int, int]]:
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
        raise _broken(path, f"tensor '{name}' lacks dtype, shape or data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPE_BYTES:
        raise _broken(path, f"tensor '{name}' has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise _broken(path, f"tensor '{name}' has an invalid shape {shape!r}")
    valid_offsets = isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
    if not valid_offsets or not 0 <= offsets[0] <= offsets[1]:
        raise _broken(path, f"tensor '{name}' has invalid data_offsets {offsets!r}")
    if offsets[1] - offsets[0] != math.prod(shape) * DTYPE_BYTES[dtype]:
        raise _broken(path, f"tensor '{name}' has {offsets[1] - offsets[0]} bytes for shape {shape} of {dtype}")
    return tuple(shape), (offsets[0], offsets[1])


def read_safetensors_shapes(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """The tensor name -> shape map of a safetensors file, after checking that the file is one.

    Reads only the header (and the file size): no torch, no tensor data, nothing executed.

    Args:
        path: the ``.safetensors`` file.

    Returns:
        Tensor name -> shape, in the header's order.

    Raises:
        ModelError: the file is not safetensors (bad header length, header not JSON, unknown dtype,
            a tensor's byte range wrong for its shape, ranges with holes or overlaps, or data
            shorter or longer than the ranges), or it cannot be read.
    """
    path = Path(path)
    try:
        header, data_bytes = _read_header(path)
    except OSError as error:
        raise ModelError(f"The weights file {path} cannot be read ({error.strerror or error}).") from None
    shapes: dict[str, tuple[int, ...]] = {}
    ranges = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shapes[name], span = _tensor_shape(path, name, entry)
        ranges.append(span)
    end = 0
    for begin, stop in sorted(ranges):
        if begin != end:
            raise _broken(path, "its tensors' byte ranges leave holes or overlap")
        end = stop
    if end != data_bytes:
        raise _broken(path, f"its tensors take {end} bytes but the file holds {data_bytes}")
    return shapes
