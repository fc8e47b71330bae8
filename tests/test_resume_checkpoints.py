"""Picking the checkpoint to resume from: a checkpoint cut off mid-write is detected, reported, and the
previous complete one is used through ``Trainer``'s ``resume_from_checkpoint``."""
import json
import logging
import shutil

import pytest
import torch
from safetensors.torch import load_file

from hf_audio_cr import CRAudioMAEConfig, CRAudioMAEForAudioClassification
from hf_audio_cr.training import CRTrainer, CRTrainingArguments
from hf_audio_cr.training.checkpoints import (
    checkpoint_problems,
    last_complete_checkpoint,
    list_checkpoints,
    resolve_resume_checkpoint,
)

CLASSES = ("robin.ogg", "trumpet.ogg", "speech_female.ogg")


def tiny_model():
    torch.manual_seed(0)
    return CRAudioMAEForAudioClassification(CRAudioMAEConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_length=128,
        num_labels=3, drop_path_rate=0.0))


def make_trainer(rows, output_dir, max_steps=6):
    args = CRTrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=4, max_steps=max_steps, save_steps=2,
        save_strategy="steps", logging_steps=1, report_to="none", use_cpu=True, dataloader_num_workers=0,
        disable_tqdm=True, time_mask=64, seed=0)
    return CRTrainer(model=tiny_model(), args=args, train_dataset=rows)


@pytest.fixture(scope="module")
def rows(tiny_fbanks):
    return [{"input_values": fbank, "labels": torch.nn.functional.one_hot(torch.tensor(i), 3).float()}
            for i, name in enumerate(CLASSES) for fbank in tiny_fbanks[name][:4]]


@pytest.fixture(scope="module")
def finished_run(rows, tmp_path_factory):
    """A complete 6-step run with checkpoints at steps 2, 4 and 6 (the reference)."""
    out = tmp_path_factory.mktemp("run")
    make_trainer(rows, out).train()
    return out


def test_complete_checkpoints_pass_and_truncated_files_are_named(finished_run, tmp_path):
    assert [p.name for p in list_checkpoints(finished_run)] == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
    assert all(checkpoint_problems(p) == [] for p in list_checkpoints(finished_run))
    broken = shutil.copytree(finished_run / "checkpoint-6", tmp_path / "checkpoint-6")
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    optimizer = broken / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:-100])
    (broken / "trainer_state.json").unlink()
    problems = " | ".join(checkpoint_problems(broken))
    assert "model.safetensors has" in problems and "truncated write" in problems
    assert "optimizer.pt is not a complete torch archive" in problems
    assert "trainer_state.json is missing" in problems


def test_resume_skips_a_truncated_checkpoint_and_matches_the_uninterrupted_run(rows, finished_run, tmp_path, caplog):
    # A run "killed" while writing checkpoint-6: steps 2 and 4 are complete, 6 is cut off.
    crashed = tmp_path / "crashed"
    shutil.copytree(finished_run, crashed, ignore=shutil.ignore_patterns("checkpoint-6"))
    shutil.copytree(finished_run / "checkpoint-4", crashed / "checkpoint-6")  # same files, then cut off
    weights = crashed / "checkpoint-6" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    state = json.loads((crashed / "checkpoint-6" / "trainer_state.json").read_text())
    state["global_step"] = 6
    (crashed / "checkpoint-6" / "trainer_state.json").write_text(json.dumps(state))

    with caplog.at_level(logging.WARNING, logger="hf_audio_cr.training.checkpoints"):
        resume = resolve_resume_checkpoint("last", crashed)
    assert resume == str(crashed / "checkpoint-4")
    assert "Skipping incomplete checkpoint" in caplog.text and "checkpoint-6" in caplog.text
    # An explicit path to the broken folder falls back the same way.
    assert resolve_resume_checkpoint(str(crashed / "checkpoint-6"), crashed) == resume

    shutil.rmtree(crashed / "checkpoint-6")  # Trainer would overwrite it; keep the comparison clean
    make_trainer(rows, crashed).train(resume_from_checkpoint=resume)
    resumed = load_file(crashed / "checkpoint-6" / "model.safetensors")
    reference = load_file(finished_run / "checkpoint-6" / "model.safetensors")
    assert resumed.keys() == reference.keys()
    for key in reference:  # same seed, same data order, RNG restored: bitwise equal on CPU
        assert torch.equal(resumed[key], reference[key]), key


def test_resolve_resume_checkpoint_edge_cases(finished_run, tmp_path):
    assert resolve_resume_checkpoint(None, finished_run) is None
    assert resolve_resume_checkpoint("true", finished_run) == str(finished_run / "checkpoint-6")
    assert resolve_resume_checkpoint("last", tmp_path / "fresh") is None  # first run: start from scratch
    assert last_complete_checkpoint(finished_run, before=5) == str(finished_run / "checkpoint-4")
    with pytest.raises(FileNotFoundError, match="does not exist; pass a checkpoint-N folder, or 'last'"):
        resolve_resume_checkpoint(str(tmp_path / "checkpoint-9"), tmp_path)
    only_broken = tmp_path / "broken_run" / "checkpoint-2"
    only_broken.mkdir(parents=True)
    with pytest.raises(ValueError, match="no checkpoint in .* is complete"):
        resolve_resume_checkpoint("last", only_broken.parent)
