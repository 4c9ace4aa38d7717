"""MedFuse Hemorrhage module logic on a headless MRML scene, through the real backend process.

The input is the real head CT (InVesalius ct0051) shrunk to 64 x 64 x 49 voxels of 3.8 x 3.8 x 3 mm.
The model is a tiny randomly initialised bundle of the registered hemorrhage architecture built here
(a test fixture, not a shipped model: it checks the plumbing, not the segmentation quality). Its
network grid is a single patch, so a backend run takes a few seconds on 2 CPU cores.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import vtk

from Testing.mrml.conftest import import_slicer_core

slicer = import_slicer_core()

MODULE_DIR = Path(__file__).resolve().parents[2] / "Modules" / "MedFuseHemorrhage"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

from MedFuseHemorrhageLib import (  # noqa: E402  (needs slicer-core, checked above)
    DISPLAY_WINDOWS,
    SIMULATED_TRAINING_WARNING,
    HemorrhageLogic,
    parameterRange,
    taskSpec,
)
from MedFuseLib.mrml_bridge import image_to_volume_node  # noqa: E402

from SlicerMedFuse.facade import default_model  # noqa: E402
from SlicerMedFuse.hemorrhage.labels import HEMORRHAGE_LABELS  # noqa: E402
from SlicerMedFuse.hemorrhage.provenance import SIMULATED_DATA_NOTE  # noqa: E402
from SlicerMedFuse.models.store import ModelStore  # noqa: E402

DEFAULT_MODEL = default_model("hemorrhage")

pytestmark = pytest.mark.slicer

HEAD_CT = "head_ct/invesalius_ct0051_head.nii.gz"  # 256 x 256 x 108, 0.96 x 0.96 x 1.5 mm
MODEL_ID, MODEL_VERSION = "tiny-hemorrhage", "0.0.1"


# --- fixtures -------------------------------------------------------------------------------------
def _tiny_manifest(task: str = "hemorrhage", model_id: str = MODEL_ID) -> tuple[dict, dict]:
    """(manifest, architecture args) of a 3-level HemorrhageUNet on one 32 x 48 x 48 patch of 6 mm voxels."""
    from SlicerMedFuse.hemorrhage.model_input import HemorrhagePreprocessing
    from SlicerMedFuse.nets.hemorrhage.plan import plan_unet

    preprocessing = HemorrhagePreprocessing(spacing_mm=(6.0, 6.0, 6.0), patch_size_zyx=(32, 48, 48))
    plan = plan_unet(preprocessing.patch_size_zyx, preprocessing.spacing_zyx, max_levels=3)
    args = {
        "in_channels": 1,
        "out_channels": len(HEMORRHAGE_LABELS) + 1,
        "kernel_size": [list(k) for k in plan.kernel_size],
        "strides": [list(s) for s in plan.strides],
        "filters": [4, 8, 16],
        "deep_supr_num": 0,
    }
    manifest = {
        "id": model_id,
        "version": MODEL_VERSION,
        "task": task,
        "title": "Tiny random hemorrhage network",
        "inputs": [{"role": "ct", "modality": "CT"}],
        "labels": [{"value": lab.value, "name": lab.name, "color": list(lab.color)} for lab in HEMORRHAGE_LABELS],
        "preprocessing": preprocessing.to_dict(),
        "architecture": {"name": "medfuse.HemorrhageUNet", "args": args},
        "license": "CC0-1.0",
        "intended_use": "Software tests only.",
        "training": {"data": "none (random initialisation)", "simulated": True, "script": "Testing/mrml"},
    }
    return manifest, args


@pytest.fixture(scope="module")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model store with the tiny bundle (dropped in as a folder) and a bundle of another task."""
    import torch

    from SlicerMedFuse.models.bundle import save_bundle
    from SlicerMedFuse.nets.registry import build_network

    home = tmp_path_factory.mktemp("hemorrhage-models")
    manifest, args = _tiny_manifest()
    torch.manual_seed(0)
    network = build_network("medfuse.HemorrhageUNet", args).eval()
    with torch.no_grad():  # no EDH at all, and mostly background: an empty class and a few filled ones
        bias = network.unet.output_block.conv.conv.bias
        bias[1] = -1e3
        bias[0] += 3.0
    bundle = save_bundle(network, manifest, home / "models")
    other = home / "models" / "not-hemorrhage"
    other.mkdir()
    foreign = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    foreign.update(id="tiny-other", task="superres")
    (other / "manifest.json").write_text(json.dumps(foreign), encoding="utf-8")
    return home


