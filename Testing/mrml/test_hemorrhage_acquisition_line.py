"""The Hemorrhage panel's acquisition line: from the backend's report to one line, a warning when outside.

Headless on slicer-core, through the real backend process, like :mod:`Testing.mrml.test_hemorrhage_module_logic`
(whose tiny randomly initialised bundle is reused here, copied with stated training acquisitions).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from Testing.backend.stated_acquisitions import THIN_UNTILTED, copy_stating_acquisitions
from Testing.mrml.conftest import import_slicer_core

slicer = import_slicer_core()

from MedFuseLib.mrml_bridge import image_to_volume_node  # noqa: E402

from SlicerMedFuse.models.store import ModelStore  # noqa: E402
from Testing.mrml import test_hemorrhage_module_logic as panel_tests  # noqa: E402

pytestmark = pytest.mark.slicer

# The hemorrhage panel tests' fixtures, used here by name (the tiny bundle's store, the small real head CT),
# and the module's Logic as they import it (they put the module folder on sys.path).
model_home, small_head_ct = panel_tests.model_home, panel_tests.small_head_ct
HemorrhageLogic = panel_tests.HemorrhageLogic

OUTSIDE_REPORT = {
    "acquisition": {
        "summary": "28 slices, 7.4 mm thick, tilt 18.5 deg, 0.49 mm in-plane",
        "within_training_range": False,
        "outside": ["slices are 7.4 mm thick; the model was trained on 0.6-5 mm"],
        "statement": "outside the model's training range (slices are 7.4 mm thick; the model was trained on 0.6-5 mm)",
    }
}


def test_the_line_says_what_the_report_measured_and_warns_only_when_outside() -> None:
    line, outside = HemorrhageLogic.acquisitionLine(OUTSIDE_REPORT)
    assert outside is True
    assert line == (
        "Acquisition: 28 slices, 7.4 mm thick, tilt 18.5 deg, 0.49 mm in-plane — outside the model's training "
        "range (slices are 7.4 mm thick; the model was trained on 0.6-5 mm)"
    )
    unstated = {**OUTSIDE_REPORT["acquisition"], "within_training_range": None, "statement": "the model does not state"}
    assert HemorrhageLogic.acquisitionLine({"acquisition": unstated})[1] is False
    within = {**OUTSIDE_REPORT["acquisition"], "within_training_range": True, "statement": "within the model's"}
    assert HemorrhageLogic.acquisitionLine({"acquisition": within}) == (
        "Acquisition: 28 slices, 7.4 mm thick, tilt 18.5 deg, 0.49 mm in-plane — within the model's",
        False,
    )
    # a report from a backend older than the check: no line
    assert HemorrhageLogic.acquisitionLine({"classes": {}}) == ("", False)
    assert HemorrhageLogic.acquisitionLine(None) == ("", False)


def _tilted_direction(degrees: float) -> tuple[float, ...]:
    t = math.radians(degrees)
    return tuple(np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]]).ravel())


def test_a_thick_tilted_ct_gets_a_warning_line_from_the_real_backend(
    slicer_scene, model_home: Path, small_head_ct, tmp_path: Path
) -> None:
    store = ModelStore(tmp_path / "home")
    (store.root / "models").mkdir(parents=True)
    [tiny] = HemorrhageLogic(store=ModelStore(model_home)).installedModels()
    copy_stating_acquisitions(tiny.folder, store.root / "models", THIN_UNTILTED)
    logic = HemorrhageLogic(store=store)

    thick = small_head_ct[:, :, ::3]  # 9 mm slices
    thick.SetDirection(_tilted_direction(18.5))
    node = image_to_volume_node(thick, slicer_scene, "thick tilted CT")
    job = logic.startJob(node, device="cpu")
    job.wait(120)
    report = job.report
    _, table = logic.finishJob(job)

    line, outside = HemorrhageLogic.acquisitionLine(report)
    assert outside is True
    assert line.startswith("Acquisition: 17 slices, 9 mm thick, tilt 18.5 deg, 3.83 mm in-plane — outside")
    assert "the gantry is tilted 18.5 degrees; the model was trained on 0-10 degrees" in line
    assert report["acquisition"]["within_training_range"] is False
    assert table.GetAttribute("MedFuse.acquisition") == line  # kept with the measurements
