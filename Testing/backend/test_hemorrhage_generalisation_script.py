"""The generalisation benchmark script end to end on the tiny dataset: a measured predictor child per
model and dataset, Dice on bleed cases, false-positive mL on bleed-free cases, and the tables."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from .hemorrhage_data import tiny_bundle, tiny_dataset

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "hemorrhage" / "generalisation.py"


@pytest.fixture(scope="module")
def generalisation():
    spec = importlib.util.spec_from_file_location("generalisation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_model_on_one_dataset_is_measured_scored_and_tabled(
    generalisation, tmp_path_factory, shared_data, tmp_path: Path
) -> None:
    bundle = tiny_bundle(tmp_path_factory, shared_data)
    data = tiny_dataset(tmp_path_factory, shared_data)
    runs = generalisation.run_predictions(tmp_path, {"tiny": bundle}, {"own": data}, threads=1)
    run = runs["tiny/own"]
    assert run["peak_method"] == "VmHWM" and run["peak_rss_mib"] > 50 and run["returncode"] == 0
    cases = generalisation.test_cases(data)
    assert set(run["timings"]["seconds_per_case"]) == {c["case"] for c in cases}
    scores = generalisation.score(tmp_path / "pred" / "tiny" / "own", data)
    assert scores["bleed_cases"] == sum(c["bleed"] for c in cases) and scores["free_cases"] == 1
    assert scores["fp_ml_total"]["median"] >= 0
    again = generalisation.run_predictions(tmp_path, {"tiny": bundle}, {"own": data}, threads=1)
    assert again["tiny/own"]["measured_at"] == run["measured_at"]  # a recorded run is reused, not repeated
    summary = {
        "models": {"tiny": str(bundle)},
        "datasets": {"own": "tiny"},
        "sweep_cases": [],
        "scores": {"tiny/own": scores},
        "runs": runs,
        "blast": {},
        "large": {},
    }
    table = generalisation.markdown(summary)
    assert "| tiny |" in table and "Mean Dice" in table and "child peak MiB" in table
    json.dumps(summary, default=str)
