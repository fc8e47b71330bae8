"""Crash and resume: SIGKILL the real training script right after its second checkpoint (a callback pauses the run
there, so the kill never races the training), cut the newest checkpoint off mid-write, resume with
``--resume_from_checkpoint`` and get the same final weights and metrics as an uninterrupted run with the same seed
(bitwise: same CPU, one thread, restored RNG)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from _helpers import PAUSE_AFTER_SAVE
from hf_audio_cr import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification
from hf_audio_cr.data import audioset_id2label
from hf_audio_cr.training.checkpoints import (
    checkpoint_problems,
    last_complete_checkpoint,
    list_checkpoints,
    resolve_resume_checkpoint,
)

pytestmark = pytest.mark.slow  # real training scripts killed and resumed

ROOT = Path(__file__).resolve().parents[1]
# The smoke config: a tiny CR-AudioMAE, 2 views, lambda 2, on real fixture recordings; checkpoint every 2 steps.
COMMAND = [sys.executable, "scripts/train_cr_audiomae.py", "configs/cr_audiomae/tiny_smoke.yaml",
           "--max_steps", "12", "--save_steps", "2", "--logging_steps", "1"]
ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def launch(output_dir, *extra, log_name=None, pause_after_save=None):
    log = open(Path(str(output_dir) + ".log") if log_name is None else output_dir.parent / log_name, "w")
    return subprocess.Popen(paused([*COMMAND, "--output_dir", str(output_dir), *extra], pause_after_save), cwd=ROOT,
                            env=ENV, stdout=log, stderr=subprocess.STDOUT)


def paused(command, pause_after_save):
    """``command`` (``python script args``) as is, or, given ``(marker, step)``, run so that it stops for good
    once checkpoint-``step`` is saved, after writing ``marker`` (tests/_helpers.py PAUSE_AFTER_SAVE)."""
    if pause_after_save is None:
        return command
    marker, step = pause_after_save
    return [command[0], "-c", PAUSE_AFTER_SAVE, str(marker), str(step), *command[1:]]


def kill_when_paused(process, marker, log):
    """SIGKILL ``process`` once it has written ``marker`` (it then waits in the callback): a fixed crash point."""
    deadline = time.monotonic() + 300
    while not marker.is_file():
        assert process.poll() is None, f"the run ended before its crash point: {Path(log).read_text()[-3000:]}"
        assert time.monotonic() < deadline, "the run never reached its crash point"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL


def finish(process, log):
    assert process.wait(timeout=300) == 0, Path(log).read_text()[-3000:]


def save_initial_model(folder):
    """The smoke config's tiny model, seeded, so both runs start from the same weights."""
    torch.manual_seed(0)
    id2label = audioset_id2label("556")
    config = CRAudioMAEConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                              max_length=128, num_labels=len(id2label), id2label=id2label,
                              label2id={v: k for k, v in id2label.items()})
    CRAudioMAEForAudioClassification(config).save_pretrained(folder)
    AudioMAEFeatureExtractor(max_length=128).save_pretrained(folder)
    return str(folder)


