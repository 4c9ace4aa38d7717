"""The README's "From Slicer's Python console" snippets run verbatim, on slicer-core, with the real backend.

Each ```python block of that section is executed as it is written, in a namespace like Slicer's
Python console (``slicer``, ``vtk``, ``qt``, ``ctk`` and ``from slicer.util import *``), with the
module folders on ``sys.path`` as Slicer's additional module paths put them. Before each block the
scene is cleared and holds only sample volumes named as that block names them (``getNode("...")``),
made from real scans cut down to a few thousand voxels; a block that calls ``autoAssign`` also gets
the breast study of :data:`BREAST_STUDY`. So every block must stand alone (its own imports and
nodes), and every node name it uses must be one of :data:`SAMPLES`.

The backend runs for real, in its own process, with the shipped demo models (on CPU).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import SimpleITK as sitk

from Testing.mrml.conftest import import_slicer_core

slicer = import_slicer_core()

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
SECTION = "From Slicer's Python console"
#: Seconds one block may take: a console snippet that blocks Slicer for minutes is a bad example.
BLOCK_BUDGET_S = 180


def _head_ct(data: Path) -> sitk.Image:
    """Real head CT (InVesalius ct0051), every 4th voxel in-plane, every 3rd slice: 64 x 64 x 36, 3.8 x 3.8 x 4.5 mm."""
    return sitk.ReadImage(str(data / "head_ct" / "invesalius_ct0051_head.nii.gz"))[::4, ::4, ::3]


def _brain_t1(data: Path) -> sitk.Image:
    """Real T1 brain MRI (voxelmorph test scan), every 3rd voxel: 54 x 64 x 75, 3 mm."""
    return sitk.ReadImage(str(data / "brain_registration" / "vxm_test_scan_t1.nii.gz"))[::3, ::3, ::3]


def _other_brain(data: Path) -> sitk.Image:
    """Colin27's T1 (another subject), every 3rd voxel. The shared data hold no real brain T2: the node
    named as the README's second brain MRI holds this scan (registration runs the same way)."""
    return sitk.ReadImage(str(data / "sr" / "colin27_ch2_1mm.nii.gz"))[::3, ::3, ::3]


def _breast(data: Path) -> sitk.Image:
    """Real breast MRI crop (PyRadiomics breast1): 45 x 120 x 21, 0.66 x 0.66 x 2.1 mm. It is the only
    breast series in the shared data, so the README's breast T2 holds it too (plumbing, not accuracy)."""
    return sitk.ReadImage(str(data / "breast_mri" / "pyradiomics_breast1_image.nrrd"))


#: Node name -> the real scan a sample volume of that name holds. The README section rewritten for
#: issue 13 names CTHead, MRBrainT1/T2 and Breast T1C/T2; HeadCT, T1 and T2 are the older names.
SAMPLES: dict[str, Callable[[Path], sitk.Image]] = {
    "CTHead": _head_ct,
    "HeadCT": _head_ct,
    "MRBrainT1": _brain_t1,
    "MRBrainT2": _other_brain,
    "T1": _brain_t1,
    "T2": _other_brain,
    "Breast T1C": _breast,
    "Breast T2": _breast,
}
#: What a block calling ``BreastLogic.autoAssign`` finds in its scene: a breast study named by series.
BREAST_STUDY = ("Breast T1C", "Breast T2")


def console_blocks(readme: Path = README) -> list[str]:
    """The ```python blocks of the README section named :data:`SECTION` (up to the next heading of its level or above)."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    heading = re.compile(r"^(#+)\s+(.*)$")
    start = level = None
    for index, line in enumerate(lines):
        match = heading.match(line)
        if match and match.group(2).strip() == SECTION:
            start, level = index + 1, len(match.group(1))
            break
    if start is None:
        return []
    section = []
    for line in lines[start:]:
        match = heading.match(line)
        if match and len(match.group(1)) <= level:
            break
        section.append(line)
    return re.findall(r"^```python\n(.*?)^```", "\n".join(section) + "\n", flags=re.MULTILINE | re.DOTALL)


def node_names(block: str) -> list[str]:
    """The sample nodes a block needs: its ``getNode("...")`` names, plus the breast series for ``autoAssign``."""
    names = re.findall(r"getNode\(\s*[\"']([^\"']+)[\"']", block)
    if "autoAssign" in block:
        names.extend(BREAST_STUDY)
    return list(dict.fromkeys(names))


BLOCKS = console_blocks()


def test_the_section_has_python_blocks_with_known_node_names():
    assert BLOCKS, f"README.md has no ```python blocks under a heading named {SECTION!r}"
    unknown = sorted({name for block in BLOCKS for name in node_names(block)} - set(SAMPLES))
    assert not unknown, f"README snippets use nodes {unknown}; give them sample scans in SAMPLES ({__file__})"


@pytest.fixture
def console(slicer_scene, shared_data: Path, monkeypatch: pytest.MonkeyPatch):
    """A function that runs one block in a console-like namespace on a scene with its sample nodes."""
    from MedFuseLib.mrml_bridge import image_to_volume_node

    from Testing.slicer_app_stand_ins import slicer_app_stand_ins

    for folder in sorted((REPO_ROOT / "Modules").iterdir()):
        if folder.is_dir():
            monkeypatch.syspath_prepend(str(folder))

    def run(block: str) -> dict[str, object]:
        """Run ``block``; return its sample nodes' voxels as they were before it ran."""
        inputs = {}
        for name in node_names(block):
            node = image_to_volume_node(SAMPLES[name](shared_data), slicer_scene, name)
            inputs[name] = slicer.util.arrayFromVolume(node).copy()
        with slicer_app_stand_ins():
            namespace: dict = {"__name__": "__main__"}
            exec("import ctk, qt, vtk, slicer\nfrom slicer.util import *", namespace)
            exec(compile(block, "README console block", "exec"), namespace)
        return inputs

    return run


@pytest.mark.slow
# pytest-timeout stops a block that runs far past its budget (the Logic cancels its backend process).
@pytest.mark.timeout(BLOCK_BUDGET_S + 120)
@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=lambda index: f"block{index}")
def test_readme_console_block_runs_verbatim(console, index: int):
    started = time.monotonic()
    inputs = console(BLOCKS[index])
    elapsed = time.monotonic() - started
    assert elapsed < BLOCK_BUDGET_S, f"block {index} took {elapsed:.0f} s"
    for name, voxels in inputs.items():  # README: the input nodes are never modified
        assert (slicer.util.arrayFromVolume(slicer.util.getNode(name)) == voxels).all(), f"{name} was modified"
