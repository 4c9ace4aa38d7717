"""The panel every MedFuse module shows: parameter node lifecycle, Apply/Cancel and the job it runs.

A MedFuse panel binds a typed parameter node (``@parameterNodeWrapper``) to the widgets of its
``Resources/UI/<ModuleName>.ui``, starts one backend job at a time from its Apply button (the button
doubles as Cancel while the job runs), polls the job from a Qt timer, and loads the result into the
scene. :class:`MedFusePanelWidget` holds all of that; a module's widget (``<Module>Lib/Widget.py``,
imported by the module file after its Slicer version check) subclasses it and keeps only what its
own panel shows. Combo boxes bound to a task's choice parameters show the task's choice labels::

    class MedFuseExampleWidget(MedFusePanelWidget):
        START_FAILED_MESSAGE = _("Example could not start.")
        JOB_FAILED_MESSAGE = _("Example failed.")

        def _createLogic(self): return MedFuseExampleLogic()
        def _outputNodes(self): return (self._parameterNode.outputVolume,)
        def _startJob(self): return self.logic.startJob(self._parameterNode)
        def _finishJob(self, job, outputVolume): ...  # load job's results into the scene, show them
        def _applyButtonState(self): return bool(self._parameterNode and ...), _("Tool tip.")
        def _sectionsLockedWhileRunning(self): return (self.ui.inputsCollapsibleButton, ...)

Hooks a subclass must implement:

* ``START_FAILED_MESSAGE``, ``JOB_FAILED_MESSAGE`` (class attributes): the translated sentences shown
  when Apply cannot start a job, and above the backend's error when the job fails.
* ``_createLogic()``: the module's ``ScriptedLoadableModuleLogic``, whose ``getParameterNode()``
  returns the ``@parameterNodeWrapper`` node.
* ``_startJob()``: start the backend job from ``self._parameterNode`` and return it (see
  :class:`PanelJob`; :class:`MedFuseLib.task_job.BackendTaskJob` is one).
* ``_finishJob(job, *outputNodes)``: put a succeeded job's results into the scene, the parameter
  node and the panel. ``outputNodes`` are what ``_outputNodes()`` returned at Apply, with None for
  any node the user deleted while the job ran. An exception is shown as "The result could not be
  loaded."
* ``_applyButtonState()``: ``(enabled, toolTip)`` of the Apply button while no job runs.
* ``_sectionsLockedWhileRunning()``: the widgets (collapsible sections) disabled while a job runs.

Optional hooks (the default in brackets):

* ``_outputNodes()``: the parameter node's output nodes when Apply is pressed [none].
* ``_setupPanel()``: connect the panel's own widgets; called by ``setup()`` after the common
  widgets and before the parameter node is bound [nothing].
* ``_refreshPanel()``: re-read what changes outside the scene (installed models, saved presets);
  called at the end of ``setup()`` and of ``enter()`` [nothing].
* ``_chooseDefaultInputs()``: fill empty inputs of the parameter node from the scene [an empty
  ``inputVolume`` gets the scene's first scalar volume that is not a label map; a parameter node
  without an ``inputVolume`` field must override this].
* ``_onParameterNodeModified(caller=None, event=None)``: update what depends on the parameter node;
  an override calls ``self._updateApplyButton()`` last [only that].

A panel that runs a second kind of job beside the main one (a research estimate with its own
button) gets a :class:`JobPoller` from ``self._newJobPoller(onProgress, onDone)`` in
``_setupPanel()``: ``poller.start(job)`` polls the job from its own timer, ``onProgress(job)``
follows every poll, ``onDone(job)`` gets the finished job (succeeded, failed or cancelled);
``poller.cancel()`` asks it to stop; ``cleanup()`` discards it. The main job runs on a poller too.

A panel with a segment editor for corrections calls ``self._embedSegmentEditor(editorWidget,
singletonTag)`` in ``_setupPanel()`` and ``self._segmentEditor.edit(segmentation, sourceVolume)`` when a
result arrives; the base handles the editor's lifecycle (see :mod:`MedFuseLib.segment_editor`).

Below the module's ``.ui`` the base adds the Backend section that every panel shares
(:mod:`MedFuseLib.backend_section`: this computer or a server). Before a job on a server starts, Apply
asks once per server for consent to send image data there and checks that the server answers;
declining, or a connection problem, is one sentence in ``statusLabel`` and nothing is sent.

An override of ``setup``, ``cleanup``, ``enter``, ``exit`` or ``onSceneEndClose`` calls the base
method; ``Testing/module/test_panel_base.py`` checks every module widget for these rules. The
module's ``.ui`` must have ``applyButton`` (QPushButton), ``statusLabel`` (QLabel) and
``progressBar`` (QProgressBar). This file needs the Slicer application (``qt``, ``slicer.util``);
the rest of MedFuseLib does not.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import qt
import slicer
import vtk
from slicer.i18n import tr as _
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from MedFuseLib.backend_section import BackendSection
from MedFuseLib.backend_setting import BackendSetting, prepareBackendStart
from MedFuseLib.choice_combos import labelChoiceCombos
from MedFuseLib.installer import BackendInstaller
from MedFuseLib.segment_editor import EmbeddedSegmentEditor

__all__ = ["JobPoller", "MedFusePanelWidget", "PanelJob"]


class PanelJob(Protocol):
    """What the panel reads from a running job (:class:`MedFuseLib.task_job.BackendTaskJob` has it all)."""

    fraction: float  # progress, 0 to 1
    stage: str
    messages: list[str]

    @property
    def done(self) -> bool: ...

    @property
    def succeeded(self) -> bool: ...

    @property
    def error_message(self) -> str: ...

    def poll(self) -> Any: ...

    def cancel(self) -> None: ...

    def cleanup(self) -> None: ...


class JobPoller:
    """Polls one job at a time from a Qt timer.

    Args:
        intervalMs: time between polls.
        onProgress: called with the job after each poll (also the last one).
        onDone: called with the job once it is done; the poller holds no job by then.
    """

    def __init__(self, intervalMs: int, onProgress: Callable[[PanelJob], None], onDone: Callable[[PanelJob], None]):
        self.job: PanelJob | None = None
        self._onProgress, self._onDone = onProgress, onDone
        self._timer = qt.QTimer()
        self._timer.setInterval(intervalMs)
        self._timer.connect("timeout()", self._onTimer)

    @property
    def running(self) -> bool:
        return self.job is not None

    def isActive(self) -> bool:
        """Whether the timer polls."""
        return self._timer.isActive()

    def start(self, job: PanelJob) -> None:
        self.job = job
        self._timer.start()

    def cancel(self) -> None:
        """Ask the running job to stop; it is polled on until it is done (``onDone`` sees it cancelled)."""
        if self.job is not None:
            self.job.cancel()

    def discard(self) -> PanelJob | None:
        """Stop polling, cancel the running job and remove its files; ``onDone`` is not called. Returns the job."""
        self._timer.stop()
        job, self.job = self.job, None
        if job is not None:
            job.cancel()
            job.cleanup()
        return job

    def _onTimer(self) -> None:
        job = self.job
        if job is None:
            self._timer.stop()
            return
        job.poll()
        self._onProgress(job)
        if job.done:
            self._timer.stop()
            self.job = None
            self._onDone(job)


class MedFusePanelWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Base of the MedFuse module widgets; see the module docstring for the hooks a subclass implements."""

    POLL_INTERVAL_MS = 200
    START_FAILED_MESSAGE = ""
    JOB_FAILED_MESSAGE = ""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._jobPoller: JobPoller | None = None  # the main job's
        self._secondaryJobPollers: list[JobPoller] = []
        self._segmentEditor: EmbeddedSegmentEditor | None = None
        self._jobOutputs: tuple = ()
        self._cancelRequested = False
        self._backendReady = False
        self._installer: BackendInstaller | None = None  # while the first-use installation runs
        self._installJob: PanelJob | None = None
        self._backendSection: BackendSection | None = None

    @property
    def _job(self) -> PanelJob | None:
        """The running main job, None when idle."""
        return self._jobPoller.job if self._jobPoller is not None else None

    # --- hooks ------------------------------------------------------------------------------------
    def _createLogic(self):
        raise NotImplementedError(f"{type(self).__name__} must implement _createLogic()")

    def _startJob(self) -> PanelJob:
        raise NotImplementedError(f"{type(self).__name__} must implement _startJob()")

    def _finishJob(self, job: PanelJob, *outputNodes) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _finishJob(job, *outputNodes)")

    def _applyButtonState(self) -> tuple[bool, str]:
        raise NotImplementedError(f"{type(self).__name__} must implement _applyButtonState()")

    def _sectionsLockedWhileRunning(self) -> Sequence:
        raise NotImplementedError(f"{type(self).__name__} must implement _sectionsLockedWhileRunning()")

    def _outputNodes(self) -> tuple:
        return ()

    def _setupPanel(self) -> None:
        pass

    def _refreshPanel(self) -> None:
        pass

    def _chooseDefaultInputs(self) -> None:
        if self._parameterNode.inputVolume:
            return
        for volume in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode"):
            if not volume.IsA("vtkMRMLLabelMapVolumeNode"):
                self._parameterNode.inputVolume = volume
                return

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        self._updateApplyButton()

    # --- lifecycle --------------------------------------------------------------------------------
    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath(f"UI/{self.moduleName}.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        self._backendSection = BackendSection()  # the same Backend setting in every panel
        self.layout.addWidget(self._backendSection.widget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = self._createLogic()

        self._jobPoller = JobPoller(self.POLL_INTERVAL_MS, self._onJobProgress, self._finish)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.progressBar.visible = False
        self._setupPanel()

        self.initializeParameterNode()
        self._refreshPanel()

    def cleanup(self) -> None:
        """Called when the application closes or the module is reloaded."""
        self.removeObservers()
        self._discardJob()
        for poller in self._secondaryJobPollers:
            poller.discard()
        if self._segmentEditor is not None:
            self._segmentEditor.cleanup()

    def enter(self) -> None:
        self.initializeParameterNode()
        self._refreshPanel()
        if self._backendSection is not None:  # another panel or the console may have changed it
            self._backendSection.refresh()
        if self._segmentEditor is not None:
            self._segmentEditor.enter()

    def exit(self) -> None:
        if self._segmentEditor is not None:
            self._segmentEditor.exit()
        # A running job keeps going (the timer still polls); only the GUI binding is released.
        self._releaseParameterNode()

    def onReload(self) -> None:
        """Reload the module and its Lib packages: dropping them from ``sys.modules`` makes the reload import fresh copies."""
        for name in list(sys.modules):
            if name.split(".")[0] in (f"{self.moduleName}Lib", "MedFuseLib"):
                del sys.modules[name]
        ScriptedLoadableModuleWidget.onReload(self)

    # --- parameter node ---------------------------------------------------------------------------
    def onSceneStartClose(self, caller, event) -> None:
        self._discardJob()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self._segmentEditor is not None:
            self._segmentEditor.onSceneEndClose()
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        self._chooseDefaultInputs()

    def setParameterNode(self, parameterNode) -> None:
        self._releaseParameterNode()
        self._parameterNode = parameterNode
        if self._parameterNode:
            # Each widget in the .ui names its field with the dynamic property SlicerParameterName.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self._labelChoiceCombos()
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._onParameterNodeModified()

    def _labelChoiceCombos(self) -> None:
        """Task choices by what a person reads ("Cubic B-spline"); the connector just filled them with ids."""
        taskLogic = getattr(self.logic, "taskLogic", None)
        if taskLogic is not None:
            labelChoiceCombos(vars(self.ui).values(), taskLogic.choiceLabel)

    def _releaseParameterNode(self) -> None:
        if self._parameterNode is None:
            return
        if self._parameterNodeGuiTag is not None:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
        self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)

    # --- running ----------------------------------------------------------------------------------
    def _updateApplyButton(self) -> None:
        if self._job is not None:
            self.ui.applyButton.text = _("Cancel")
            self.ui.applyButton.toolTip = _("Stop the computation; nothing is added to the scene.")
            self.ui.applyButton.enabled = True
            return
        self.ui.applyButton.text = _("Apply")
        enabled, toolTip = self._applyButtonState()
        self.ui.applyButton.enabled = enabled
        self.ui.applyButton.toolTip = toolTip

    def onApplyButton(self) -> None:
        """Start a job, or cancel the running one (the button doubles as Cancel)."""
        if self._job is not None:
            self._cancelRequested = True
            self._jobPoller.cancel()
            self.ui.statusLabel.text = _("Cancelling...")
            return
        # Consent before image data leaves the computer, and a server that answers; else one sentence, nothing sent.
        backendProblem = prepareBackendStart(self._askConsent)
        if backendProblem:
            self.ui.statusLabel.text = backendProblem
            return
        with slicer.util.tryWithErrorDisplay(self.START_FAILED_MESSAGE, waitCursor=True):
            if not self._ensureBackendRequirements():
                return
            self._jobOutputs = tuple(self._outputNodes())
            self._cancelRequested = False
            self._jobPoller.start(self._startJob())  # polled from the event loop, after this method
            self.ui.progressBar.value = 0
            self.ui.progressBar.visible = True
            self.ui.statusLabel.text = _("Starting the backend...")
            self._setRunning(True)

    def _askConsent(self, question: str) -> bool:
        """The one-time consent dialog for a server (see :mod:`MedFuseLib.consent`)."""
        return bool(slicer.util.confirmOkCancelDisplay(question, windowTitle=_("MedFuse: send images to a server?")))

    def _embedSegmentEditor(self, editorWidget, singletonTag: str) -> EmbeddedSegmentEditor:
        """Bind the panel's segment editor widget to a segment editor node of the module's own (see the module docstring)."""
        self._segmentEditor = EmbeddedSegmentEditor(editorWidget, singletonTag)
        self._segmentEditor.setup()
        return self._segmentEditor

    def _newJobPoller(self, onProgress: Callable[[PanelJob], None], onDone: Callable[[PanelJob], None]) -> JobPoller:
        """A poller for a second kind of job (see the module docstring); ``cleanup()`` discards its job."""
        poller = JobPoller(self.POLL_INTERVAL_MS, onProgress, onDone)
        self._secondaryJobPollers.append(poller)
        return poller

    def _ensureBackendRequirements(self) -> bool:
        """True when the backend's Python packages are installed; else start installing them, after asking.

        The installation runs on the main job poller like a backend job (progress in the panel, Apply
        reads Cancel) and this returns False at once; when it has finished the user presses Apply
        again. Jobs on a server (the Backend setting) need none of these packages here. On a Python older than 3.10 this raises the sentence that names the Slicer to install.
        """
        if self._backendReady or BackendSetting.load().isServer:  # a server brings its own packages
            return True
        installer = BackendInstaller.for_slicer()
        installer.check_python()
        missing = installer.missing_requirements()
        if not missing:
            self._backendReady = True
            return True
        if not slicer.util.confirmOkCancelDisplay(installer.confirmation_message(missing), windowTitle=_("MedFuse")):
            self.ui.statusLabel.text = _("SlicerMedFuse needs these packages; press Apply to install them.")
            return False
        self._installer = installer
        self._installJob = installer.start(missing)
        self._cancelRequested = False
        self._jobPoller.start(self._installJob)
        self.ui.progressBar.value = 0
        self.ui.progressBar.visible = True
        self.ui.statusLabel.text = _("Installing the backend's Python packages...")
        self._setRunning(True)
        return False

    def _finishInstall(self, job: PanelJob) -> None:
        """After the first-use installation: say what happened, and whether Slicer must restart."""
        installer, self._installer, self._installJob = self._installer, None, None
        try:
            if not job.succeeded:
                if self._cancelRequested:
                    self.ui.statusLabel.text = _("Installation cancelled; press Apply to resume it.")
                else:
                    self.ui.statusLabel.text = _("Installation failed: {message}").format(message=job.error_message)
                    slicer.util.errorDisplay(_("The packages could not be installed.") + "\n\n" + job.error_message)
                return
            with slicer.util.tryWithErrorDisplay(_("The packages could not be installed."), waitCursor=True):
                outcome = installer.outcome(job)
                if outcome.restart_required:
                    self.ui.statusLabel.text = _("Installed; restart Slicer before pressing Apply.")
                    slicer.util.infoDisplay(_("The packages were installed. Restart Slicer, then press Apply again."))
                    return
                self._backendReady = True
                self.ui.statusLabel.text = _("The packages are installed; press Apply to run.")
        finally:
            job.cleanup()

    def _onJobProgress(self, job: PanelJob) -> None:
        self.ui.progressBar.value = int(round(100 * job.fraction))
        if not self._cancelRequested:
            latest = job.messages[-1] if job.messages else ""
            self.ui.statusLabel.text = f"{job.stage}: {latest}" if latest else job.stage

    def _finish(self, job: PanelJob) -> None:
        if job is self._installJob:  # the first-use installation, not a backend job
            self._setRunning(False)
            self._finishInstall(job)
            return
        # Nodes the user deleted while the job ran are replaced by new ones.
        outputNodes = tuple(
            node if node is not None and node.GetScene() is not None else None for node in self._jobOutputs
        )
        self._jobOutputs = ()
        self._setRunning(False)
        if not job.succeeded:
            job.cleanup()
            if self._cancelRequested:
                self.ui.statusLabel.text = _("Cancelled; nothing was added to the scene.")
            else:
                self.ui.statusLabel.text = _("Failed: {message}").format(message=job.error_message)
                slicer.util.errorDisplay(self.JOB_FAILED_MESSAGE + "\n\n" + job.error_message)
            return
        with slicer.util.tryWithErrorDisplay(_("The result could not be loaded."), waitCursor=True):
            self._finishJob(job, *outputNodes)

    def _setRunning(self, running: bool) -> None:
        for section in self._sectionsLockedWhileRunning():
            section.enabled = not running
        self._updateApplyButton()

    def _discardJob(self) -> None:
        """Cancel a running job and remove its files (scene close, module cleanup)."""
        if self._jobPoller is not None and self._jobPoller.discard() is not None:
            self._setRunning(False)
