"""Writes a tiny third-party package that contributes tasks through the ``SlicerMedFuse.tasks``
entry point, exactly as a site would install one (a module plus a ``.dist-info`` folder)."""

from __future__ import annotations

import textwrap
from pathlib import Path

PLUGIN_SOURCE = """
import os
import time
from pathlib import Path

import SimpleITK as sitk

from SlicerMedFuse.tasks.base import Task, TaskResult
from SlicerMedFuse.contract import InputSpec, OutputSpec, ParameterSpec, TaskSpec


class MaskedImageTask(Task):
    spec = TaskSpec(
        name="site-masked",
        title="Masked image (site plugin)",
        summary="Multiplies an image by a mask on the same grid.",
        inputs=(InputSpec("image", "Image"), InputSpec("mask", "Mask", kind="mask", aligned_with="image")),
        outputs=(OutputSpec("image", "Masked image", primary=True, reference_role="image"),),
    )

    def run(self, inputs, params, context):
        masked = sitk.Mask(inputs["image"], sitk.Cast(inputs["mask"] > 0, sitk.sitkUInt8))
        context.progress.update(1.0, "masked")
        return TaskResult(outputs={"image": masked}, report={"voxels": int(sitk.GetArrayViewFromImage(inputs["mask"]).astype(bool).sum())})


class SlowTask(Task):
    spec = TaskSpec(
        name="site-slow",
        title="Slow task (site plugin)",
        summary="Reports progress for a while, then copies its input.",
        inputs=(InputSpec("image", "Image"),),
        outputs=(OutputSpec("image", "Copy", primary=True),),
        parameters=(ParameterSpec("seconds", "float", 30.0, minimum=0.0),),
    )

    def run(self, inputs, params, context):
        steps = max(1, int(params["seconds"] / 0.05))
        for step in range(steps):
            time.sleep(0.05)
            context.progress.update((step + 1) / steps, "waiting")
        return TaskResult(outputs={"image": inputs["image"]})


class RecordedCopyTask(Task):
    spec = TaskSpec(
        name="site-recorded-copy",
        title="Recorded copy (site plugin)",
        summary="Records each attempt as a file <tag>-<pid> in MEDFUSE_TEST_ATTEMPTS, waits (or dies), then copies its input.",
        inputs=(InputSpec("image", "Image"),),
        outputs=(OutputSpec("image", "Copy", primary=True),),
        parameters=(
            ParameterSpec("tag", "str", "case"),
            ParameterSpec("seconds", "float", 0.0, minimum=0.0),
            ParameterSpec("die", "bool", False),
        ),
    )

    def run(self, inputs, params, context):
        (Path(os.environ["MEDFUSE_TEST_ATTEMPTS"]) / f"{params['tag']}-{os.getpid()}").touch()
        time.sleep(params["seconds"])
        if params["die"]:  # a worker process killed mid-case (e.g. by the out-of-memory killer)
            os.kill(os.getpid(), 9)
        return TaskResult(outputs={"image": inputs["image"]}, report={"voxels": inputs["image"].GetNumberOfPixels()})
"""


def install_plugin(folder: Path) -> Path:
    """Create the plugin package in ``folder``; put ``folder`` on sys.path / PYTHONPATH to use it."""
    (folder / "site_medfuse_plugin.py").write_text(PLUGIN_SOURCE)
    dist_info = folder / "site_medfuse_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: site-medfuse-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [SlicerMedFuse.tasks]
            site-masked = site_medfuse_plugin:MaskedImageTask
            site-slow = site_medfuse_plugin:SlowTask
            site-recorded-copy = site_medfuse_plugin:RecordedCopyTask
            site-broken = site_medfuse_plugin:DoesNotExist
            """
        )
    )
    return folder
