"""scripts/bench_soak_pipeline.py at a small --num_files, as a user runs it: a real subprocess from the repo
root; every damaged kind is counted and refused by name, real files are scored, nothing crashes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the soak benchmark script in a subprocess

ROOT = Path(__file__).resolve().parents[1]


def test_soak_script_counts_scored_refused_and_crashes(tmp_path):
    out = tmp_path / "soak.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "scripts/bench_soak_pipeline.py", "--num_files", "30", "--damaged_fraction", "0.5",
         "--output_json", str(out)], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert "total" in result.stdout and "drift" in result.stdout
    assert report["files"] == 30 == report["scored"] + report["refused"] + report["crash"]
    assert report["crash"] == 0, report["crashes"]
    kinds = report["by_kind"]
    assert set(kinds) == {"real", "truncated", "zero_byte", "wrong_extension", "nan", "one_sample"}
    for kind in ("truncated", "zero_byte", "nan", "one_sample"):  # unusable: refused with the file named
        assert kinds[kind]["refused"] == sum(kinds[kind].values()) > 0, kind
    assert kinds["real"]["scored"] == sum(kinds["real"].values()) > 0
    assert kinds["wrong_extension"]["scored"] > 0  # decoded by content, not by name
    assert report["pipeline"].startswith("transformers_modules")  # the folder's own pipeline class
    assert report["peak_rss_mib"] > 0 and report["drift_window_files"] == 15
