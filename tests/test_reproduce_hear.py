"""scripts/reproduce_hear.py --quick end to end, as a user runs it: real subprocess, the Debian recordings and the
shipped FSDD copy; stand-in teacher -> tokenizer -> masked acoustic modeling -> the four Table IV settings on both
FSDD tasks in both label regimes -> results.json, table, plot, Hub folder read by pipeline() in a fresh process."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from hf_audio_cr.experiments.hear_study import (
    SETTINGS,
    TASKS,
    HEARStudyArguments,
    _reusable,
    choose_on_validation,
    summarize,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("reproduce_hear")
    result = subprocess.run(
        [sys.executable, "scripts/reproduce_hear.py", "--quick", "--output_dir", str(output)],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return output, json.loads((output / "results.json").read_text()), result.stdout


@pytest.mark.slow  # scripts/reproduce_hear.py --quick
def test_quick_run_measures_every_setting_task_and_regime(quick_run):
    output, report, stdout = quick_run
    cells = {(r["regime"], r["task"], r["variant"]) for r in report["summary"]}
    assert cells == {(g, t, v) for g in ("full", "low_label") for t in TASKS for v in SETTINGS}
    for row in report["summary"]:
        assert row["seeds"] == 2 and len(row["test_accuracy"]) == 2
        assert all(0.0 <= a <= 1.0 for a in row["test_accuracy"])
        assert ("diff_vs_scratch" in row) == (row["variant"] != "scratch")
        assert row["trainable_params"] < row["params"] if row["variant"] == "transfer" else row["trainable_params"] == row["params"]
    # every final run scored the test split once; of the lr grid (per label regime) only the run at the chosen lr
    # (the final seed-0 run of its cell) did
    assert all("test_accuracy" in r for r in report["final_runs"])
    scored = [r for r in report["grid_runs"] if "test_accuracy" in r]
    assert len(scored) == 2 * len(TASKS) * len(SETTINGS) and {r["regime"] for r in scored} == {"full", "low_label"}
    assert all(r["learning_rate"] == report["chosen_learning_rates"][f"{r['regime']}/{r['task']}/{r['variant']}"] for r in scored)
    assert len(report["final_runs"]) == 2 * len(TASKS) * len(SETTINGS) * 2
    low = [r for r in report["final_runs"] if r["regime"] == "low_label"]
    full = [r for r in report["final_runs"] if r["regime"] == "full"]
    assert {r["train_clips"] for r in low} == {60} and {r["train_clips"] for r in full} == {120}
    # the pool: Debian recordings + FSDD train audio, described with its length
    assert report["pool"]["sources"]["fsdd-train"]["clips"] == 120 and report["pool"]["minutes"] > 0
    usage = report["tokenizer"]["fsdd_usage"]
    assert 1 <= usage["codes_used"] <= usage["codebook_size"] == 64 and 1.0 <= usage["perplexity"] <= 64
    assert 1 / 64 <= usage["mean_max_probability"] <= 1.0
    # stage 1 ran with the study's diversity rule (0.05 V) and annealed tau 2.0 -> 0.5 by half of its 8 steps
    assert report["tokenizer"]["arguments"]["diversity_weight"] == pytest.approx(0.05 * 64)
    assert report["tokenizer"]["final_gumbel_temperature"] == pytest.approx(0.5)
    assert "codebook usage" in stdout
    table = (output / "table.md").read_text()
    assert table.count("\n") == 2 + 16 and "Δ vs Scratch" in table
    with Image.open(output / "hear_fsdd_table4.png") as image:
        assert image.format == "PNG" and image.size[0] > 500


@pytest.mark.slow  # scripts/reproduce_hear.py --quick
def test_quick_run_publishes_a_folder_pipeline_reads_in_a_fresh_process(quick_run):
    output, report, _ = quick_run
    published = report["published"]
    card = (Path(published["folder"]) / "README.md").read_text()
    assert "model-index" in card and f"{published['test_accuracy']:.4f}".rstrip("0") in card
    tags = published["fresh_process_pipeline"]
    assert tags["hf_audio_cr_imported"] is False and tags["model_class"] == "HEARForAudioClassification"
    assert [t["label"] for t in tags["tags"]] and {t["label"] for t in tags["tags"]} <= {str(d) for d in range(10)}


def test_summarize_difference_and_standard_error():
    runs = [{"regime": "full", "task": "digit", "variant": v, "test_accuracy": a, "validation_accuracy": a,
             "learning_rate": 1e-3, "train_clips": 10, "params": 5, "trainable_params": 5, "train_seconds": 1.0}
            for v, accs in (("full", (0.9, 0.8, 0.7)), ("scratch", (0.5, 0.6, 0.7))) for a in accs]
    rows = {r["variant"]: r for r in summarize(runs)}
    assert rows["full"]["mean"] == pytest.approx(0.8) and rows["full"]["std"] == pytest.approx(0.1)
    assert rows["full"]["diff_vs_scratch"] == pytest.approx(0.2)
    assert rows["full"]["diff_se"] == pytest.approx(math.sqrt(0.01 / 3 + 0.01 / 3))


def test_choose_on_validation_picks_lr_per_cell_by_validation_never_test():
    def run(regime, lr, validation, test):
        return {"regime": regime, "task": "digit", "variant": "full", "learning_rate": lr,
                "validation_accuracy": validation, "test_accuracy": test}

    grid = [run("full", 5e-4, 0.90, 0.99), run("full", 2e-3, 0.95, 0.50),
            run("low_label", 5e-4, 0.70, 0.10), run("low_label", 2e-3, 0.70, 0.90)]
    chosen = choose_on_validation(grid)
    assert chosen[("full", "digit", "full")]["learning_rate"] == 2e-3  # higher validation, lower test
    assert chosen[("low_label", "digit", "full")]["learning_rate"] == 5e-4  # tie -> smaller lr, test ignored


def test_a_finished_stage_is_reused_only_with_the_same_arguments(tmp_path):
    args = HEARStudyArguments(output_dir=str(tmp_path))
    from hf_audio_cr.experiments.hear_study import TOKENIZER_ARGUMENTS, stage_arguments

    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer" / "config.json").write_text("{}")
    summary = tmp_path / "tokenizer_summary.json"
    summary.write_text(json.dumps({"arguments": stage_arguments(args, TOKENIZER_ARGUMENTS)}))
    assert _reusable(summary, tmp_path / "tokenizer", stage_arguments(args, TOKENIZER_ARGUMENTS))
    other = HEARStudyArguments(output_dir=str(tmp_path), diversity_weight=0.1)
    assert not _reusable(summary, tmp_path / "tokenizer", stage_arguments(other, TOKENIZER_ARGUMENTS))
    summary.write_text("{}")  # written before arguments were stored: retrain
    assert not _reusable(summary, tmp_path / "tokenizer", stage_arguments(args, TOKENIZER_ARGUMENTS))