def test_sigkill_after_second_checkpoint_then_resume_matches_uninterrupted_run(tmp_path):
    reference_dir, crashed_dir = tmp_path / "reference", tmp_path / "crashed"
    initial = ("--model_name_or_path", save_initial_model(tmp_path / "initial"))
    reference = launch(reference_dir, *initial)
    marker = tmp_path / "saved_checkpoint_4"  # the crash comes right after the second checkpoint is complete
    crashed = launch(crashed_dir, *initial, pause_after_save=(marker, 4))
    kill_when_paused(crashed, marker, str(crashed_dir) + ".log")
    survivors = list_checkpoints(crashed_dir)
    assert [p.name for p in survivors] == ["checkpoint-2", "checkpoint-4"] and not checkpoint_problems(survivors[-1])

    # Make the newest checkpoint one that was cut off mid-write (as a kill during save leaves it).
    newest = survivors[-1]
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    assert checkpoint_problems(newest)
    resume = resolve_resume_checkpoint("last", crashed_dir)
    assert resume is not None and Path(resume).name != newest.name and not checkpoint_problems(resume)

    resumed = launch(crashed_dir, *initial, "--resume_from_checkpoint", resume, log_name="resumed.log")
    finish(resumed, tmp_path / "resumed.log")
    finish(reference, str(reference_dir) + ".log")
    # It really continued from the checkpoint: only the remaining steps were trained (one log line per step).
    assert (tmp_path / "resumed.log").read_text().count("'bce_loss'") == 12 - int(Path(resume).name.split("-")[1])

    resumed_weights = load_file(crashed_dir / "model.safetensors")
    reference_weights = load_file(reference_dir / "model.safetensors")
    assert resumed_weights.keys() == reference_weights.keys()
    for key, value in reference_weights.items():
        assert torch.equal(resumed_weights[key], value), f"{key} differs after resume"
    resumed_metrics = json.loads((crashed_dir / "eval_results.json").read_text())
    reference_metrics = json.loads((reference_dir / "eval_results.json").read_text())
    for key in ("eval_loss", "eval_mAP", "eval_mAUC"):
        assert resumed_metrics[key] == reference_metrics[key], key
    assert json.loads((crashed_dir / "checkpoint-12" / "trainer_state.json").read_text())["global_step"] == 12


# HEAR stage 1: the script resolves `--resume_from_checkpoint last` itself (newest *complete* checkpoint), seeds
# before it builds the model (one seed, one set of initial weights), and the Gumbel temperature, a persistent
# buffer annealed every step, must come back with the checkpoint.
HEAR_COMMAND = [sys.executable, "scripts/train_hear_tokenizer.py", "configs/hear/tiny_tokenizer.yaml",
                "--dataset", "tests/fixtures/audio", "--distillation_weight", "0", "--max_steps", "12",
                "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "1", "--seed", "0"]


def launch_hear(output_dir, log, *extra, pause_after_save=None):
    return subprocess.Popen(paused([*HEAR_COMMAND, "--output_dir", str(output_dir), *extra], pause_after_save),
                            cwd=ROOT, env=ENV, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def test_hear_tokenizer_sigkill_resume_last_matches_uninterrupted_run_bitwise(tmp_path):
    reference_dir, crashed_dir = tmp_path / "reference", tmp_path / "crashed"
    reference = launch_hear(reference_dir, tmp_path / "reference.log")
    marker = tmp_path / "saved_checkpoint_4"
    crashed = launch_hear(crashed_dir, tmp_path / "crashed.log", pause_after_save=(marker, 4))
    kill_when_paused(crashed, marker, tmp_path / "crashed.log")
    newest = list_checkpoints(crashed_dir)[-1]
    assert newest.name == "checkpoint-4" and not checkpoint_problems(newest)
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])

    finish(launch_hear(crashed_dir, tmp_path / "resumed.log", "--resume_from_checkpoint", "last"), tmp_path / "resumed.log")
    finish(reference, tmp_path / "reference.log")
    log = (tmp_path / "resumed.log").read_text()
    assert f"Skipping incomplete checkpoint {newest}" in log  # reported, then the previous one is used
    step = int(last_complete_checkpoint(crashed_dir, before=int(newest.name.split("-")[1]) - 1).split("-")[-1])
    assert log.count("'gumbel_temperature'") == 12 - step  # only the remaining steps were trained

    resumed = load_file(crashed_dir / "model.safetensors")
    reference_weights = load_file(reference_dir / "model.safetensors")
    assert resumed.keys() == reference_weights.keys()
    for key, value in reference_weights.items():
        assert torch.equal(resumed[key], value), f"{key} differs after resume"
    assert resumed["quantizer.temperature"].item() == reference_weights["quantizer.temperature"].item() < 2.0
