"""`accelerate launch scripts/finetune_hear.py` with the tiny YAML: one ESC-50 fold of a pre-trained tiny model."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _helpers import TINY_HEAR, write_esc50_layout
from hf_audio_cr.models.hear import HEARConfig, HEARForMaskedAcousticModeling

pytestmark = pytest.mark.slow  # accelerate launch of finetune_hear.py

ROOT = Path(__file__).resolve().parents[1]


def test_finetune_script_under_accelerate_launch(tmp_path):
    torch.manual_seed(0)
    HEARForMaskedAcousticModeling(HEARConfig(**TINY_HEAR)).save_pretrained(tmp_path / "mam")
    esc50 = write_esc50_layout(tmp_path / "esc50")
    command = [
        str(Path(sys.executable).parent / "accelerate"), "launch", "--num_processes", "1", "--cpu",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "scripts/finetune_hear.py", "configs/hear/tiny_finetune.yaml",
        "--data_path", str(esc50), "--pretrained_model_name_or_path", str(tmp_path / "mam"),
        "--output_dir", str(tmp_path / "run"), "--test_folds", "2", "--disable_tqdm", "true",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "ESC-50 full: accuracy" in result.stdout
    summary = json.loads((tmp_path / "run" / "cv_results.json").read_text())
    assert summary["num_folds"] == 1 and summary["variant"] == "full"
    fold = json.loads((tmp_path / "run" / "fold_2" / "all_results.json").read_text())
    assert fold["test_accuracy"] == summary["accuracy_mean"] and fold["epoch"] == 2
    # the YAML's values reached the Trainer, the command line overrode the folds
    state = json.loads((tmp_path / "run" / "fold_2" / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and state["train_batch_size"] == 4  # 8 training clips, batch 4, 2 epochs
