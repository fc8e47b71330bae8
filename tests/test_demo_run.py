"""`make demo` end to end, as the README's first command, at toy size (`--quick`): embedded data -> pretrained
encoder -> baseline and CR runs over two seeds -> table with the paired difference ± SE and the plain statement,
plots, JSON -> Hub-ready folder -> tagging real recordings in a fresh process through remote code and `pipeline`.

One run of the demo is shared by every test of this module (it is the slow part); each test checks one stage of
what it wrote."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from _helpers import copy_checkout
from hf_audio_cr.demo.run import DemoArguments, verdict


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`make demo` (here with --quick and the install step taken as done) from the root of a fresh copy of the
    repo, as a new user runs it, so the output goes to the default relative `demo_output/`."""
    clone = copy_checkout(tmp_path_factory.mktemp("clone") / "hf_audio_cr")
    env = {**os.environ, "PYTHONPATH": str(clone), "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(["make", "-o", "install", "demo", f"PY={sys.executable}", "DEMO_ARGS=--quick"],
                            cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    out = clone / "demo_output"
    return {"stdout": result.stdout, "clone": clone, "out": out, "report": json.loads((out / "metrics.json").read_text())}


def _history(clone: Path, model_dir: str) -> list:
    """The log history of a run's last checkpoint (the one Trainer kept besides the best)."""
    run_dir = clone / Path(model_dir).parent
    last = max(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return json.loads((last / "trainer_state.json").read_text())["log_history"]


@pytest.mark.slow  # shares the one `make demo --quick` run
def test_the_makefile_recipe_ran_with_the_default_relative_output_dir(demo):
    assert f"{sys.executable} scripts/demo.py --quick" in demo["stdout"]  # the Makefile's own recipe ran
    assert demo["report"]["selected_model"]["folder"] == "demo_output/model"  # the relative path a user gave
    assert (demo["out"] / "model" / "model.safetensors").is_file()


@pytest.mark.slow  # shares the one `make demo --quick` run
def test_both_methods_fine_tune_the_pretrained_encoder_with_the_same_budget_over_seeds(demo):
    report, clone = demo["report"], demo["clone"]
    pretrain = report["pretrain"]
    assert pretrain["method"] == "pretrain" and pretrain["init"] == "scratch" and pretrain["global_step"] == 4
    runs = report["runs"]
    assert sorted((r["method"], r["seed"]) for r in runs) == [("baseline", 0), ("baseline", 1), ("cr", 0), ("cr", 1)]
    assert all(r["global_step"] == 4 and r["init"] == pretrain["model_dir"] for r in runs)
    assert all(0.0 <= r["test_mAP"] <= 1.0 and 0.0 <= r["best_val_mAP"] <= 1.0 for r in runs)
    # The baseline really trained without the consistency term, the CR run with it.
    for run in runs:
        last = [h for h in _history(clone, run["model_dir"]) if "bce_loss" in h][-1]
        if run["method"] == "baseline":
            assert last["loss"] == pytest.approx(last["bce_loss"], rel=1e-3)
        else:
            assert last["loss"] > last["bce_loss"]


@pytest.mark.slow  # shares the one `make demo --quick` run
def test_table_has_mean_std_and_the_paired_difference_with_its_standard_error_by_hand(demo):
    report = demo["report"]
    test = {(r["method"], r["seed"]): r["test_mAP"] for r in report["runs"]}
    d = np.array([test["cr", s] - test["baseline", s] for s in (0, 1)])
    diff = report["summary"]["cr - baseline"]["test"]
    assert diff["seeds"] == 2 and diff["mean"] == pytest.approx(d.mean())
    assert diff["se_paired"] == pytest.approx(d.std(ddof=1) / math.sqrt(2))
    base = np.array([test["baseline", s] for s in (0, 1)])
    assert report["summary"]["baseline"]["test_mAP_std"] == pytest.approx(base.std(ddof=1))
    table = report["table"]
    assert "| pretrained encoder (λ=0 on 8 other scenes) | 1 |" in table
    assert f"| baseline (λ=0, pretrained) | 2 | {base.mean():.4f} ± {base.std(ddof=1):.4f} |" in table
    assert f"| CR − baseline (paired by seed, ± SE) | 2 | {d.mean():+.4f} ± {d.std(ddof=1) / math.sqrt(2):.4f} |" in table
    # the table and the statement of what it shows and does not show are printed, and saved
    assert table in demo["stdout"]
    shows, setting, does_not = report["conclusion"]
    assert shows.startswith("Shows: ") and does_not.startswith("Does not show: ") and "paper's setting" in does_not
    assert all(line in demo["stdout"] for line in report["conclusion"])


def test_the_statement_follows_the_numbers():
    args = DemoArguments(quick=True)

    def summary(mean, se, seeds=3):
        return {"cr - baseline": {"test": {"mean": mean, "se_paired": se, "seeds": seeds}}}

    assert "CR does not beat the BCE baseline here: it scores 0.0130 ± 0.0030 test mAP lower (4.3 standard errors" \
        in verdict(summary(-0.013, 0.003), args, {"x": 1})[0]
    assert "CR scores 0.0200 ± 0.0050 test mAP above the BCE baseline (4.0" in verdict(summary(0.02, 0.005), args)[0]
    assert "are not separated: CR − baseline = +0.0050 ± 0.0050" in verdict(summary(0.005, 0.005), args)[0]
    assert "cannot tell the methods apart" in verdict(summary(0.01, None, 1), args)[0]
    assert "fine-tuned from an encoder" in verdict(summary(0.0, 0.1), args, {"x": 1})[1]
    assert "trained from scratch" in verdict(summary(0.0, 0.1), args, None)[1]


@pytest.mark.slow  # shares the one `make demo --quick` run
def test_plots_are_images_with_content(demo):
    assert demo["report"]["plots"]
    for path in demo["report"]["plots"].values():
        image = matplotlib.image.imread(demo["clone"] / path)  # what an image viewer decodes
        height, width = image.shape[:2]
        assert image.ndim == 3 and 200 <= height <= 4000 and 200 <= width <= 6000, (path, image.shape)
        rgb = image[..., :3]
        # drawn curves/bars, not a blank canvas: many distinct colours and ink on a good share of the pixels
        assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 20, path
        assert (rgb.std(axis=-1) > 0.05).mean() > 0.005 or (rgb.mean(axis=-1) < 0.5).mean() > 0.005, path


@pytest.mark.slow  # shares the one `make demo --quick` run
def test_selected_model_is_a_hub_ready_folder_with_the_measured_map(demo):
    report = demo["report"]
    folder = demo["clone"] / report["selected_model"]["folder"]
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md",
            "modeling_cr_audiomae.py", "configuration_cr_audiomae.py"} <= names
    assert "AutoModelForAudioClassification" in json.loads((folder / "config.json").read_text())["auto_map"]
    # chosen on validation among the baseline and CR runs (never on test)
    best = max(report["runs"], key=lambda r: r["best_val_mAP"])
    assert (report["selected_model"]["method"], report["selected_model"]["seed"]) == (best["method"], best["seed"])
    card = (folder / "README.md").read_text()
    assert f"{round(best['test_mAP'], 4)}" in card and "embedded demo set" in card
    # the saved extractor windows files at the training length (1.28 s scenes: 128 frames)
    assert json.loads((folder / "preprocessor_config.json").read_text())["max_length"] == 128


@pytest.mark.slow  # shares the one `make demo --quick` run
def test_tagging_ran_in_a_fresh_process_from_remote_code(demo):
    report = demo["report"]
    lines = [line for line in demo["stdout"].splitlines() if line.startswith("Top tags for ")]
    assert len(lines) == 2 and lines[0].startswith("Top tags for speech_female.ogg ")
    for line, tagged in zip(lines, report["tagging"]):  # the printed top-5 tags are the fresh process's answer
        top = ", ".join(f"{t['label']} {t['score']:.2f}" for t in tagged["tags"])
        assert line == f"Top tags for {Path(tagged['audio']).name} (fresh process, CRAudioMAEForAudioClassification " \
                       f"from remote code): {top}"
    speech, drum = report["tagging"]
    assert Path(speech["audio"]) == (demo["clone"] / "hf_audio_cr" / "demo" / "audio" / "speech_female.ogg").resolve()
    test_recordings = json.loads((demo["out"] / "data" / "metadata.json").read_text())["splits"]["test"]["source_recordings"]
    assert drum["audio"] in test_recordings and "/GMRockKit/" in drum["audio"]  # held out from training
    for tagged in (speech, drum):
        assert tagged["hf_audio_cr_imported"] is False and tagged["model_module"].startswith("transformers_modules")
        assert len(tagged["tags"]) == 5 and all(0.0 < t["score"] < 1.0 for t in tagged["tags"])  # sigmoid scores
