"""Fixtures shared by every test suite.

``shared_data`` is ``../shared/data`` beside the repository (real scans, never committed). On a
machine without it the tests that need it are skipped with a message; in CI (``CI`` set) its
absence is a failure, so a broken checkout cannot pass by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def require_shared_data() -> Path:
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    message = f"real sample data not found at {SHARED_DATA} (../shared/data beside the repository)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data (real scans)."""
    return require_shared_data()


@pytest.fixture(autouse=True)
def isolated_medfuse_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own MEDFUSE_HOME so no test reads or writes the user's ~/.medfuse."""
    home = tmp_path_factory.mktemp("medfuse-home")
    monkeypatch.setenv("MEDFUSE_HOME", str(home))
    monkeypatch.delenv("MEDFUSE_CATALOG", raising=False)
    return home


@pytest.fixture
def small_torch_work():
    """One torch thread while the test runs: small convolutions are faster so, above all on a busy 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
