"""`accelerate launch` with two CPU processes (gloo) on the tiny smoke config, as a real subprocess:
both processes train, one checkpoint is written, and `--resume_from_checkpoint` continues from it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # two accelerate processes (gloo)

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = [
    str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file", "configs/accelerate/cpu_2proc.yaml",
    "scripts/train_cr_audiomae.py", "configs/cr_audiomae/tiny_smoke.yaml",
]


def launch(*overrides):
    env = {
        **os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
        # one intra-op thread per rank on 2 shared cores; gloo on loopback
        "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo",
    }
    result = subprocess.run(
        LAUNCH + ["--log_level", "info", *overrides], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-5000:]}"
    return result.stdout + result.stderr


def test_two_cpu_processes_train_checkpoint_and_resume(tmp_path):
    out = tmp_path / "run"
    log = launch("--output_dir", str(out), "--max_steps", "2", "--save_steps", "2", "--eval_split", "")
    # two ranks: the global batch is 2 processes x 2 clips, so the 3 clips make one step per epoch
    assert "Total train batch size (w. parallel, distributed & accumulation) = 4" in log
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    first = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert first["global_step"] == 2 and first["log_history"][-1]["epoch"] == 2.0  # one process: 2 steps/epoch
    assert {"bce_loss", "cr_loss"} <= first["log_history"][0].keys()

    launch("--output_dir", str(out), "--max_steps", "4", "--save_steps", "2",
           "--resume_from_checkpoint", str(out / "checkpoint-2"))
    resumed = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    steps = [entry["step"] for entry in resumed["log_history"] if "loss" in entry]
    assert steps == [1, 2, 3, 4]  # steps 1-2 restored from the checkpoint, 3-4 trained after resuming
    assert resumed["log_history"][:2] == first["log_history"][:2]
    metrics = json.loads((out / "eval_results.json").read_text())
    assert metrics["eval_num_scored_classes"] <= 527 and 0.0 < metrics["eval_mAP"] <= 1.0
    assert metrics["train_bad_audio/clips_skipped"] == 0


def test_explicit_files_win_over_the_yaml_csv_and_bad_audio_counts_sum_over_ranks(tmp_path):
    import soundfile as sf

    from hf_audio_cr.data.audioset import write_audioset_parquet

    audio = ROOT / "tests" / "fixtures" / "audio"
    alsa = Path("/usr/share/sounds/alsa")
    train = write_audioset_parquet([
        {"video_id": "front_center", "audio": sf.read(alsa / "Front_Center.wav"), "labels": ["/m/09x0r"]},
        {"video_id": "noise", "audio": sf.read(alsa / "Noise.wav"), "labels": ["/m/096m7z"]},
        {"video_id": "robin", "audio": sf.read(audio / "robin.ogg"), "labels": ["/m/015p6"]},
        {"video_id": "broken", "audio": b"not a flac file", "labels": ["/m/09x0r"]},
    ], tmp_path / "train.parquet")
    evaluation = write_audioset_parquet([
        {"video_id": "trumpet", "audio": sf.read(audio / "trumpet.ogg"), "labels": ["/m/07gql"]},
        {"video_id": "rear_left", "audio": sf.read(alsa / "Rear_Left.wav"), "labels": ["/m/09x0r"]},
    ], tmp_path / "eval.parquet")
    out = tmp_path / "run"
    launch("--output_dir", str(out), "--max_steps", "2", "--save_strategy", "no",
           "--train_files", str(train), "--eval_files", str(evaluation))
    metrics = json.loads((out / "eval_results.json").read_text())
    # the user's files, not the YAML's segments CSV (3 readable clips of 5 classes): the broken clip is read once
    # per epoch (2 epochs of one step: 4 clips over 2 ranks x 2), on one rank or the other, and the two labels
    # of eval.parquet are scored
    assert metrics["eval_num_scored_classes"] == 2
    assert metrics["train_bad_audio/unreadable"] == 2
    # summed over both ranks: each rank checked 2 clips per step (rank 0 alone would report 4)
    assert metrics["train_bad_audio/clips_seen"] == 8
    assert metrics["train_bad_audio/sample_rate"] == 6  # every readable clip: 48 kHz FLAC, resampled and counted
