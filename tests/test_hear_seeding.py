"""HEAR stages 2 and 3 seed before they build their model: one `--seed`, one set of initial weights, whatever
the process's random state was (stage 1 is covered bitwise by tests/test_resume_crash.py)."""
import importlib.util
from pathlib import Path

import torch
from safetensors.torch import load_file

from _helpers import TINY_HEAR, TINY_TOKENIZER, write_esc50_layout
from hf_audio_cr.data import load_esc50
from hf_audio_cr.experiments.hear_downstream import finetune_and_evaluate
from hf_audio_cr.models.hear import HEARTokenizerConfig, HEARTokenizerModel
from hf_audio_cr.training.hear_trainers import HEARFineTuningArguments

ROOT = Path(__file__).resolve().parents[1]
# learning rate 0: the saved weights are the initial ones (BatchNorm statistics follow the seeded batches)
FROZEN = ["--max_steps", "1", "--learning_rate", "0", "--seed", "3", "--disable_tqdm", "true"]


def script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_same_weights(a: Path, b: Path):
    first, second = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert first.keys() == second.keys()
    for key, value in first.items():
        assert torch.equal(second[key], value), f"{key} differs between two runs with one seed"


def test_pretrain_script_starts_from_the_same_weights_for_one_seed(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    torch.manual_seed(0)
    HEARTokenizerModel(HEARTokenizerConfig(**TINY_TOKENIZER)).save_pretrained(tmp_path / "tokenizer")
    pretrain = script("pretrain_hear")
    for run, disturbance in (("a", 1), ("b", 2)):
        torch.manual_seed(disturbance)  # a different random state before each run
        pretrain.main(["configs/hear/tiny_pretrain.yaml", "--dataset", "tests/fixtures/audio", "--tokenizer_name_or_path",
                       str(tmp_path / "tokenizer"), "--output_dir", str(tmp_path / run), *FROZEN])
    assert_same_weights(tmp_path / "a", tmp_path / "b")


def test_fine_tuning_starts_from_the_same_weights_for_one_seed(tmp_path):
    esc50 = load_esc50(write_esc50_layout(tmp_path / "esc50"))["train"]
    for run, disturbance in (("a", 1), ("b", 2)):
        torch.manual_seed(disturbance)
        args = HEARFineTuningArguments(
            output_dir=str(tmp_path / run), variant="scratch", max_steps=1, learning_rate=0.0, seed=3,
            per_device_train_batch_size=4, report_to=[], save_strategy="no", use_cpu=True, dataloader_num_workers=0,
            disable_tqdm=True,
        )
        finetune_and_evaluate(args, esc50, config_overrides=TINY_HEAR)
    assert_same_weights(tmp_path / "a", tmp_path / "b")
