"""Package attributes imported on first use, so that importing a package stays cheap (no torch at import).

A package lists ``name -> "module.path"`` and gets the module-level ``__getattr__`` and ``__dir__``
(PEP 562) that import ``module.path`` only when ``name`` is first read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, table: Mapping[str, str], eager: Callable[[], list[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose attributes ``table`` names.

    Args:
        package: the package's ``__name__`` (for the error message).
        table: attribute name -> the module that defines it.
        eager: the names the package defines itself (pass ``lambda: list(globals())``).

    Returns:
        ``(__getattr__, __dir__)`` to assign at the package's top level.
    """

    def getattr_(name: str) -> Any:
        if name in table:
            return getattr(importlib.import_module(table[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted({*eager(), *table})

    return getattr_, dir_
