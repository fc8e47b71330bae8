"""Two CPU processes (gloo, `accelerate launch` as a user runs it) for HEAR stage 2, HEAR fine-tuning and the
semi-supervised CR trainer: each trains, writes a checkpoint with one RNG state per rank, and
`--resume_from_checkpoint` continues it (the restored steps' logs unchanged, only the remaining steps trained)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

from _helpers import TINY_HEAR, TINY_TOKENIZER, write_esc50_layout
from hf_audio_cr.data import write_audioset_parquet
from hf_audio_cr.models.hear import HEARConfig, HEARForMaskedAcousticModeling, HEARTokenizerConfig, HEARTokenizerModel

pytestmark = pytest.mark.slow  # 2-process accelerate launches

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE = [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file", "configs/accelerate/cpu_2proc.yaml"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "MASTER_ADDR": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo"}


def launch(*args):
    result = subprocess.run([*ACCELERATE, *args, "--disable_tqdm", "true"], cwd=ROOT, env=ENV, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-5000:]}"
    return result.stdout + result.stderr


def history(folder):
    return [e for e in json.loads((Path(folder) / "trainer_state.json").read_text())["log_history"] if "loss" in e]


def check_resumed(first_checkpoint, resumed_folder, steps):
    assert {p.name for p in Path(first_checkpoint).glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
    first, resumed = history(first_checkpoint), history(resumed_folder)
    assert [e["step"] for e in resumed] == list(range(1, steps + 1))
    assert resumed[: len(first)] == first  # restored from the checkpoint, then the remaining steps trained


def test_hear_stage2_two_processes_checkpoint_and_resume(tmp_path):
    torch.manual_seed(0)
    HEARTokenizerModel(HEARTokenizerConfig(**TINY_TOKENIZER)).save_pretrained(tmp_path / "tokenizer")
    out = tmp_path / "mam"
    common = ["scripts/pretrain_hear.py", "configs/hear/tiny_pretrain.yaml", "--dataset", "tests/fixtures/audio",
              "--tokenizer_name_or_path", str(tmp_path / "tokenizer"), "--output_dir", str(out),
              "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "1", "--log_level", "info"]
    log = launch(*common, "--max_steps", "2")
    assert "Total train batch size (w. parallel, distributed & accumulation) = 8" in log  # 2 ranks x 4 clips
    launch(*common, "--max_steps", "4", "--resume_from_checkpoint", "last")
    check_resumed(out / "checkpoint-2", out / "checkpoint-4", 4)
    assert {"masked_accuracy", "mask_ratio"} <= history(out / "checkpoint-4")[-1].keys()


def test_hear_finetuning_two_processes_checkpoint_and_resume(tmp_path):
    torch.manual_seed(0)
    HEARForMaskedAcousticModeling(HEARConfig(**TINY_HEAR)).save_pretrained(tmp_path / "mam")
    out = tmp_path / "run"
    # 8 training clips (4 ESC-50 folds x 2 classes) over 2 ranks x 4 clips: one step per epoch
    common = ["scripts/finetune_hear.py", "configs/hear/tiny_finetune.yaml", "--data_path",
              str(write_esc50_layout(tmp_path / "esc50")), "--pretrained_model_name_or_path", str(tmp_path / "mam"),
              "--output_dir", str(out), "--test_folds", "2", "--save_strategy", "epoch"]
    launch(*common, "--num_train_epochs", "1")
    log = launch(*common, "--num_train_epochs", "3", "--resume_from_checkpoint", "last")
    assert "ESC-50 full: accuracy" in log
    check_resumed(out / "fold_2" / "checkpoint-1", out / "fold_2", 3)
    fold = json.loads((out / "fold_2" / "all_results.json").read_text())
    assert fold["epoch"] == 3 and 0.0 <= fold["test_accuracy"] <= 1.0


def test_semi_supervised_cr_two_processes_checkpoint_and_resume(tmp_path):
    audio = ROOT / "tests" / "fixtures" / "audio"
    recordings = [sf.read(audio / name) for name in ("robin.ogg", "trumpet.ogg", "speech_female.ogg")]
    unlabeled = write_audioset_parquet([{"video_id": f"u{i}", "audio": recordings[i % 3], "labels": []}
                                        for i in range(20)], tmp_path / "unlabeled.parquet", 16000, "PCM_16")
    out = tmp_path / "run"
    common = ["scripts/train_cr_audiomae.py", "configs/cr_audiomae/tiny_smoke.yaml", "--unlabeled_files",
              str(unlabeled), "--unlabeled_ratio", "1", "--output_dir", str(out), "--save_steps", "2"]
    launch(*common, "--max_steps", "2", "--eval_split", "")
    launch(*common, "--max_steps", "4", "--resume_from_checkpoint", str(out / "checkpoint-2"))
    check_resumed(out / "checkpoint-2", out / "checkpoint-4", 4)
    assert "unlabeled_cr_loss" in history(out / "checkpoint-4")[-1]
    # each rank checkpointed where its unlabeled stream stood (20 clips: 5 batches of 2 x 2 ranks per pass)
    for rank in (0, 1):
        assert json.loads((out / "checkpoint-2" / f"stream_state_{rank}.json").read_text())["unlabeled"] == {
            "epoch": 0, "batches": 2}
        assert json.loads((out / "checkpoint-4" / f"stream_state_{rank}.json").read_text())["unlabeled"] == {
            "epoch": 0, "batches": 4}
    metrics = json.loads((out / "eval_results.json").read_text())
    assert 0.0 < metrics["eval_mAP"] <= 1.0
