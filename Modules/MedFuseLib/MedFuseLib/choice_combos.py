"""What a person reads in a panel's choice combo boxes: "Cubic B-spline", not ``bspline``.

Slicer's parameter node connector fills a combo box bound to a ``Choice`` field with the choice
ids and reads the selection back by index, so the items' texts can be replaced after every
``connectGui`` without changing what is stored. :func:`labelChoiceCombos` replaces them with the
labels the task declares (``ParameterSpec.choice_label``). Needs no Qt import: it works on the
PythonQt widgets it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["PARAMETER_PROPERTY", "labelChoiceCombos"]

#: The dynamic property a ``.ui`` widget names its parameter node field with.
PARAMETER_PROPERTY = "SlicerParameterName"


def labelChoiceCombos(widgets: Iterable[Any], choiceLabel: Callable[[str, str], str]) -> int:
    """Show each bound combo box's choices by their labels.

    Args:
        widgets: the panel's widgets (e.g. the values of ``slicer.util.childWidgetVariables``).
        choiceLabel: (field name, choice id) -> the label to show; the id itself when there is none.

    Returns:
        How many items were relabelled.
    """
    relabelled = 0
    for widget in widgets:
        if not (hasattr(widget, "setItemText") and hasattr(widget, "property")):
            continue  # not a combo box
        field = widget.property(PARAMETER_PROPERTY)
        if not field:
            continue
        for index in range(int(widget.count)):
            value = widget.itemText(index)
            label = choiceLabel(str(field), value)
            if label != value:
                widget.setItemText(index, label)
                relabelled += 1
    return relabelled
