"""The segment editor embedded in a MedFuse panel, for correcting a result in place.

A module's ``.ui`` holds a ``qMRMLSegmentEditorWidget``; :class:`EmbeddedSegmentEditor` gives it the
module's own segment editor node, hides the source volume selector (the panel sets the source volume
when a result arrives), and handles the panel's lifecycle (keyboard shortcuts while the module is
shown, no active effect after it is left)::

    self.segmentEditor = EmbeddedSegmentEditor(self.ui.segmentEditorWidget, "MedFuseExampleSegmentEditor")
    self.segmentEditor.setup()                   # in _setupPanel()
    self.segmentEditor.edit(segmentation, ct)    # in _finishJob()
    # enter() / exit() / cleanup() / onSceneEndClose() from the widget's methods of the same names

Like :mod:`MedFuseLib.panel`, this file needs the Slicer application.
"""

from __future__ import annotations

import slicer

__all__ = ["EmbeddedSegmentEditor"]


class EmbeddedSegmentEditor:
    """A panel's segment editor widget bound to a singleton segment editor node of its own.

    Args:
        editorWidget: the ``qMRMLSegmentEditorWidget`` of the panel's ``.ui``.
        singletonTag: tag of the module's segment editor node, so the Segment Editor module's own
            settings (effect, source volume) stay apart from the panel's.
    """

    def __init__(self, editorWidget, singletonTag: str) -> None:
        self.widget = editorWidget
        self.singletonTag = singletonTag

    def setup(self) -> None:
        """Bind the widget to the scene and the module's editor node; hide the source volume selector."""
        self.widget.setMRMLScene(slicer.mrmlScene)
        # The panel's input is the source volume, set when a result arrives; its selector would only invite mistakes.
        for setter in ("setSourceVolumeNodeSelectorVisible", "setMasterVolumeNodeSelectorVisible"):
            if hasattr(self.widget, setter):
                getattr(self.widget, setter)(False)
                break
        self.widget.setMRMLSegmentEditorNode(self.editorNode())

    def editorNode(self):
        """This module's segment editor node (a scene singleton), created when the scene has none."""
        node = slicer.mrmlScene.GetSingletonNode(self.singletonTag, "vtkMRMLSegmentEditorNode")
        if node is None:
            node = slicer.vtkMRMLSegmentEditorNode()
            node.SetSingletonTag(self.singletonTag)
            node = slicer.mrmlScene.AddNode(node)
        return node

    def edit(self, segmentationNode, sourceVolumeNode) -> None:
        """Show ``segmentationNode`` in the editor, painted on ``sourceVolumeNode``."""
        self.widget.setSegmentationNode(segmentationNode)
        if hasattr(self.widget, "setSourceVolumeNode"):
            self.widget.setSourceVolumeNode(sourceVolumeNode)
        else:  # Slicer < 5.2
            self.widget.setMasterVolumeNode(sourceVolumeNode)

    def enter(self) -> None:
        self.widget.installKeyboardShortcuts()

    def exit(self) -> None:
        self.widget.setActiveEffect(None)
        self.widget.uninstallKeyboardShortcuts()

    def cleanup(self) -> None:
        self.widget.setActiveEffect(None)

    def onSceneEndClose(self) -> None:
        """The scene was cleared with the editor node in it: bind a new one."""
        self.widget.setMRMLSegmentEditorNode(self.editorNode())
