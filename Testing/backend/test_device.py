"""Device choice and the out-of-memory message."""

from __future__ import annotations

import pytest
import torch

from SlicerMedFuse.device import DeviceConfig, autocast, out_of_memory_guard, resolve_device
from SlicerMedFuse.errors import ResourceError, UsageError


def test_auto_and_cpu_resolve_on_this_machine():
    auto = resolve_device("auto")
    assert auto.kind in ("cpu", "cuda", "mps")
    cpu = resolve_device("cpu", threads=1)
    assert cpu == DeviceConfig("cpu", "cpu", 1, False)
    torch.set_num_threads(max(1, torch.get_num_threads()))


def test_bad_and_missing_devices():
    with pytest.raises(UsageError, match="Device must be one of"):
        resolve_device("tpu")
    with pytest.raises(UsageError, match="Threads"):
        resolve_device("cpu", threads=0)
    if not torch.cuda.is_available():
        with pytest.raises(ResourceError, match="--device cpu"):
            resolve_device("cuda")


def test_cuda_out_of_memory_offers_the_cpu():
    gpu = DeviceConfig("cuda:0", "cuda", 1, True)
    with pytest.raises(ResourceError, match="--device cpu"):
        with out_of_memory_guard(gpu):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_cpu_out_of_memory_is_a_resource_error():
    with pytest.raises(ResourceError, match="ran out of memory"):
        with out_of_memory_guard(resolve_device("cpu")):
            raise MemoryError()


def test_autocast_is_a_no_op_on_cpu():
    with autocast(resolve_device("cpu")):
        assert not torch.is_autocast_enabled()