@pytest.fixture(scope="module")
def small_head_ct(shared_data: Path) -> sitk.Image:
    """The real head CT, every 4th voxel in-plane and every 2nd slice of slices 10-107: 64 x 64 x 49."""
    return sitk.ReadImage(str(shared_data / HEAD_CT))[::4, ::4, 10:108:2]


def _under_study(scene, node) -> int:
    sh = scene.GetSubjectHierarchyNode()
    patient = sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient")
    study = sh.CreateStudyItem(patient, "Study")
    item = sh.GetItemByDataNode(node)
    if item == sh.GetInvalidItemID():
        sh.CreateItem(study, node)
    else:
        sh.SetItemParent(item, study)
    return study


@pytest.fixture
def ct_node(slicer_scene, small_head_ct):
    node = image_to_volume_node(small_head_ct, slicer_scene, "head CT")
    _under_study(slicer_scene, node)
    node.GetDisplayNode().AutoWindowLevelOff()
    node.GetDisplayNode().SetWindowLevel(2000.0, 300.0)
    return node


@pytest.fixture
def logic(model_home: Path) -> HemorrhageLogic:
    return HemorrhageLogic(store=ModelStore(model_home))


class RefusingRunner:
    """A process runner that fails the test if anything tries to start the backend."""

    def start(self, command, *, env=None, cwd=None):
        raise AssertionError(f"the backend should not have been started: {command}")


def _ijk_to_ras(node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _study_of(node):
    sh = node.GetScene().GetSubjectHierarchyNode()
    return sh.GetItemParent(sh.GetItemByDataNode(node))


def _node_ids(scene) -> set[str]:
    nodes = scene.GetNodes()
    return {nodes.GetItemAsObject(n).GetID() for n in range(nodes.GetNumberOfItems())}


def _display_state(node) -> tuple:
    """What the user sees of a volume: window, level, auto window/level, colour table, display node id."""
    display = node.GetDisplayNode()
    return (
        display.GetID(),
        display.GetWindow(),
        display.GetLevel(),
        display.GetAutoWindowLevel(),
        display.GetColorNodeID(),
        display.GetMTime(),
    )


class ManualScheduler:
    """A scheduler that never fires: the test polls the run itself (the Slicer app would use a Qt timer)."""

    def every(self, intervalMs: int, callback) -> None:
        self.callback = callback


def _table_rows(table) -> list[dict]:
    vtk_table = table.GetTable()
    columns = [vtk_table.GetColumn(c) for c in range(vtk_table.GetNumberOfColumns())]
    return [{column.GetName(): column.GetValue(row) for column in columns} for row in range(table.GetNumberOfRows())]


# --- contract, models -----------------------------------------------------------------------------
def test_parameters_and_texts_come_from_the_task_declaration() -> None:
    assert parameterRange("overlap") == (0.0, 0.9)
    assert parameterRange("min_component_ml")[0] == 0.0
    assert list(taskSpec().labels) == list(HEMORRHAGE_LABELS)
    assert DISPLAY_WINDOWS["brain"] == (80.0, 40.0) and DISPLAY_WINDOWS["blood"] == (160.0, 40.0)
    assert SIMULATED_DATA_NOTE in SIMULATED_TRAINING_WARNING


def test_the_models_own_minimum_volumes_are_on_by_default_and_can_be_turned_off(logic: HemorrhageLogic) -> None:
    assert logic.taskParameters()["model_postprocessing"] is True
    assert logic.taskParameters(modelPostprocessing=False)["model_postprocessing"] is False


def test_installed_models_lists_only_hemorrhage_bundles(logic: HemorrhageLogic) -> None:
    models = logic.installedModels()
    assert [(m.id, m.version) for m in models] == [(MODEL_ID, MODEL_VERSION)]
    assert logic.defaultModel().id == MODEL_ID
    manifest = logic.resolveModel(f"{MODEL_ID}@{MODEL_VERSION}")
    assert HemorrhageLogic.modelReference(manifest) == f"{MODEL_ID}@{MODEL_VERSION}"
    description = HemorrhageLogic.describeModel(manifest)
    assert "Licence: CC0-1.0" in description and "Intended use: Software tests only." in description
    assert HemorrhageLogic.modelWarnings(manifest) == [SIMULATED_TRAINING_WARNING]
    assert logic.resolveModel(str(models[0].folder)).id == MODEL_ID  # a bundle folder works too


def test_model_problems_give_one_sentence(logic: HemorrhageLogic, tmp_path: Path, ct_node) -> None:
    with pytest.raises(ValueError, match="'nonexistent' is not installed; install it with 'medfuse models install"):
        logic.resolveModel("nonexistent")
    with pytest.raises(ValueError, match="is for the 'superres' task, not hemorrhage"):
        logic.resolveModel("tiny-other")

    empty = HemorrhageLogic(runner=RefusingRunner(), store=ModelStore(tmp_path / "empty-store"))
    assert empty.installedModels() == [] and empty.defaultModel() is None
    message = empty.noModelMessage()
    assert f"'medfuse models install {DEFAULT_MODEL}'" in message
    assert str(tmp_path / "empty-store" / "models") in message
    with pytest.raises(ValueError) as raised:
        empty.startJob(ct_node)
    assert str(raised.value) == message and "\n" not in message


# --- input validation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("no input", "Select a head CT volume"),
        ("single slice", "is a single slice"),
        ("MR intensities", "not Hounsfield units"),
        ("colour voxels", "colour or vector voxels"),
    ],
)
def test_invalid_inputs_give_one_sentence(slicer_scene, logic: HemorrhageLogic, case: str, fragment: str) -> None:
    rng = np.random.default_rng(0)
    volumes = {
        "no input": None,
        "single slice": slicer.util.addVolumeFromArray(np.full((1, 16, 16), -1000, np.int16), name="single"),
        "MR intensities": slicer.util.addVolumeFromArray(rng.integers(0, 900, (12, 32, 32)).astype(np.int16), name="mr"),
        "colour voxels": slicer.util.addVolumeFromArray(np.zeros((4, 8, 8, 3), np.uint8), name="rgb", nodeClassName="vtkMRMLVectorVolumeNode"),
    }  # fmt: skip
    logic.runner = RefusingRunner()
    with pytest.raises(ValueError, match=fragment) as raised:
        logic.startJob(volumes[case])
    assert "\n" not in str(raised.value)


