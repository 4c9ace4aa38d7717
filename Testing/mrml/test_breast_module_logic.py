"""MedFuse Breast module logic on a headless MRML scene, through the real backend process.

The study is a seeded breast phantom (:mod:`SlicerMedFuse.breast.phantom`: T1C, T2W and
pre-contrast with one 20-25 mm mass) on a 64 x 64 x 12 grid of 5 x 5 x 4 mm, put into the scene
under a patient and a study. The model is the shipped demo bundle (trained on phantoms, 2D, 96 x 96
slices), so a backend run takes a few seconds; the tests check the plumbing and the messages, not
the segmentation quality.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import vtk

from Testing.mrml.conftest import import_slicer_core

slicer = import_slicer_core()

MODULE_DIR = Path(__file__).resolve().parents[2] / "Modules" / "MedFuseBreast"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

from MedFuseBreastLib import (  # noqa: E402  (needs slicer-core, checked above)
    CLINICAL_FIELDS,
    PANEL_DEFAULTS,
    SIMULATED_TRAINING_WARNING,
    BreastLogic,
    alnParameters,
    alnResult,
    assignRoles,
    panelFieldName,
    roleOfDescription,
)
from MedFuseLib.mrml_bridge import image_to_volume_node, volume_node_to_image  # noqa: E402

from SlicerMedFuse.breast.alignment import estimate_shift  # noqa: E402
from SlicerMedFuse.breast.labels import MASS_LABEL  # noqa: E402
from SlicerMedFuse.breast.phantom import PhantomConfig, generate_phantom, study_geometry  # noqa: E402
from SlicerMedFuse.facade import default_model, task_spec  # noqa: E402
from Testing.backend.test_aln_task import bundle  # noqa: E402, F401  (a tiny untrained ALN bundle, a fixture)

pytestmark = pytest.mark.slicer

NAMES = {"t1c": "Ax T1 FS +C", "t2w": "Ax STIR", "pre": "Ax T1 FS pre"}


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def phantom():
    grid = study_geometry(64, 12, (5.0, 5.0, 4.0))
    return generate_phantom(21, grid, PhantomConfig(masses=(1, 1), mass_diameter_mm=(20.0, 25.0)))


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model store for this process and the backend it starts: only the shipped bundles exist."""
    home = tmp_path / "medfuse-home"
    monkeypatch.setenv("MEDFUSE_HOME", str(home))
    return home


@pytest.fixture
def logic(fresh_home: Path) -> BreastLogic:
    return BreastLogic()  # the user's store: $MEDFUSE_HOME, as the backend process reads it


