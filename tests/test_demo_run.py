"""`make demo` end to end at toy size: embedded data -> baseline and CR runs -> table, plots, JSON ->
Hub-ready folder -> tagging a real recording in a fresh process through remote code and `pipeline`."""
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from _helpers import copy_checkout
from hf_audio_cr.demo import DemoArguments, run_demo

pytestmark = pytest.mark.slow  # make demo end to end (toy size, then --quick from a fresh clone)

SPEECH = Path(__file__).parent / "fixtures" / "audio" / "speech_female.ogg"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    args = DemoArguments(
        output_dir=str(out), train_scenes=4, validation_scenes=3, test_scenes=3, max_steps=2, eval_steps=2,
        batch_size=2, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_threads=1,
        tag_audio=[str(SPEECH)])
    return run_demo(args), out


def test_both_methods_are_trained_with_the_same_budget_and_tabulated(report):
    result, out = report
    runs = {r["method"]: r for r in result["runs"]}
    assert set(runs) == {"baseline", "cr"}
    assert runs["baseline"]["global_step"] == runs["cr"]["global_step"] == 2
    assert all(0.0 <= r["test_mAP"] <= 1.0 and 0.0 <= r["best_val_mAP"] <= 1.0 for r in runs.values())
    assert "| baseline (λ=0) | 1 |" in result["table"] and "| CR (λ=2, 2 views) | 1 |" in result["table"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["summary"]["cr"]["test_mAP_mean"] == pytest.approx(runs["cr"]["test_mAP"])
    # The baseline really trained without the consistency term, the CR run with it.
    history = {m: [h for h in json.loads((Path(runs[m]["model_dir"]).parent / "checkpoint-2" / "trainer_state.json")
                                         .read_text())["log_history"] if "bce_loss" in h] for m in runs}
    assert history["baseline"][-1]["loss"] == pytest.approx(history["baseline"][-1]["bce_loss"], rel=1e-3)
    assert history["cr"][-1]["loss"] > history["cr"][-1]["bce_loss"]


def test_plots_are_images_with_content(report):
    result, _ = report
    assert set(result["plots"]) and all(Path(p).suffix == ".png" for p in result["plots"].values())
    for path in result["plots"].values():
        image = matplotlib.image.imread(path)  # what an image viewer decodes
        height, width = image.shape[:2]
        assert image.ndim == 3 and 200 <= height <= 4000 and 200 <= width <= 6000, (path, image.shape)
        rgb = image[..., :3]
        # drawn curves/bars, not a blank canvas: many distinct colours and ink on a good share of the pixels
        assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 20, path
        assert (rgb.std(axis=-1) > 0.05).mean() > 0.005 or (rgb.mean(axis=-1) < 0.5).mean() > 0.005, path


def test_selected_model_is_a_hub_ready_folder_with_the_measured_map(report):
    result, _ = report
    folder = Path(result["selected_model"]["folder"])
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md",
            "modeling_cr_audiomae.py", "configuration_cr_audiomae.py"} <= names
    assert "AutoModelForAudioClassification" in json.loads((folder / "config.json").read_text())["auto_map"]
    best = max(result["runs"], key=lambda r: r["best_val_mAP"])
    assert result["selected_model"]["method"] == best["method"]
    card = (folder / "README.md").read_text()
    assert f"{round(best['test_mAP'], 4)}" in card and "embedded demo set" in card


def test_tagging_ran_in_a_fresh_process_from_remote_code(report):
    result, _ = report
    (tagged,) = result["tagging"]
    assert tagged["audio"] == str(SPEECH)
    assert tagged["hf_audio_cr_imported"] is False and tagged["model_module"].startswith("transformers_modules")
    assert len(tagged["tags"]) == 5 and all(0.0 < t["score"] < 1.0 for t in tagged["tags"])  # sigmoid scores


def test_make_demo_quick_from_a_fresh_clone_with_the_default_relative_output_dir(tmp_path):
    """The README's first command, as a new user runs it: `make demo` (here with --quick and the install step
    taken as done) from the root of a fresh copy of the repo, so the output goes to the default relative
    `demo_output/`; the run must end with the tagging lines printed by the fresh-process step."""
    clone = copy_checkout(tmp_path / "hf_audio_cr")
    env = {**os.environ, "PYTHONPATH": str(clone), "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(["make", "-o", "install", "demo", f"PY={sys.executable}", "DEMO_ARGS=--quick"],
                            cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    assert f"{sys.executable} scripts/demo.py --quick" in result.stdout  # the Makefile's own recipe ran
    tagging = [line for line in result.stdout.splitlines() if line.startswith("Top tags for ")]
    assert len(tagging) == 2 and tagging[0].startswith("Top tags for speech_female.ogg ")
    for line in tagging:
        assert "(fresh process, CRAudioMAEForAudioClassification from remote code): " in line
        assert len(line.split("remote code): ")[1].split(", ")) == 5  # top-5 tags with scores
    report = json.loads((clone / "demo_output" / "metrics.json").read_text())
    assert report["selected_model"]["folder"] == "demo_output/model"  # the relative path a user gave
    assert all(t["hf_audio_cr_imported"] is False for t in report["tagging"])
    assert (clone / "demo_output" / "model" / "model.safetensors").is_file()