def test_thick_slices_warn_and_point_to_super_resolution(slicer_scene, logic: HemorrhageLogic, small_head_ct) -> None:
    assert logic.checkInput(image_to_volume_node(small_head_ct, slicer_scene, "3 mm")) == []
    thick = image_to_volume_node(small_head_ct[:, :, ::3], slicer_scene, "9 mm")  # 9 mm slices
    warnings = logic.checkInput(thick)
    assert len(warnings) == 1
    assert "9 mm apart" in warnings[0] and "MedFuse Super-Resolution module" in warnings[0]


# --- the real backend -----------------------------------------------------------------------------
def test_process_gives_named_coded_measured_segments(slicer_scene, logic: HemorrhageLogic, ct_node) -> None:
    before = slicer.util.arrayFromVolume(ct_node).copy()
    matrix = _ijk_to_ras(ct_node)
    study = _study_of(ct_node)
    display_before = _display_state(ct_node)

    job = logic.startJob(ct_node, model=f"{MODEL_ID}@{MODEL_VERSION}", device="cpu")
    assert job.command[job.command.index("--model") + 1] == str(logic.installedModels()[0].folder)
    job.wait(120)
    report = job.report
    segmentation, table = logic.finishJob(job)
    assert not job.temp_dir.exists()

    # five segments, named, coloured and coded as the task contract says, under the CT's study
    names = segmentation.GetSegmentation().GetSegmentIDs()
    assert len(names) == 5
    tag = slicer.vtkSegment.GetTerminologyEntryTagName()
    voxel_ml = float(np.prod(ct_node.GetSpacing())) / 1000.0
    rows = {row["Hemorrhage"]: row for row in _table_rows(table)}
    for label, segment_id in zip(HEMORRHAGE_LABELS, names, strict=True):
        segment = segmentation.GetSegmentation().GetSegment(segment_id)
        assert segment.GetName() == label.name
        assert segment.GetColor() == pytest.approx([c / 255 for c in label.color])
        entry = vtk.reference("")
        assert segment.GetTag(tag, entry) and str(entry) == label.terminology.to_slicer_entry()
        # volumes and slice ranges in the table agree with the segment's voxels
        voxels = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment_id, ct_node)
        count = 0 if voxels is None else int(np.count_nonzero(voxels))
        row = rows[label.name]
        assert row["Volume"] == pytest.approx(count * voxel_ml, abs=1e-3)
        assert row["Volume"] == pytest.approx(report["classes"][row["Class"]]["volume_ml"])
        assert row["Components"] == report["classes"][row["Class"]]["components"]
        if count:
            slices = np.flatnonzero(voxels.any(axis=(1, 2)))
            assert (row["First slice"], row["Last slice"]) == (slices[0], slices[-1])
        else:
            assert (row["Components"], row["First slice"], row["Last slice"]) == (0, -1, -1)
    assert rows["Epidural hemorrhage"]["Volume"] == 0.0  # an empty class keeps its segment for painting
    assert sum(row["Volume"] for row in rows.values()) > 0
    assert [row["Class"] for row in _table_rows(table)] == ["EDH", "IPH", "IVH", "SAH", "SDH"]
    assert table.GetColumnUnitLabel("Volume") == "mL"
    assert _study_of(segmentation) == study and _study_of(table) == study
    assert segmentation.GetAttribute("MedFuse.model") == f"{MODEL_ID}@{MODEL_VERSION}"
    assert "mL of hemorrhage" in HemorrhageLogic.resultSummary(table, report)

    # the CT: same voxels and geometry, and its display node untouched (inputs are never modified)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(ct_node), before)
    np.testing.assert_allclose(_ijk_to_ras(ct_node), matrix)
    assert _display_state(ct_node) == display_before


