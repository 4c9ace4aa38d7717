"""The task contract: what a task takes, gives, labels and lets the user tune (DESIGN rule 2).

A task declares this once as a :class:`TaskSpec`. The CLI (``medfuse tasks``, ``medfuse run``),
the Slicer panels (selectors, segment names and colours), the model catalog and the docs all
read it, so a label colour or a parameter range is never written twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from SlicerMedFuse.errors import UsageError

__all__ = [
    "TERMINOLOGY_CONTEXT",
    "CodedConcept",
    "InputSpec",
    "Label",
    "OutputSpec",
    "ParameterSpec",
    "TaskSpec",
    "Terminology",
]

#: Name of the terminology context that holds every MedFuse label's codes (Slicer's .term.json).
TERMINOLOGY_CONTEXT = "Segmentation category and type - MedFuse"

InputKind = Literal["image", "labelmap", "mask", "transform"]
OutputKind = Literal["image", "labelmap", "transform"]
ParameterKind = Literal["float", "int", "bool", "choice", "str"]
#: A text parameter that names a file the task reads or writes besides its inputs and outputs.
FileUse = Literal["", "read", "write"]


@dataclasses.dataclass(frozen=True)
class CodedConcept:
    """A DICOM coded concept, e.g. ``CodedConcept("SCT", "12738006", "Brain")``."""

    scheme: str
    value: str
    meaning: str

    def serialize(self) -> str:
        """Slicer's ``scheme^value^meaning`` form."""
        return f"{self.scheme}^{self.value}^{self.meaning}"


@dataclasses.dataclass(frozen=True)
class Terminology:
    """DICOM segment terminology (category, type, optional modifier and anatomic region)."""

    category: CodedConcept
    type: CodedConcept
    modifier: CodedConcept | None = None
    region: CodedConcept | None = None

    def to_slicer_entry(self, context: str = TERMINOLOGY_CONTEXT) -> str:
        """The string Slicer stores in a segment's ``TerminologyEntry`` tag.

        Layout (vtkSlicerTerminologiesModuleLogic): ``context~category~type~typeModifier~
        anatomicContext~region~regionModifier`` with codes as ``scheme^value^meaning``.
        """
        empty = "^^"
        return "~".join(
            [
                context,
                self.category.serialize(),
                self.type.serialize(),
                self.modifier.serialize() if self.modifier else empty,
                "Anatomic codes - DICOM master list",
                self.region.serialize() if self.region else empty,
                empty,
            ]
        )


