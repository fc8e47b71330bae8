"""Crash and resume of a semi-supervised run on two shuffled streams (Eq. 7): the labeled and the unlabeled set
both stream from parquet with a shuffle buffer, and both are shorter than the run, so each has wrapped around
(pass 1, mid-pass) when the run is SIGKILLed after its checkpoint at step 5 (deterministically: the run waits to be
killed, tests/_helpers.py PAUSE_AFTER_SAVE). Resumed from that checkpoint, the final weights and metrics equal an
uninterrupted run's bitwise (same CPU, one thread, restored RNG)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from _helpers import PAUSE_AFTER_SAVE
from hf_audio_cr.data import write_audioset_parquet

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
KILL_STEP, MAX_STEPS = 5, 8


def write_streams(folder):
    audio = ROOT / "tests" / "fixtures" / "audio"
    recordings = [sf.read(audio / name) for name in ("robin.ogg", "trumpet.ogg", "speech_female.ogg")]
    labels = [["/m/015p6"], ["/m/07gql"], ["/m/09x0r"]]
    # 5 labeled clips: batches of 2 -> 3 batches per pass; 7 unlabeled: batches of 2 -> 3 full ones per pass
    labeled = [{"video_id": f"l{i}", "audio": recordings[i % 3], "labels": labels[i % 3]} for i in range(5)]
    unlabeled = [{"video_id": f"u{i}", "audio": recordings[(i + 1) % 3], "labels": []} for i in range(7)]
    return (str(write_audioset_parquet(labeled, folder / "labeled.parquet", 16000, "PCM_16")),
            str(write_audioset_parquet(unlabeled, folder / "unlabeled.parquet", 16000, "PCM_16")))


def command(output_dir, labeled, unlabeled, *extra):
    return ["scripts/train_cr_audiomae.py", "configs/cr_audiomae/tiny_smoke.yaml", "--streaming", "true",
            "--train_files", labeled, "--eval_files", labeled, "--unlabeled_files", unlabeled,
            "--unlabeled_ratio", "1", "--shuffle_buffer_size", "4", "--max_steps", str(MAX_STEPS),
            "--save_steps", str(KILL_STEP), "--output_dir", str(output_dir), *extra]


def run(args, log):
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=ENV, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def finish(process, log):
    assert process.wait(timeout=300) == 0, Path(log).read_text()[-3000:]


@pytest.mark.slow  # three real training runs, one killed
def test_semi_supervised_streams_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    labeled, unlabeled = write_streams(tmp_path)
    reference_dir, crashed_dir, marker = tmp_path / "reference", tmp_path / "crashed", tmp_path / "saved"
    reference = run(command(reference_dir, labeled, unlabeled), tmp_path / "reference.log")
    crashed = run(["-c", PAUSE_AFTER_SAVE, str(marker), str(KILL_STEP), *command(crashed_dir, labeled, unlabeled)],
                  tmp_path / "crashed.log")
    deadline = time.monotonic() + 240
    while not marker.is_file() and crashed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.is_file(), (tmp_path / "crashed.log").read_text()[-3000:]
    crashed.send_signal(signal.SIGKILL)
    assert crashed.wait(timeout=60) == -signal.SIGKILL
    checkpoint = crashed_dir / f"checkpoint-{KILL_STEP}"
    # both streams had wrapped: pass 1, two batches into it (3 batches per pass)
    assert json.loads((checkpoint / "stream_state_0.json").read_text()) == {
        "train": {"epoch": 1, "batches": 2}, "unlabeled": {"epoch": 1, "batches": 2}}

    resumed = run(command(crashed_dir, labeled, unlabeled, "--resume_from_checkpoint", "last"), tmp_path / "resumed.log")
    finish(resumed, tmp_path / "resumed.log")
    finish(reference, tmp_path / "reference.log")
    assert (tmp_path / "resumed.log").read_text().count("'unlabeled_cr_loss'") == MAX_STEPS - KILL_STEP

    reference, resumed = (load_file(folder / "model.safetensors") for folder in (reference_dir, crashed_dir))
    assert reference.keys() == resumed.keys()
    differ = [name for name, value in reference.items() if not torch.equal(resumed[name], value)]
    assert not differ, f"differ after resume: {differ}"
    scores = ("eval_loss", "eval_mAP", "eval_mAUC")
    reference_metrics, resumed_metrics = (json.loads((folder / "eval_results.json").read_text())
                                          for folder in (reference_dir, crashed_dir))
    assert {k: resumed_metrics[k] for k in scores} == {k: reference_metrics[k] for k in scores}
    # the first five steps' logs too: the checkpoint it resumed from is the uninterrupted run's step 5
    reference_log, crashed_log = (json.loads((folder / "trainer_state.json").read_text())["log_history"]
                                  for folder in (reference_dir / f"checkpoint-{KILL_STEP}", checkpoint))
    assert crashed_log == reference_log