def test_cancel_adds_nothing_and_keeps_the_window(slicer_scene, logic: HemorrhageLogic, ct_node) -> None:
    nodes = _node_ids(slicer_scene)
    job = logic.startJob(ct_node, device="cpu")
    job.cancel()  # before the backend got past its imports
    deadline = time.monotonic() + 60
    while not job.done:
        assert time.monotonic() < deadline, "the cancelled backend did not stop"
        job.poll()
        time.sleep(0.05)
    temp_dir = job.temp_dir
    with pytest.raises(RuntimeError, match="cancelled"):
        logic.finishJob(job)
    assert _node_ids(slicer_scene) == nodes
    assert ct_node.GetDisplayNode().GetWindow() == 2000.0
    assert temp_dir is not None and not temp_dir.exists()


def test_backend_rejection_reaches_the_user_and_adds_nothing(
    slicer_scene, logic: HemorrhageLogic, small_head_ct, model_home: Path
) -> None:
    neck = image_to_volume_node(small_head_ct[:, :, :4], slicer_scene, "below the skull")  # CT, but no brain
    nodes = _node_ids(slicer_scene)
    job = logic.startJob(neck, device="cpu")
    job.wait(120)
    with pytest.raises(RuntimeError, match="No head was found in the field of view"):
        logic.finishJob(job)
    assert _node_ids(slicer_scene) == nodes


def test_process_with_the_default_model_and_existing_nodes(
    slicer_scene, ct_node, model_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDFUSE_HOME", str(model_home))  # the user's store: HemorrhageLogic() reads it
    segmentation = slicer_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my segments")
    table = slicer_scene.AddNewNodeByClass("vtkMRMLTableNode", "my table")
    display_before = _display_state(ct_node)
    got = HemorrhageLogic().process(
        ct_node, device="cpu", minComponentMl=0.0, segmentationNode=segmentation, tableNode=table
    )
    assert got == (segmentation, table)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 5 and table.GetNumberOfRows() == 5
    assert _display_state(ct_node) == display_before


def test_process_async_polls_to_the_result_and_leaves_the_ct_display_alone(slicer_scene, logic, ct_node) -> None:
    display_before = _display_state(ct_node)
    run = logic.processAsync(ct_node, device="cpu", scheduler=ManualScheduler())
    assert not run.done and 0.0 <= run.fraction <= 1.0
    deadline = time.monotonic() + 120
    while not run.poll():
        assert time.monotonic() < deadline, "the backend did not finish"
        time.sleep(0.05)
    segmentation, table = run.result
    assert run.succeeded and run.wait() == (segmentation, table) and run.fraction == 1.0
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 5
    assert _display_state(ct_node) == display_before


def test_the_display_window_changes_only_when_asked(slicer_scene, ct_node) -> None:
    HemorrhageLogic.applyDisplayWindow(ct_node, "blood")  # the panel's "Show window" button
    assert (ct_node.GetDisplayNode().GetWindow(), ct_node.GetDisplayNode().GetLevel()) == (160.0, 40.0)
    with pytest.raises(ValueError, match="window must be one of brain, blood"):
        HemorrhageLogic.applyDisplayWindow(ct_node, "bone")


def test_the_shipped_demo_model_is_the_default_without_any_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MEDFUSE_HOME", str(tmp_path / "fresh-user"))  # nothing installed
    logic = HemorrhageLogic()
    default = logic.defaultModel()
    assert default is not None and default.id == DEFAULT_MODEL and default.bundled
    assert default.manifest.simulated_training  # the panel's demo warning reads this flag