@dataclasses.dataclass(frozen=True)
class Label:
    """One output label value with its name, display colour (RGB 0-255) and terminology."""

    value: int
    name: str
    color: tuple[int, int, int]
    terminology: Terminology | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.value <= 0:
            raise ValueError(f"label value must be > 0 (0 is background), got {self.value} for {self.name!r}")
        if len(self.color) != 3 or not all(0 <= c <= 255 for c in self.color):
            raise ValueError(f"label colour must be three values in 0..255, got {self.color} for {self.name!r}")


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One input of a task, addressed by its role (``--input ROLE=PATH``).

    ``aligned_with`` names another role whose voxel grid this input must share (a mask with its
    image); :func:`SlicerMedFuse.api.run_task` checks it before the task runs.
    """

    role: str
    title: str
    kind: InputKind = "image"
    modalities: tuple[str, ...] = ("any",)
    required: bool = True
    description: str = ""
    aligned_with: str | None = None


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """One output of a task. Image outputs land on the grid of ``reference_role``."""

    role: str
    title: str
    kind: OutputKind = "image"
    description: str = ""
    reference_role: str | None = None
    primary: bool = False


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    """A tunable parameter with its type, default and allowed values.

    ``parse`` turns command-line text into a value and ``validate`` checks any value; both raise
    :class:`UsageError` with a message that names the parameter and the allowed values.
    """

    name: str
    kind: ParameterKind
    default: Any
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    #: What a person reads for each of ``choices`` (same order), e.g. "Cubic B-spline" for "bspline";
    #: empty when the ids read well as they are.
    choice_labels: tuple[str, ...] = ()
    #: ``"read"`` or ``"write"`` for a "str" parameter naming a file (checked with the inputs and
    #: outputs before any work: never written onto an input, never read from an output).
    file: FileUse = ""

    def __post_init__(self) -> None:
        if self.file and self.kind != "str":
            raise ValueError(f"parameter {self.name!r} names a file, so its kind must be 'str', not {self.kind!r}")
        if self.choice_labels and len(self.choice_labels) != len(self.choices):
            raise ValueError(
                f"parameter {self.name!r} has {len(self.choices)} choices but {len(self.choice_labels)} labels"
            )

    def choice_label(self, value: str) -> str:
        """The user-facing label of choice ``value`` (the value itself when none is declared)."""
        if self.choice_labels and value in self.choices:
            return self.choice_labels[self.choices.index(value)]
        return value

    def parse(self, text: str) -> Any:
        try:
            if self.kind == "float":
                value: Any = float(text)
            elif self.kind == "int":
                value = int(text)
            elif self.kind == "bool":
                lowered = text.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise ValueError(text)
                value = lowered in ("true", "1", "yes", "on")
            else:
                value = text
        except ValueError:
            raise UsageError(f"Parameter '{self.name}' needs a {self.kind} value; got {text!r}.") from None
        return self.validate(value)

    def validate(self, value: Any) -> Any:
        if value is None and self.default is None:
            return None
        if self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UsageError(f"Parameter '{self.name}' needs a number; got {value!r}.")
            value = float(value)
        elif self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise UsageError(f"Parameter '{self.name}' needs a whole number; got {value!r}.")
        elif self.kind == "bool":
            if not isinstance(value, bool):
                raise UsageError(f"Parameter '{self.name}' needs true or false; got {value!r}.")
        elif self.kind == "choice":
            if value not in self.choices:
                raise UsageError(f"Parameter '{self.name}' must be one of {', '.join(self.choices)}; got {value!r}.")
        elif not isinstance(value, str):
            raise UsageError(f"Parameter '{self.name}' needs text; got {value!r}.")
        if self.kind in ("float", "int"):
            if self.minimum is not None and value < self.minimum:
                raise UsageError(f"Parameter '{self.name}' must be at least {self.minimum}{self.unit}; got {value}.")
            if self.maximum is not None and value > self.maximum:
                raise UsageError(f"Parameter '{self.name}' must be at most {self.maximum}{self.unit}; got {value}.")
        return value

    def describe(self) -> str:
        allowed = ""
        if self.choices:
            allowed = f" [{'|'.join(self.choices)}]"
        elif self.minimum is not None or self.maximum is not None:
            allowed = (
                f" [{'' if self.minimum is None else self.minimum}..{'' if self.maximum is None else self.maximum}]"
            )
        return f"{self.name} ({self.kind}{allowed}, default {self.default!r}{' ' + self.unit if self.unit else ''})"


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """The full declaration of a task."""

    name: str
    title: str
    summary: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    parameters: tuple[ParameterSpec, ...] = ()
    labels: tuple[Label, ...] = ()
    references: tuple[str, ...] = ()
    needs_model: bool = False
    #: Bundle id (see ``medfuse models``) the task uses when the caller names none; None for a task without one.
    default_model: str | None = None

    def __post_init__(self) -> None:
        for kind, names in (
            ("input role", [i.role for i in self.inputs]),
            ("output role", [o.role for o in self.outputs]),
            ("parameter", [p.name for p in self.parameters]),
            ("label value", [lab.value for lab in self.labels]),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"task {self.name!r} declares a {kind} twice: {names}")
        if self.outputs and sum(o.primary for o in self.outputs) != 1:  # a task may write no images (report only)
            raise ValueError(f"task {self.name!r} must mark exactly one output as primary")
        roles = {i.role for i in self.inputs}
        for item in self.inputs:
            if item.aligned_with is not None and item.aligned_with not in roles:
                raise ValueError(
                    f"input {item.role!r} of task {self.name!r} is aligned_with unknown role {item.aligned_with!r}"
                )
        if self.default_model is not None and not self.needs_model:
            raise ValueError(f"task {self.name!r} names a default_model but does not declare needs_model")

    def input(self, role: str) -> InputSpec:
        for spec in self.inputs:
            if spec.role == role:
                return spec
        raise UsageError(
            f"Task '{self.name}' has no input '{role}'; its inputs are {', '.join(i.role for i in self.inputs)}."
        )

    def output(self, role: str) -> OutputSpec:
        for spec in self.outputs:
            if spec.role == role:
                return spec
        raise UsageError(
            f"Task '{self.name}' has no output '{role}'; its outputs are {', '.join(o.role for o in self.outputs)}."
        )

    @property
    def primary_output(self) -> OutputSpec:
        """The output a bare ``--output PATH`` names (UsageError for a task that writes no images)."""
        for spec in self.outputs:
            if spec.primary:
                return spec
        raise UsageError(
            f"Task '{self.name}' writes no images (its result is in the report); drop --output, use --report PATH."
        )

    def parameter(self, name: str) -> ParameterSpec:
        for spec in self.parameters:
            if spec.name == name:
                return spec
        known = ", ".join(p.name for p in self.parameters) or "none"
        raise UsageError(f"Task '{self.name}' has no parameter '{name}'; its parameters are {known}.")

    def resolve_parameters(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given`` (values or command-line strings), each validated."""
        values = {p.name: p.default for p in self.parameters}
        for name, value in given.items():
            spec = self.parameter(name)
            values[name] = spec.parse(value) if isinstance(value, str) and spec.kind != "str" else spec.validate(value)
        return values

    def check_roles(self, roles: Sequence[str]) -> None:
        """Raise UsageError for unknown roles or missing required ones."""
        for role in roles:
            self.input(role)
        missing = [i.role for i in self.inputs if i.required and i.role not in roles]
        if missing:
            raise UsageError(
                f"Task '{self.name}' needs input {', '.join(missing)}; give it as --input {missing[0]}=PATH."
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (``medfuse tasks --json``; read by the Slicer panels)."""
        return dataclasses.asdict(self)
