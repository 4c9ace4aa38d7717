"""The backend process asks glibc to reuse freed memory for large tensors (fewer page faults)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt exists on Linux only")
def test_large_blocks_are_reused_instead_of_mapped_afresh():
    # in a fresh process, as the command line does it: with the setting, allocating and freeing a 64 MB block
    # repeatedly touches new pages only once
    code = (
        "import resource, sys, numpy as np\n"
        "from SlicerMedFuse.memory import reuse_freed_memory\n"
        "if sys.argv[1] == 'on': assert reuse_freed_memory()\n"
        "np.ones(1 << 23)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(10): np.ones(1 << 23)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )
    faults = {
        mode: int(subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, check=True).stdout)
        for mode in ("off", "on")
    }
    assert faults["on"] < faults["off"] / 4, faults
