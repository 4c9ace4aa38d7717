"""User registration presets: JSON files in the user's settings folder, never in the installation.

A user preset holds a value for every registration parameter (so a later retuning of the
built-in presets does not change what the user saved), the built-in preset it started from
(``base``) and a description. The file format is the backend's own user-preset format
(:func:`SlicerMedFuse.registration.presets.load_preset` reads it), so a saved preset also works on
the command line: ``medfuse run registration ... --param preset=/path/to/name.json``.

Inside Slicer the folder is ``MedFuse/RegistrationPresets`` next to Slicer's user settings file
(``slicer.app.slicerUserSettingsFilePath``), so presets survive extension updates and reinstalls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from SlicerMedFuse.facade import REGISTRATION_PARAMETERS as PARAMETERS
from SlicerMedFuse.facade import REGISTRATION_PRESETS as PRESETS
from SlicerMedFuse.facade import MedFuseError, load_preset, settings_from_parameters, write_json_atomic

__all__ = ["PRESET_FOLDER_NAME", "UserPresetStore", "listValue"]

#: The folder, relative to the user's settings directory, that holds the presets.
PRESET_FOLDER_NAME = Path("MedFuse") / "RegistrationPresets"
_SUFFIX = ".json"
#: Names become file names: letters, digits, space, dot, dash and underscore; at most 64 characters.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")


def listValue(name: str, value: Any) -> Any:
    """A list parameter (``ints``/``floats``) as a list of numbers; other values unchanged.

    ``"100, 60,30"`` and ``(100, 60, 30)`` both become ``[100, 60, 30]``.

    Raises:
        ValueError: the text is not a comma-separated list of numbers (one sentence).
    """
    info = PARAMETERS.get(name)
    if info is None or info.kind not in ("ints", "floats"):
        return value
    items = value.replace(" ", "").split(",") if isinstance(value, str) else list(value)
    kind = int if info.kind == "ints" else float
    try:
        return [kind(item) for item in items if item != ""]
    except (TypeError, ValueError):
        raise ValueError(f"'{name}' needs comma-separated numbers such as 100,60,30; got {value!r}.") from None


class UserPresetStore:
    """The user's registration presets, one ``<name>.json`` per preset in ``folder``.

    Args:
        folder: where presets are kept (created on the first save).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def names(self) -> list[str]:
        """Saved preset names, sorted case-insensitively."""
        if not self.folder.is_dir():
            return []
        return sorted((path.stem for path in self.folder.glob(f"*{_SUFFIX}") if path.is_file()), key=str.lower)

    def path(self, name: str) -> Path:
        """The file of preset ``name`` (whether or not it exists)."""
        return self.folder / f"{self._checkedName(name)}{_SUFFIX}"

    def load(self, name: str) -> dict[str, Any]:
        """Every parameter value of a saved preset.

        Raises:
            ValueError: no such preset, or the file is not a valid preset (one sentence).
        """
        path = self.path(name)
        if not path.is_file():
            raise ValueError(f"There is no saved registration preset '{name}' in {self.folder}.")
        try:
            return load_preset(path)
        except MedFuseError as error:
            raise ValueError(error.message) from None

    def save(self, name: str, values: Mapping[str, Any], *, base: str, description: str = "") -> Path:
        """Save ``values`` (on top of built-in preset ``base``) as preset ``name``; replaces a preset of that name.

        Returns:
            The preset file.

        Raises:
            ValueError: a bad name (built-in, empty, characters a file name cannot hold), an
                unknown parameter, or values the registration would refuse (one sentence).
        """
        path = self.path(name)
        if base not in PRESETS:
            raise ValueError(f"The base preset must be one of {', '.join(PRESETS)}; got {base!r}.")
        unknown = sorted(set(values) - set(PARAMETERS))
        if unknown:
            raise ValueError(f"Unknown registration parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMETERS)}.")
        full = load_preset(base)
        full.update({key: listValue(key, value) for key, value in values.items()})
        try:
            settings_from_parameters(full)  # the backend's own check, so a saved preset always runs
        except MedFuseError as error:
            raise ValueError(error.message) from None
        document = {"description": description, "base": base, **{key: full[key] for key in PARAMETERS}}
        self.folder.mkdir(parents=True, exist_ok=True)
        return write_json_atomic(document, path)

    def delete(self, name: str) -> None:
        """Remove a saved preset (nothing happens when there is none)."""
        self.path(name).unlink(missing_ok=True)

    @staticmethod
    def _checkedName(name: str) -> str:
        name = (name or "").strip()
        if name in PRESETS:
            raise ValueError(f"'{name}' is a built-in preset; choose another name for your preset.")
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"Preset name {name!r} is not usable as a file name; use up to 64 letters, digits, spaces, dots, "
                "dashes or underscores, starting with a letter or digit."
            )
        return name
