"""scripts/device_check.sh, the one prepared GPU check, run here as it runs on a lent device but on CPU with tiny
settings (--device cpu --quick): every step runs, and the one JSON holds each step's result and the summary."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # scripts/device_check.sh --quick
def test_device_check_writes_one_json_with_every_step(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path)}
    result = subprocess.run(["bash", "scripts/device_check.sh", "--device", "cpu", "--quick"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert report["device"] == "cpu" and report["quick"] and report["summary"]["all_ok"]
    assert set(report["steps"]) == {"fbank", "cr_step", "efficiency"}
    fbank = report["steps"]["fbank"]["result"]
    assert fbank["max_abs_diff"] < 1e-3 and all(row["clips_per_s"] > 0 for row in fbank["rows"])
    views = {r["num_views"]: r for r in report["steps"]["cr_step"]["result"]["results"]}
    assert set(views) == {1, 2, 6} and views[1]["ratio_to_k_baseline_steps"] == 1.0
    assert {"hear", "cr_audiomae"} <= set(report["summary"]["efficiency_rtf"])
    assert (tmp_path / "parts" / "efficiency" / "results.md").is_file()


def test_device_check_refuses_an_unknown_argument():
    result = subprocess.run(["bash", "scripts/device_check.sh", "--gpus", "2"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "unknown argument --gpus" in result.stderr
