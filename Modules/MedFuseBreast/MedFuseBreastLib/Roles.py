"""Which breast MRI sequence a volume is, guessed from its series description or name.

:func:`roleOfDescription` and :func:`assignRoles` are pure (text in, roles out) so the panel's
auto-assignment is tested without a scene. The rules follow how breast DCE protocols name their
series: ``T1C``, ``post``, ``DCE``, ``dynamic``, ``+C``, ``Gd`` for the contrast-enhanced T1 (the master
sequence), ``T2``, ``STIR``, ``TIRM`` for the T2-weighted assistant, ``pre``, ``native``,
``non-contrast`` for the pre-contrast T1. Pre-contrast words win over contrast words, so
"T1 pre-contrast" and "DCE pre" are the pre-contrast and not the T1C.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["ROLES", "ROLE_TITLES", "assignRoles", "roleOfDescription"]

#: The breast-mass task's input roles, master first.
ROLES = ("t1c", "t2w", "pre")
#: How the panel names each role.
ROLE_TITLES = {"t1c": "T1C (post-contrast)", "t2w": "T2W", "pre": "pre-contrast T1"}

# Checked in this order: the first role whose pattern matches wins. Separators (_ - . /) are
# spaces by then, so the patterns can use word boundaries.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("pre", re.compile(r"\b(pre|precontrast|pre contrast|native|nativ|non contrast|noncontrast|without contrast)\b")),
    ("t2w", re.compile(r"\b(t2|t2w|t2 w|t2fs|t2 fs|t2 tse|tse t2|stir|tirm)\b")),
    (
        "t1c",
        re.compile(
            r"\b(t1c|t1ce|t1 ce|t1 c|post|postcontrast|post contrast|dce|dyn|dynamic|gd|gad|gado\w*|vibrant|thrive|ethrive)\b|\+ ?c\b"
        ),
    ),
)
_SEPARATORS = re.compile(r"[_\-./\\:,;()\[\]]+")


def roleOfDescription(text: str) -> str | None:
    """The role a series description or node name suggests (``t1c``, ``t2w``, ``pre``), or None.

    Examples: ``"Ax T1 FS +C"`` -> ``t1c``; ``"DCE_post_2"`` -> ``t1c``; ``"t2_tse_fs"`` -> ``t2w``;
    ``"STIR"`` -> ``t2w``; ``"T1 pre-contrast"`` -> ``pre``; ``"native T1"`` -> ``pre``; ``"CT head"`` -> None.
    """
    normalised = _SEPARATORS.sub(" ", text.lower())
    for role, pattern in _PATTERNS:
        if pattern.search(normalised):
            return role
    return None


def assignRoles(candidates: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Give each role at most one candidate: the first whose description suggests that role.

    Args:
        candidates: ``(key, description)`` pairs in the order to prefer them, e.g. node IDs with
            their series descriptions or names. A key is used for one role at most.

    Returns:
        role -> key for the roles some candidate suggested (roles without one are absent).
    """
    assigned: dict[str, str] = {}
    for key, description in candidates:
        role = roleOfDescription(description)
        if role is not None and role not in assigned and key not in assigned.values():
            assigned[role] = key
    return assigned