def _under_study(scene, nodes) -> int:
    sh = scene.GetSubjectHierarchyNode()
    study = sh.CreateStudyItem(sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient"), "Breast MRI")
    for node in nodes:
        item = sh.GetItemByDataNode(node)
        if item == sh.GetInvalidItemID():
            sh.CreateItem(study, node)
        else:
            sh.SetItemParent(item, study)
    return study


@pytest.fixture
def study(slicer_scene, phantom) -> dict:
    """Role -> volume node of the phantom study, under one study item."""
    nodes = {role: image_to_volume_node(phantom.images[role], slicer_scene, NAMES[role]) for role in NAMES}
    _under_study(slicer_scene, nodes.values())
    return nodes


class RefusingRunner:
    """A process runner that fails the test if anything tries to start the backend."""

    def start(self, command, *, env=None, cwd=None):
        raise AssertionError(f"the backend should not have been started: {command}")


class FailingRunner:
    """A process runner whose backend fails at once with one sentence (and records the commands)."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.commands: list[list[str]] = []

    def start(self, command, *, env=None, cwd=None):
        self.commands.append(list(command))
        return _FailedJob(self.message)


class _FailedJob:
    def __init__(self, message: str) -> None:
        self._events = [{"event": "error", "message": message}]
        self.error_message = message
        self.returncode = 2
        self.done = True

    def poll(self):
        events, self._events = self._events, []
        return events

    def cancel(self) -> None:
        pass

    def wait(self, timeout=None) -> int:
        return 2


def _study_of(node) -> int:
    sh = node.GetScene().GetSubjectHierarchyNode()
    return sh.GetItemParent(sh.GetItemByDataNode(node))


def _node_ids(scene) -> set[str]:
    nodes = scene.GetNodes()
    return {nodes.GetItemAsObject(n).GetID() for n in range(nodes.GetNumberOfItems())}


def _snapshot(node) -> tuple[np.ndarray, np.ndarray, str]:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    geometry = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    return slicer.util.arrayFromVolume(node).copy(), geometry, node.GetName()


def _assert_unchanged(node, snapshot) -> None:
    voxels, geometry, name = _snapshot(node)
    np.testing.assert_array_equal(voxels, snapshot[0])
    np.testing.assert_allclose(geometry, snapshot[1])
    assert name == snapshot[2]


def _assert_mass_segmentation(segmentation, t1c) -> None:
    """One segment, named, coloured and coded as the task contract says, on the T1C grid, under its study."""
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1
    segment = segmentation.GetSegmentation().GetNthSegment(0)
    assert segment.GetName() == MASS_LABEL.name == "Mass"
    assert segment.GetColor() == pytest.approx([c / 255 for c in MASS_LABEL.color])
    entry = vtk.reference("")
    assert segment.GetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), entry)
    assert str(entry) == MASS_LABEL.terminology.to_slicer_entry() and "SCT^4147007^Mass" in str(entry)
    voxels = slicer.util.arrayFromSegmentBinaryLabelmap(
        segmentation, segmentation.GetSegmentation().GetNthSegmentID(0), t1c
    )
    assert voxels is not None and voxels.shape == slicer.util.arrayFromVolume(t1c).shape
    assert _study_of(segmentation) == _study_of(t1c)
    assert segmentation.GetAttribute("MedFuse.task") == "breast-mass"


# --- roles ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("description", "role"),
    [
        ("Ax T1 FS +C", "t1c"),
        ("T1C", "t1c"),
        ("DCE_post_2", "t1c"),
        ("t1_fl3d_dynamic", "t1c"),
        ("MR T1 post Gd", "t1c"),
        ("t2_tse_fs", "t2w"),
        ("Ax STIR", "t2w"),
        ("T2W_SPAIR", "t2w"),
        ("T1 pre-contrast", "pre"),
        ("DCE pre", "pre"),
        ("native T1", "pre"),
        ("Localizer", None),
        ("CT head", None),
    ],
)
def test_role_from_series_description(description: str, role: str | None) -> None:
    assert roleOfDescription(description) == role


def test_assign_roles_gives_each_role_one_volume_first_match_wins() -> None:
    assigned = assignRoles([("a", "survey"), ("b", "T1 post 1"), ("c", "T1 post 2"), ("d", "STIR"), ("e", "T1 native")])
    assert assigned == {"t1c": "b", "t2w": "d", "pre": "e"}
    assert assignRoles([("x", "T2 TSE")]) == {"t2w": "x"}  # a missing master stays missing: the panel asks for it
    assert assignRoles([]) == {}


def test_auto_assign_reads_names_and_dicom_series_descriptions(slicer_scene, study) -> None:
    logic = BreastLogic(runner=RefusingRunner())
    assert logic.autoAssign(slicer_scene) == study
    renamed = image_to_volume_node(sitk.Image(8, 8, 4, sitk.sitkFloat32), slicer_scene, "Series 7")
    renamed.SetAttribute("DICOM.SeriesDescription", "dyn eTHRIVE")
    slicer_scene.RemoveNode(study["t1c"])
    slicer_scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "T1C labels")  # label maps are never a sequence
    assert logic.autoAssign(slicer_scene)["t1c"] is renamed


def test_auto_assign_without_a_t1c_says_how_to_assign_it(slicer_scene) -> None:
    image_to_volume_node(sitk.Image(8, 8, 4, sitk.sitkFloat32), slicer_scene, "T2 TSE")
    image_to_volume_node(sitk.Image(8, 8, 4, sitk.sitkFloat32), slicer_scene, "Series 3")
    logic = BreastLogic(runner=RefusingRunner())
    with pytest.raises(ValueError) as raised:
        logic.autoAssign(slicer_scene)
    message = str(raised.value)
    assert "\n" not in message and message.count(". ") == 0  # one sentence
    assert "T1C" in message and "'T2 TSE', 'Series 3'" in message and "rename it" in message
    assert "slicer.util.getNode" in message  # or pass the node yourself
    assert set(logic.autoAssign(slicer_scene, requireMaster=False)) == {"t2w"}  # the panel asks the user instead


# --- models ---------------------------------------------------------------------------------------
def test_the_shipped_demo_model_is_the_default_and_says_it_was_trained_on_phantoms(logic: BreastLogic) -> None:
    default = logic.models.default()
    assert default is not None and default.id == default_model("breast-mass") and default.bundled
    manifest = logic.models.resolve(None)
    description = logic.models.describe(manifest)
    assert f"Licence: {manifest.license}" in description and f"Intended use: {manifest.intended_use}" in description
    assert logic.modelWarnings(manifest) == [SIMULATED_TRAINING_WARNING]
    assert "phantom" in SIMULATED_TRAINING_WARNING and "not for clinical use" in SIMULATED_TRAINING_WARNING.lower()
    with pytest.raises(ValueError, match="serves the 'hemorrhage' task, not 'breast-mass'"):
        logic.models.resolve("medfuse-hemorrhage-demo")


# --- the real backend -----------------------------------------------------------------------------
def test_full_study_gives_the_coded_mass_under_the_study_and_attention_maps(slicer_scene, logic, study) -> None:
    before = {role: _snapshot(node) for role, node in study.items()}
    result = logic.process(study["t1c"], study["t2w"], study["pre"], device="cpu", attentionMaps=True)

    _assert_mass_segmentation(result.segmentation, study["t1c"])
    assert result.segmentation.GetAttribute("MedFuse.model") == f"{default_model('breast-mass')}@0.1.0"
    assert len(result.attentionVolumes) == len(BreastLogic.attentionRoles()) == 5
    for volume in result.attentionVolumes:
        values = slicer.util.arrayFromVolume(volume)
        assert values.shape == before["t1c"][0].shape and 0.0 <= values.min() <= values.max() <= 1.0
        assert _study_of(volume) == _study_of(study["t1c"])
    assert result.alignedVolumes == {}
    assert result.report["channels_present"] == {"t1c": True, "t2w": True}
    summary = logic.resultSummary(result.report)
    assert summary.startswith("Done") and "review and correct" in summary
    for role, node in study.items():
        _assert_unchanged(node, before[role])


@pytest.mark.parametrize("roles", [("t1c",), ("t1c", "t2w"), ("t1c", "pre")], ids="+".join)
def test_any_subset_of_sequences_gives_a_valid_output(slicer_scene, logic, study, roles) -> None:
    nodes = {role: study[role] for role in roles}
    before = {role: _snapshot(node) for role, node in nodes.items()}
    existing = slicer_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my mass")
    result = logic.process(nodes["t1c"], nodes.get("t2w"), nodes.get("pre"), device="cpu", segmentationNode=existing)
    assert result.segmentation is existing  # the chosen output node is filled, not a new one
    _assert_mass_segmentation(existing, study["t1c"])
    assert result.report["channels_present"]["t2w"] is ("t2w" in roles)
    if "t2w" not in roles:
        assert any("T2W" in warning for warning in result.report["warnings"])
    for role, node in nodes.items():
        _assert_unchanged(node, before[role])


def test_misaligned_t2w_gets_the_backends_sentence_with_the_panels_fix(slicer_scene, logic, study, phantom) -> None:
    moved = sitk.Image(phantom.images["t2w"])
    moved.SetOrigin([o + s for o, s in zip(moved.GetOrigin(), (12.0, 0.0, 0.0), strict=True)])
    shifted = image_to_volume_node(moved, slicer_scene, "STIR shifted")
    nodes = _node_ids(slicer_scene)
    job = logic.startJob(study["t1c"], shifted, device="cpu")
    job.wait(120)
    with pytest.raises(RuntimeError) as raised:
        logic.finishJob(job)
    message = str(raised.value)
    assert "is not in register with the T1C" in message and "check 'Align sequences first'" in message
    assert "medfuse run" not in message and "\n" not in message
    assert _node_ids(slicer_scene) == nodes


def test_align_first_registers_the_shifted_t2w_then_segments(slicer_scene, logic, study, phantom) -> None:
    moved = sitk.Image(phantom.images["t2w"])
    moved.SetOrigin([o + s for o, s in zip(moved.GetOrigin(), (12.0, 0.0, 0.0), strict=True)])
    shifted = image_to_volume_node(moved, slicer_scene, "STIR shifted")
    _under_study(slicer_scene, [shifted])
    before = _snapshot(shifted)
    job = logic.startJob(study["t1c"], shifted, device="cpu", alignFirst=True)
    stages, fractions = set(), []
    deadline = time.monotonic() + 180
    while not job.done:
        assert time.monotonic() < deadline, "alignment and segmentation did not finish"
        job.poll()
        stages.add(job.stage.split(":")[0])
        fractions.append(job.fraction)
        time.sleep(0.05)
    assert job.succeeded, job.error_message
    assert {"aligning the T2W to the T1C", "segmenting the mass"} <= stages
    assert fractions == sorted(fractions) and job.fraction == 1.0
    result = logic.finishJob(job)

    _assert_mass_segmentation(result.segmentation, study["t1c"])
    aligned = result.alignedVolumes["t2w"]
    assert aligned.GetName() == "STIR shifted aligned to T1C" and _study_of(aligned) == _study_of(study["t1c"])
    assert slicer.util.arrayFromVolume(aligned).shape == slicer.util.arrayFromVolume(study["t1c"]).shape
    # the alignment undid the 12 mm shift: the aligned T2W matches the unshifted one far better than the input
    truth = sitk.GetArrayFromImage(phantom.images["t2w"])
    error_after = np.abs(slicer.util.arrayFromVolume(aligned) - truth).mean()
    error_before = np.abs(sitk.GetArrayFromImage(sitk.Resample(moved, phantom.images["t2w"])) - truth).mean()
    assert error_after < 0.5 * error_before
    _assert_unchanged(shifted, before)


def test_a_t2w_that_does_not_overlap_the_t1c_is_refused(slicer_scene, logic, study, phantom) -> None:
    far = sitk.Image(phantom.images["t2w"])
    far.SetOrigin([o + 400.0 for o in far.GetOrigin()])
    elsewhere = image_to_volume_node(far, slicer_scene, "T2 elsewhere")
    job = logic.startJob(study["t1c"], elsewhere, device="cpu")
    job.wait(120)
    with pytest.raises(RuntimeError, match=r"shares only 0% of its field of view with the T1C.*Align sequences first"):
        logic.finishJob(job)


def test_cancel_adds_nothing(slicer_scene, logic, study) -> None:
    nodes = _node_ids(slicer_scene)
    job = logic.startJob(study["t1c"], study["t2w"], device="cpu", alignFirst=True)
    job.cancel()
    deadline = time.monotonic() + 60
    while not job.done:
        assert time.monotonic() < deadline, "the cancelled backend did not stop"
        job.poll()
        time.sleep(0.05)
    temp_dirs = [j.temp_dir for j in job.jobs]
    with pytest.raises(RuntimeError, match="cancelled"):
        logic.finishJob(job)
    assert len(job.jobs) == 1  # the segmentation step never started
    assert _node_ids(slicer_scene) == nodes and not any(d.exists() for d in temp_dirs)


def test_a_failed_alignment_names_its_step_and_adds_nothing(slicer_scene, fresh_home, study) -> None:
    runner = FailingRunner("The moving image is empty.")
    logic = BreastLogic(runner=runner)
    nodes = _node_ids(slicer_scene)
    job = logic.startJob(study["t1c"], study["t2w"], study["pre"], alignFirst=True)
    job.wait(10)
    assert len(runner.commands) == 1 and runner.commands[0][3:5] == ["run", "registration"]
    assert "linear_stage=rigid" in runner.commands[0] and "deformable=false" in runner.commands[0]
    with pytest.raises(RuntimeError, match=r"^Aligning the T2W to the T1C failed: The moving image is empty\.$"):
        logic.finishJob(job)
    assert _node_ids(slicer_scene) == nodes


# --- bad input ------------------------------------------------------------------------------------
def _ct_like(slicer_scene, phantom):
    return image_to_volume_node(phantom.images["t1c"] * 4.0 - 1000.0, slicer_scene, "CT chest")


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("missing master", "Select the contrast-enhanced T1 (T1C): it is the master sequence"),
        ("CT as T1C", "The T1C (post-contrast) 'CT chest' looks like a CT in Hounsfield units"),
        ("one volume twice", "is selected as both T1C (post-contrast) and T2W; give each role its own sequence"),
        ("single slice", "The T2W 'one slice' is a single slice"),
        ("no voxels", "The Pre-contrast T1 'empty' has no voxels"),
        ("multi-phase T2W", "holds 3 volumes; select a single T2W volume"),
    ],
)
def test_bad_input_gives_one_sentence_and_starts_nothing(slicer_scene, fresh_home, study, phantom, case, fragment):
    logic = BreastLogic(runner=RefusingRunner())
    t1c, t2w, pre = study["t1c"], None, None
    if case == "missing master":
        t1c, t2w = None, study["t2w"]
    elif case == "CT as T1C":
        t1c = _ct_like(slicer_scene, phantom)
    elif case == "one volume twice":
        t2w = study["t1c"]
    elif case == "single slice":
        t2w = image_to_volume_node(phantom.images["t2w"][:, :, 5:6], slicer_scene, "one slice")
    elif case == "no voxels":
        pre = slicer_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    elif case == "multi-phase T2W":
        t2w = _vector_series(slicer_scene, phantom, "T2 echoes")
    nodes = _node_ids(slicer_scene)
    with pytest.raises(ValueError) as raised:
        logic.startJob(t1c, t2w, pre, device="cpu")
    assert fragment in str(raised.value) and "\n" not in str(raised.value)
    assert _node_ids(slicer_scene) == nodes


# --- multi-phase (DCE) series ---------------------------------------------------------------------
def _phases(phantom) -> list[sitk.Image]:
    return [phantom.images["pre"], phantom.images["t1c"], phantom.images["t1c"] * 0.9]


def _vector_series(slicer_scene, phantom, name: str):
    """A 3-component volume (one component per phase), as Slicer's MultiVolume importer makes."""
    return image_to_volume_node(
        sitk.Compose(_phases(phantom)), slicer_scene, name, class_name="vtkMRMLVectorVolumeNode"
    )


def _sequence_series(slicer_scene, phantom, name: str):
    """A volume sequence of the three phases with its browser; returns the proxy volume the user selects."""
    sequence = slicer_scene.AddNewNodeByClass("vtkMRMLSequenceNode", f"{name} sequence")
    for index, image in enumerate(_phases(phantom)):
        item = image_to_volume_node(image, slicer_scene, f"phase {index}")
        sequence.SetDataNodeAtValue(item, str(index))
        slicer_scene.RemoveNode(item)
    proxy = image_to_volume_node(_phases(phantom)[0], slicer_scene, name)
    browser = slicer_scene.AddNode(
        slicer.vtkMRMLSequenceBrowserNode()
    )  # headless: no Sequences module registers the class
    browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
    browser.AddProxyNode(proxy, sequence, False)
    return proxy


@pytest.mark.parametrize("kind", ["sequence", "vector"])
def test_a_dce_series_needs_a_phase_choice_and_gives_the_chosen_phases(slicer_scene, fresh_home, phantom, kind):
    logic = BreastLogic(runner=RefusingRunner())
    series = (_sequence_series if kind == "sequence" else _vector_series)(slicer_scene, phantom, "DCE")
    assert logic.phaseCount(series) == 3
    with pytest.raises(
        ValueError, match=r"'DCE' is a multi-phase series \(3 phases\); choose its phase \(0 to 2\) in 'T1C phase'"
    ):
        logic.resolveInputs(series)
    with pytest.raises(ValueError, match="has phases 0 to 2; phase 5 is not one of them"):
        logic.resolveInputs(series, phase=5)
    with pytest.raises(ValueError, match="The T1C phase and the pre-contrast phase are both 1"):
        logic.resolveInputs(series, phase=1, prePhase=1)
    inputs = logic.resolveInputs(series, phase=1, prePhase=0)
    assert list(inputs) == ["t1c", "pre"]
    exported = {
        role: item if isinstance(item, sitk.Image) else volume_node_to_image(item) for role, item in inputs.items()
    }
    for role, phase in (("t1c", 1), ("pre", 0)):
        expected = _phases(phantom)[phase]
        np.testing.assert_array_equal(sitk.GetArrayFromImage(exported[role]), sitk.GetArrayFromImage(expected))
        np.testing.assert_allclose(exported[role].GetOrigin(), expected.GetOrigin(), atol=1e-4)


def test_a_dce_sequence_is_segmented_with_its_own_pre_phase_aligned(slicer_scene, logic, phantom) -> None:
    series = _sequence_series(slicer_scene, phantom, "DCE")
    _under_study(slicer_scene, [series])
    result = logic.process(series, phase=1, prePhase=0, alignFirst=True, device="cpu")
    _assert_mass_segmentation(result.segmentation, series)
    aligned = result.alignedVolumes["pre"]
    assert aligned.GetName() == "DCE pre-contrast T1 aligned" and _study_of(aligned) == _study_of(series)
    # the phase was already in register: the rigid alignment leaves it there (within a fraction of a 5 mm voxel)
    shift = estimate_shift(phantom.images["pre"], volume_node_to_image(aligned))
    assert np.linalg.norm(shift) < 2.0, shift


# --- ALN metastasis (research) --------------------------------------------------------------------
def _clinical(**changes) -> dict[str, float]:
    return {**PANEL_DEFAULTS, **changes}


def test_aln_clinical_values_are_the_tasks_and_are_checked() -> None:
    spec = task_spec("aln-metastasis")
    assert [field.name for field in CLINICAL_FIELDS] == list(PANEL_DEFAULTS)
    for field in CLINICAL_FIELDS:
        parameter = spec.parameter(field.name)
        assert parameter.kind == "float" and parameter.minimum == field.minimum and parameter.maximum == field.maximum
        assert field.minimum <= PANEL_DEFAULTS[field.name] <= field.maximum
    assert [i.role for i in spec.inputs] == ["dce", "t2w", "mass"] and spec.outputs == ()
    assert panelFieldName("tumour_size_mm") == "alnTumourSizeMm"
    assert alnParameters(_clinical(age=61)) == _clinical(age=61.0)
    for changes, fragment in (
        ({"age": None}, "'age' (age at diagnosis) is missing in the ALN section"),
        ({"grade": 4}, "'grade' in the ALN section must be between 1 and 3"),
        ({"her2": 0.5}, "'her2' in the ALN section must be one of 0, 1"),
        ({"ki67_percent": "many"}, "'ki67_percent' in the ALN section needs a number"),
    ):
        with pytest.raises(ValueError, match=re.escape(fragment)):
            alnParameters(_clinical(**changes))


def test_aln_report_is_read_with_the_intended_use() -> None:
    report = {
        "aln": {
            "probability": 0.73,
            "threshold": 0.5,
            "positive": True,
            "intended_use": "Research only.",
            "model": "m@1",
        }
    }
    result = alnResult(report)
    assert (result.probability, result.threshold, result.positive, result.model) == (0.73, 0.5, True, "m@1")
    assert "73%" in result.summary() and "Intended use: Research only." in result.summary()
    with pytest.raises(ValueError, match="without an 'aln' entry"):
        alnResult({})
    with pytest.raises(ValueError, match="lacks a usable 'intended_use' entry"):
        alnResult({"aln": {k: v for k, v in report["aln"].items() if k != "intended_use"}})
    with pytest.raises(ValueError, match="not within 0..1"):
        alnResult({"aln": {**report["aln"], "probability": 1.7}})


def test_aln_request_problems_give_one_sentence(slicer_scene, fresh_home, study, phantom) -> None:
    logic = BreastLogic(runner=RefusingRunner())
    with pytest.raises(ValueError, match="Select the DCE / post-contrast T1 for the ALN model"):
        logic.startAlnJob(None, clinical=_clinical())
    with pytest.raises(ValueError, match="looks like a CT"):
        logic.startAlnJob(_ct_like(slicer_scene, phantom), clinical=_clinical())
    with pytest.raises(ValueError, match="'tumour_size_mm' in the ALN section must be between 1 and 200"):
        logic.startAlnJob(study["t1c"], clinical=_clinical(tumour_size_mm=0))
    empty = slicer_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "no mass yet")
    with pytest.raises(ValueError, match="'no mass yet' has no 'Mass' segment; segment the mass first"):
        logic.startAlnJob(study["t1c"], massNode=empty, clinical=_clinical())


