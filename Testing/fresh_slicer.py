"""Run code in a Python that looks like a fresh 3D Slicer before the first-use install (DESIGN rule 8).

A fresh Slicer ships numpy, scipy, SimpleITK, pydicom and pillow, but not torch, monai, jsonschema
or safetensors: the MedFuse modules load, and their installer runs, before those exist. The code
runs in a child process whose import system refuses the blocked packages (they stay installed in
the test venv for the other tests), with the repository and every ``Modules/*`` folder on
``sys.path`` the way Slicer's additional module paths put them there.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

__all__ = ["BLOCKED", "REPO_ROOT", "fresh_slicer_command", "run_in_fresh_slicer"]

REPO_ROOT = Path(__file__).resolve().parents[1]
#: What Slicer does not bundle (its SuperBuild ships numpy, scipy, SimpleITK, pydicom, pillow).
BLOCKED = ("torch", "monai", "jsonschema", "safetensors")

_BOOTSTRAP = """
import sys
BLOCKED = {blocked!r}

class _NotShippedWithSlicer:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not shipped with Slicer)", name=name)
        return None

sys.meta_path.insert(0, _NotShippedWithSlicer())
for _name in list(sys.modules):
    if _name.split(".")[0] in BLOCKED:
        del sys.modules[_name]
sys.path[:0] = {paths!r}
"""


def _module_paths() -> list[str]:
    modules = REPO_ROOT / "Modules"
    return [str(REPO_ROOT), *(str(folder) for folder in sorted(modules.iterdir()) if folder.is_dir())]


def fresh_slicer_command(code: str) -> list[str]:
    """``python -c`` arguments that run ``code`` behind the import blocker."""
    bootstrap = _BOOTSTRAP.format(blocked=BLOCKED, paths=_module_paths())
    return [sys.executable, "-c", bootstrap + "\n" + textwrap.dedent(code)]


def run_in_fresh_slicer(code: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child Python without torch, monai, jsonschema and safetensors.

    Returns:
        The finished process (``returncode``, ``stdout``, ``stderr`` as text); the caller asserts.
    """
    return subprocess.run(
        fresh_slicer_command(code), capture_output=True, text=True, timeout=timeout, cwd=str(REPO_ROOT)
    )
