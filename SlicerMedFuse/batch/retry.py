"""The outcome of a case whose attempts were all spent on errors that were not its input's fault."""

from __future__ import annotations

from SlicerMedFuse.batch.case_record import CaseOutcome

__all__ = ["attempts_failed"]


def attempts_failed(case_id: str, error: BaseException, attempts: int | None = None) -> CaseOutcome:
    """A ``failed`` outcome naming the last error and the number of attempts.

    Args:
        case_id: the case.
        error: the last attempt's exception (a bug, a dead worker, a lost file system).
        attempts: how many attempts were made, when known.

    Returns:
        The outcome, whose error sentence says how to look closer.
    """
    detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
    reason = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    return CaseOutcome(
        case_id,
        "failed",
        f"Case '{case_id}' failed {f'{attempts} times' if attempts else 'on every attempt'} ({reason}); "
        "run it alone with 'medfuse --debug run' and report it.",
    )