def _report_only_jobs_supported() -> bool:
    """Whether MedFuseLib can run a task that writes no images (its result is only the report)."""
    from MedFuseLib.task_job import BackendTaskJob

    try:
        BackendTaskJob("aln-metastasis", {}, [])
    except ValueError:
        return False
    return True


@pytest.mark.skipif(
    not _report_only_jobs_supported(),
    reason="MedFuseLib.task_job.BackendTaskJob and runner.backend_command refuse a task without image outputs",
)
def test_aln_probability_through_the_real_task(slicer_scene, fresh_home, study, phantom, bundle) -> None:  # noqa: F811
    from MedFuseLib.mrml_bridge import labelmap_to_segmentation

    lesion = labelmap_to_segmentation(phantom.mass, [MASS_LABEL], slicer_scene, "truth", reference_node=study["t1c"])
    before = _snapshot(study["t1c"])
    logic = BreastLogic()
    job = logic.startAlnJob(
        study["t1c"], study["t2w"], lesion, clinical=_clinical(age=58), model=str(bundle), device="cpu"
    )
    assert "--input" in job.command and any(part.startswith("mass=") for part in job.command)
    job.wait(120)
    result = logic.finishAlnJob(job)
    assert 0.0 <= result.probability <= 1.0 and result.positive == (result.probability >= result.threshold)
    assert "not for clinical use" in result.intendedUse and result.model == "tiny-aln-0.1.0"
    _assert_unchanged(study["t1c"], before)
