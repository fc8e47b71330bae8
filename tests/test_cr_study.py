"""The CR study end to end (``scripts/reproduce_cr.py --quick`` as a user runs it) and its statistics by hand."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hf_audio_cr.experiments.cr_study import (
    COMPARISONS,
    FSDD_SETTINGS,
    PRETRAIN,
    SCENE_SETTINGS,
    StudyArguments,
    paired_difference,
    summarize,
)

REPO = Path(__file__).resolve().parents[1]


def test_paired_difference_by_hand():
    runs = [{"setting": "a", "seed": s, "test": v} for s, v in enumerate([0.50, 0.60, 0.55])]
    runs += [{"setting": "b", "seed": s, "test": v} for s, v in enumerate([0.40, 0.58, 0.50])]
    d = paired_difference(runs, "a", "b")
    # differences 0.10, 0.02, 0.05: mean 0.056667, sample std 0.040415, SE = std / sqrt(3) = 0.023333
    assert d["mean"] == pytest.approx(0.0566667, abs=1e-6)
    assert d["se_paired"] == pytest.approx(0.0233333, abs=1e-6)
    # unpaired: sqrt(var_a / 3 + var_b / 3) with sample variances 0.0025 and 0.016267 / 2 = 0.0081333
    assert d["se_welch"] == pytest.approx(math.sqrt(0.0025 / 3 + 0.0081333 / 3), abs=1e-6)
    assert paired_difference(runs, "a", "missing") is None


def test_bad_arguments_name_the_flag():
    with pytest.raises(ValueError, match="--tasks"):
        StudyArguments(tasks=["audioset"])
    with pytest.raises(ValueError, match="--settings"):
        StudyArguments(settings=["λ=7"])


@pytest.mark.slow  # scripts/reproduce_cr.py --quick
def test_quick_study_end_to_end(tmp_path):
    out = tmp_path / "study"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=str(REPO))
    command = [sys.executable, "scripts/reproduce_cr.py", "--quick", "--output_dir", str(out)]
    first = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads((out / "results.json").read_text())
    expected = {PRETRAIN, *SCENE_SETTINGS, *FSDD_SETTINGS}
    assert set(report["summary"]) == expected
    assert all(s["seeds"] == (1 if name == PRETRAIN else 2) for name, s in report["summary"].items())
    assert {(r["setting"], r["seed"]) for r in report["runs"]} == {(n, s) for n in expected for s in (0, 1)} - {(PRETRAIN, 1)}
    for run in report["runs"]:
        assert 0.0 <= run["test"] <= 1.0 and 0.0 <= run["best_val"] <= 1.0
        assert run["test_prob_std"] >= 0 and run["curves"] and "cr_loss" in run["curves"][-1]
        assert run["metric"] == ("accuracy" if run["task"] == "fsdd" else "mAP")
    assert [d["claim"] for d in report["differences"]] == [c[0] for c in COMPARISONS]
    assert all(d["test"]["se_paired"] is not None and d["test"]["seeds"] == 2 for d in report["differences"])
    assert report["selected_on_validation"]["scenes"] in SCENE_SETTINGS
    table = (out / "results.md").read_text()
    assert all(f"| {name} |" in table for name in expected) and "Table 1a" in table
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the FSDD runs are single-label: their consistency term is the softmax one (KL, 0 when views agree)
    assert summarize([r for r in report["runs"] if r["task"] == "fsdd"])
    # rerunning the same command reuses every finished run instead of training again
    lines = (out / "runs.jsonl").read_text().splitlines()
    second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (out / "runs.jsonl").read_text().splitlines() == lines
    assert "seed 0\n" not in second.stdout  # no run was started
    assert "fbank" not in second.stderr  # nor any feature computed: the tables are rebuilt from runs.jsonl
    assert (out / "results.md").read_text() == table
