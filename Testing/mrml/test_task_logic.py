"""MedFuseLib.task_logic.TaskLogic on a headless MRML scene: the spec-driven part every module Logic shares.

Input checks, parameter mapping both ways, choice labels, grid prechecks and model resolution read the
real task declarations through the facade. The job flow (start, poll, finish, cancel, wait, async runs)
uses an in-process stand-in for the backend process that speaks the runner's event protocol and writes
the output file the real backend would, so each step is checked without minutes of computation; the
module-logic tests run the same flow through the real backend.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from Testing.mrml.conftest import import_slicer_core

slicer = import_slicer_core()

from MedFuseLib import mrml_bridge  # noqa: E402  (needs slicer-core, checked above)
from MedFuseLib.task_logic import TaskLogic, camelName, snakeName  # noqa: E402
from MedFuseLib.task_run import TaskRun  # noqa: E402

from SlicerMedFuse import facade  # noqa: E402

pytestmark = pytest.mark.slicer


# --- a backend stand-in: the runner's Job protocol, in process ------------------------------------
class ScriptedJob:
    """Reports progress over ``steps`` polls, then copies its input to its output (or fails, or never ends)."""

    def __init__(self, command: list[str], steps: int, outcome: str) -> None:
        self.command = command
        pairs = list(zip(command[:-1], command[1:], strict=True))  # (option, value) and every other neighbour
        self.inputs = dict(arg.split("=", 1) for flag, arg in pairs if flag == "--input")
        self.outputs = dict(arg.split("=", 1) for flag, arg in pairs if flag == "--output")
        self.steps, self.outcome, self.step = steps, outcome, 0
        self.returncode: int | None = None
        self.error_message = ""
        self.cancelled = False
        self.queued: list[dict] = []
        assert ("--progress", "json") in pairs

    @property
    def done(self) -> bool:
        return self.returncode is not None

    def poll(self) -> list[dict]:
        """New events (never blocks): the process makes one step between two polls."""
        self._advance()
        events, self.queued = self.queued, []
        return events

    def _advance(self) -> None:
        if self.done:
            return
        if self.cancelled:
            self.returncode = -15
            return
        self.step += 1
        self.queued.append(
            {"event": "progress", "fraction": self.step / (self.steps + 1), "stage": f"step {self.step}"}
        )
        if self.step >= self.steps and self.outcome == "succeed":
            for path in self.outputs.values():
                sitk.WriteImage(sitk.ReadImage(next(iter(self.inputs.values()))) + 1, path)
            self.queued.append({"event": "result", "outputs": self.outputs, "report": {"steps": self.steps}})
            self.returncode = 0
        elif self.step >= self.steps and self.outcome == "fail":
            self.queued.append({"event": "error", "message": "The volume has no head in it; select a head CT."})
            self.returncode = 1

    def cancel(self) -> None:
        self.cancelled = True

    def wait(self, timeout: float | None = None) -> int:
        if self.outcome == "hang" and not self.cancelled:
            raise subprocess.TimeoutExpired("backend", timeout or 0)
        while not self.done:
            self._advance()  # like the real process: events stay queued for poll()
        return self.returncode


class ScriptedRunner:
    def __init__(self, steps: int = 3, outcome: str = "succeed") -> None:
        self.steps, self.outcome = steps, outcome
        self.jobs: list[ScriptedJob] = []

    def start(self, command, *, env=None, cwd=None) -> ScriptedJob:
        self.jobs.append(ScriptedJob(list(command), self.steps, self.outcome))
        return self.jobs[-1]


class ManualScheduler:
    """Stands in for the Qt timer: ``fire()`` is one timeout; ``stopped`` once the run stops its timer."""

    def every(self, intervalMs: int, callback):
        self.callback, self.stopped = callback, False
        return self

    def stop(self) -> None:
        self.stopped = True

    def fire(self) -> None:
        self.callback()


class ExampleLogic(TaskLogic):
    """The smallest module Logic on the base: one input volume in, one volume out (the superres task's spec)."""

    TASK_NAME = "superres"
    FINISH_OPTIONS = ("outputName",)

    def startJob(self, volume, *, device: str = "auto", **parameters):
        self.checkInputNodes({"volume": volume})
        params = self.taskParameters(**parameters)
        return self.startBackendJob({"volume": volume}, ["volume"], params, device=device)

    def finishJob(self, job, outputName: str = "result"):
        try:
            image = self.finishedImages(job)["volume"]
            node = job.input_nodes["volume"]
            return mrml_bridge.image_to_volume_node(image, node.GetScene(), outputName, reference_node=node)
        finally:
            job.cleanup()


@pytest.fixture
def volume(slicer_scene):
    image = sitk.GetImageFromArray(np.arange(6 * 8 * 10, dtype=np.int16).reshape(6, 8, 10))
    image.SetSpacing((1.0, 1.0, 4.0))
    return mrml_bridge.image_to_volume_node(image, slicer_scene, "thick")


def _node_ids(scene) -> set[str]:
    return {scene.GetNthNode(n).GetID() for n in range(scene.GetNumberOfNodes())}


# --- parameters -----------------------------------------------------------------------------------
def test_parameter_names_map_both_ways_for_every_task() -> None:
    for task in ("hemorrhage", "superres", "registration", "breast-mass"):
        for parameter in facade.task_spec(task).parameters:
            assert snakeName(camelName(parameter.name)) == parameter.name
    assert camelName("min_component_ml") == "minComponentMl" and snakeName("maxMisalignmentMm") == "max_misalignment_mm"


def test_task_parameters_from_keywords_with_the_spec_defaults() -> None:
    spec = facade.task_spec("superres")
    params = ExampleLogic.taskParameters(method="bspline", targetSpacing=None, factor=2.0)
    assert params == {**{p.name: p.default for p in spec.parameters}, "method": "bspline", "factor": 2.0}
    assert ExampleLogic.keywordValues(params)["targetSpacing"] == spec.parameter("target_spacing").default
    pack = types.SimpleNamespace(method="linear", factor=3.0, inputVolume=object())
    assert ExampleLogic.packValues(pack) == {"method": "linear", "factor": 3.0}  # node fields are not parameters
    assert ExampleLogic.packValues(pack, ["factor"]) == {"factor": 3.0}


@pytest.mark.parametrize(
    ("keywords", "fragment"),
    [
        ({"speed": 3}, r"Unknown superres parameter\(s\) speed; known: epochs, factor, method"),
        ({"method": "magic"}, "must be one of sr4zct, linear, bspline, sinc"),
        ({"epochs": -1}, "must be at least"),
    ],
)
def test_bad_parameters_give_one_sentence(keywords: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as raised:
        ExampleLogic.taskParameters(**keywords)
    assert "\n" not in str(raised.value)


def test_ranges_choices_and_what_a_person_reads_for_each_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ExampleLogic.parameterRange("targetSpacing") == ExampleLogic.parameterRange("target_spacing")
    assert ExampleLogic.parameterChoices("method") == list(facade.task_spec("superres").parameter("method").choices)
    with pytest.raises(ValueError, match="has no choices"):
        ExampleLogic.parameterChoices("factor")
    labelled = facade.ParameterSpec(
        "method", "choice", "bspline", choices=("bspline", "sinc"), choice_labels=("Cubic B-spline", "Windowed sinc")
    )
    spec = facade.TaskSpec("example", "Example", "", (facade.InputSpec("volume", "Volume"),), (), (labelled,))
    monkeypatch.setattr(ExampleLogic, "spec", classmethod(lambda cls: spec))
    assert ExampleLogic.choiceLabels("method") == [("bspline", "Cubic B-spline"), ("sinc", "Windowed sinc")]
    assert ExampleLogic.choiceLabel("method", "sinc") == "Windowed sinc"
    assert ExampleLogic.choiceLabel("device", "cuda") == "cuda"  # a panel field that is no task choice


def test_combo_boxes_show_the_labels_and_keep_the_ids_behind_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from MedFuseLib.choice_combos import labelChoiceCombos

    class Combo:
        """A QComboBox as the parameter node connector leaves it: the ids as texts, read back by index."""

        def __init__(self, field: str, ids: list[str]) -> None:
            self.field, self.texts = field, list(ids)

        @property
        def count(self) -> int:
            return len(self.texts)

        def property(self, name: str):
            return self.field if name == "SlicerParameterName" else None

        def itemText(self, index: int) -> str:
            return self.texts[index]

        def setItemText(self, index: int, text: str) -> None:
            self.texts[index] = text

    labelled = facade.ParameterSpec(
        "method", "choice", "bspline", choices=("bspline", "sinc"), choice_labels=("Cubic B-spline", "Windowed sinc")
    )
    spec = facade.TaskSpec("example", "Example", "", (facade.InputSpec("volume", "Volume"),), (), (labelled,))
    monkeypatch.setattr(ExampleLogic, "spec", classmethod(lambda cls: spec))
    method, device = Combo("method", ["bspline", "sinc"]), Combo("device", ["auto", "cpu"])
    unbound = Combo("", ["a"])
    assert labelChoiceCombos([method, device, unbound, object()], ExampleLogic.choiceLabel) == 2
    assert method.texts == ["Cubic B-spline", "Windowed sinc"] and device.texts == ["auto", "cpu"]
    assert labelChoiceCombos([method], ExampleLogic.choiceLabel) == 0  # labelling twice changes nothing


# --- inputs ---------------------------------------------------------------------------------------
def test_input_checks_come_from_the_input_specs(slicer_scene, volume) -> None:
    ExampleLogic.checkInputNodes({"volume": volume})
    cases = {
        "Select the Thick-slice volume.": None,
        "has no voxels": slicer_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty"),
        "colour or vector voxels": slicer.util.addVolumeFromArray(
            np.zeros((4, 8, 8, 3), np.uint8), name="rgb", nodeClassName="vtkMRMLVectorVolumeNode"
        ),
        "is a single slice (8 x 8 x 1 voxels); select a 3D volume": slicer.util.addVolumeFromArray(
            np.zeros((1, 8, 8), np.int16), name="single"
        ),
    }
    for fragment, node in cases.items():
        with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")) as raised:
            ExampleLogic.checkInputNodes({"volume": node})
        assert "\n" not in str(raised.value)
    with pytest.raises(ValueError, match="Choose another output volume"):
        ExampleLogic.checkOutputNode(volume, {"volume": volume})


def test_optional_inputs_and_one_node_in_two_roles(volume) -> None:
    class Registration(TaskLogic):
        TASK_NAME = "registration"

    Registration.checkInputNodes({"fixed": volume, "moving": volume.GetScene().CopyNode(volume), "fixed_mask": None})
    with pytest.raises(ValueError, match="'thick' is selected as both Fixed image and Moving image"):
        Registration.checkInputNodes({"fixed": volume, "moving": volume})


def test_grid_prechecks_run_the_tasks_own_rules(volume) -> None:
    with pytest.raises(ValueError, match="SR4ZCT needs slices of more than 10 pixels"):  # an 10 x 8 pixel slice
        ExampleLogic.precheckGrids({"volume": ExampleLogic.nodeGrid(volume)}, ExampleLogic.taskParameters())
    params = ExampleLogic.taskParameters(method="linear")
    ExampleLogic.precheckGrids({"volume": ExampleLogic.nodeGrid(volume)}, params)
    isotropic = dataclasses.replace(ExampleLogic.nodeGrid(volume), spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="nothing to super-resolve"):
        ExampleLogic.precheckGrids({"volume": isotropic}, params)


# --- models ---------------------------------------------------------------------------------------
def test_models_resolve_from_the_store_and_the_shipped_bundles(tmp_path: Path, monkeypatch) -> None:
    class Hemorrhage(TaskLogic):
        TASK_NAME = "hemorrhage"

    monkeypatch.setenv("MEDFUSE_HOME", str(tmp_path / "fresh-user"))  # nothing installed: the shipped demo
    logic = Hemorrhage()
    default = logic.defaultModel()
    assert default is not None and default.id == facade.default_model("hemorrhage") and default.bundled
    assert logic.resolveModel().id == default.id
    with pytest.raises(ValueError, match="'nonexistent' is not installed") as raised:
        logic.resolveModel("nonexistent")
    assert "\n" not in str(raised.value)


# --- running --------------------------------------------------------------------------------------
def test_process_async_finishes_itself_from_the_scheduler(slicer_scene, volume) -> None:
    scheduler = ManualScheduler()
    logic = ExampleLogic(runner=ScriptedRunner(steps=3), scheduler=scheduler)
    run = logic.processAsync(volume, method="linear", outputName="fine")
    assert isinstance(run, TaskRun) and not run.done and run.fraction == 0.0
    fractions = []
    while not run.done:
        scheduler.fire()  # a Qt timeout inside Slicer
        fractions.append(run.fraction)
    assert scheduler.stopped and run.succeeded and run.error == ""
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and run.stage == "done"
    assert run.result.GetName() == "fine" and run.wait() is run.result
    np.testing.assert_array_equal(
        slicer.util.arrayFromVolume(run.result), slicer.util.arrayFromVolume(volume) + 1
    )  # the backend's output, on the input's grid
    assert not run.job.temp_dir.exists()
    assert "method=linear" in logic.runner.jobs[0].command


def test_cancel_adds_nothing_and_removes_the_files(slicer_scene, volume) -> None:
    logic = ExampleLogic(runner=ScriptedRunner(steps=50))
    nodes = _node_ids(slicer_scene)
    run = logic.processAsync(volume, method="linear", scheduler=None)
    run.poll()
    run.cancel()
    while not run.poll():
        pass
    assert run.done and not run.succeeded and run.error == "The job was cancelled."
    with pytest.raises(RuntimeError, match="cancelled"):
        run.wait()
    assert _node_ids(slicer_scene) == nodes and not run.job.temp_dir.exists()


def test_a_failed_job_raises_the_backends_sentence(slicer_scene, volume) -> None:
    nodes = _node_ids(slicer_scene)
    with pytest.raises(RuntimeError, match=r"^The volume has no head in it; select a head CT\.$"):
        ExampleLogic(runner=ScriptedRunner(outcome="fail")).process(volume, method="linear")
    assert _node_ids(slicer_scene) == nodes


def test_a_wait_timeout_leaves_the_job_running_and_process_stops_it(slicer_scene, volume) -> None:
    runner = ScriptedRunner(outcome="hang")
    run = ExampleLogic(runner=runner).processAsync(volume, method="linear", scheduler=None)
    with pytest.raises(TimeoutError, match=r"^The job is still running after 0.1 s; wait again, or stop it"):
        run.wait(timeout=0.1)
    assert not runner.jobs[0].cancelled and run.job.temp_dir.exists() and not run.done
    run.stop()
    assert run.done and run.error == "The job was cancelled." and not run.job.temp_dir.exists()

    nodes = _node_ids(slicer_scene)
    with pytest.raises(TimeoutError, match="did not finish within 0.1 s; it was stopped and nothing was added"):
        ExampleLogic(runner=runner).process(volume, method="linear", timeout=0.1)
    assert runner.jobs[1].cancelled and _node_ids(slicer_scene) == nodes


def test_process_blocks_and_returns_the_result_nodes(slicer_scene, volume) -> None:
    result = ExampleLogic(runner=ScriptedRunner()).process(volume, method="bspline", outputName="blocking")
    assert result.GetName() == "blocking" and result.GetScene() is slicer_scene


def test_bad_input_raises_before_anything_starts(slicer_scene) -> None:
    runner = ScriptedRunner()
    with pytest.raises(ValueError, match="Select the Thick-slice volume"):
        ExampleLogic(runner=runner).processAsync(None)
    assert runner.jobs == []


# --- parameter packs ------------------------------------------------------------------------------
def test_a_pack_gets_one_typed_field_per_task_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    import typing

    wrapper = types.ModuleType("slicer.parameterNodeWrapper")  # slicer-core lacks the application layer
    wrapper.Choice = lambda choices: ("Choice", tuple(choices))
    wrapper.WithinRange = lambda low, high: ("WithinRange", low, high)
    monkeypatch.setitem(sys.modules, "slicer.parameterNodeWrapper", wrapper)
    from MedFuseLib.parameter_pack import taskParameterFields

    class Pack(taskParameterFields("superres")):
        inputVolume: str = ""

    hints = typing.get_type_hints(Pack, include_extras=True)  # what parameterNodeWrapper reads
    assert list(hints)[:3] == ["method", "targetSpacing", "factor"] and "inputVolume" in hints
    assert hints["method"].__metadata__ == (("Choice", ("sr4zct", "linear", "bspline", "sinc")),)
    assert hints["epochs"].__origin__ is int and hints["epochs"].__metadata__[0][0] == "WithinRange"
    assert (Pack.method, Pack.targetSpacing, Pack.epochs) == ("sr4zct", 0.0, 0)
    assert typing.get_type_hints(taskParameterFields("hemorrhage", ("mirroring",))) == {"mirroring": bool}
    with pytest.raises(ValueError, match="declares no parameter speed"):
        taskParameterFields("superres", ("speed",))
    with pytest.raises(ValueError, match="'phase' has no default; give the pack field 'phase' one"):
        taskParameterFields("breast-mass")
