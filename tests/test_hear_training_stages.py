"""Each HEAR stage trains a tiny model for a few dozen steps on real recordings and its loss falls."""
import json

import numpy as np
import pytest
import torch

from _helpers import TINY_HEAR, TINY_TEACHER, TINY_TOKENIZER, pretraining_dataset, write_esc50_layout
from hf_audio_cr.data import HEARPretrainingCollator, load_esc50
from hf_audio_cr.experiments.hear_downstream import finetune_and_evaluate, finetune_esc50_folds
from hf_audio_cr.models.cr_audiomae import CRAudioMAEConfig, CRAudioMAEModel
from hf_audio_cr.models.hear import (
    HEARConfig,
    HEARFeatureExtractor,
    HEARForMaskedAcousticModeling,
    HEARTokenizerConfig,
    HEARTokenizerModel,
)
from hf_audio_cr.models.hear_variants import build_hear_classifier
from hf_audio_cr.training.hear_teachers import CRAudioMAETeacher, add_teacher_features
from hf_audio_cr.training.hear_trainers import (
    HEARFineTuningArguments,
    HEARMAMTrainer,
    HEARMAMTrainingArguments,
    HEARTokenizerTrainer,
    HEARTokenizerTrainingArguments,
)

COMMON = dict(
    per_device_train_batch_size=4, warmup_steps=0, lr_scheduler_type="constant", report_to=[], save_strategy="no",
    use_cpu=True, dataloader_num_workers=0, disable_tqdm=True, seed=0,
)


def history_of(folder):
    return [e for e in json.loads((folder / "trainer_state.json").read_text())["log_history"] if "loss" in e]


def losses(trainer, key="loss"):
    return [entry[key] for entry in trainer.state.log_history if key in entry and "train_loss" not in entry]


@pytest.fixture(scope="module")
def dataset():
    return pretraining_dataset()


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return CRAudioMAETeacher(CRAudioMAEModel(CRAudioMAEConfig(**TINY_TEACHER)))


def tiny_tokenizer(**overrides):
    torch.manual_seed(0)
    return HEARTokenizerModel(HEARTokenizerConfig(**{**TINY_TOKENIZER, "teacher_hidden_size": 32, **overrides}))


def test_tokenizer_stage_loss_falls_and_temperature_anneals_per_optimizer_step(dataset, teacher, tmp_path):
    model = tiny_tokenizer(gumbel_temperature_decay=0.99)
    collator = HEARPretrainingCollator(HEARFeatureExtractor(), teacher=teacher, max_seconds=1.28, random_crop=False)
    args = HEARTokenizerTrainingArguments(
        output_dir=str(tmp_path), max_steps=15, gradient_accumulation_steps=2, learning_rate=3e-3, logging_steps=3,
        **COMMON,
    )
    trainer = HEARTokenizerTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator, teacher=teacher)
    trainer.train()
    total = losses(trainer)
    assert np.mean(total[-2:]) < 0.8 * total[0], total
    for term in ("reconstruction_loss", "distillation_loss", "diversity_loss", "codes_used", "gumbel_temperature"):
        assert len(losses(trainer, term)) == len(total), term
    # 30 forwards, 15 optimizer steps: annealed 15 times, logged as it went
    assert model.gumbel_temperature == pytest.approx(2.0 * 0.99**15, rel=1e-5)
    assert losses(trainer, "gumbel_temperature")[0] == pytest.approx(2.0 * 0.99**3, rel=1e-5)
    assert not any(p.requires_grad for p in teacher.parameters())
    metrics = trainer.evaluate(dataset)
    assert all(metrics[f"eval_{term}"] >= 0 for term in ("reconstruction_loss", "distillation_loss", "diversity_loss"))
    assert 1 <= metrics["eval_codes_used"] <= model.config.codebook_size and "eval_gumbel_temperature" not in metrics


def test_precomputed_teacher_features_follow_the_crop(dataset, teacher, tmp_path):
    with_features = add_teacher_features(dataset, teacher, batch_size=4)
    assert with_features.column_names[-2:] == ["teacher_features", "teacher_mask"]
    row = with_features[2]  # 13.9 s of speech: the tiny teacher's 1.3 s window covers only the start
    tokens = len(row["teacher_features"])
    assert tokens == (1 + len(row["audio"]["array"]) // 160) // 2 and sum(row["teacher_mask"]) == 65
    collator = HEARPretrainingCollator(HEARFeatureExtractor(), max_seconds=1.0, seed=3)
    batch = collator([row])
    offset = collator._random.__class__(3).randint(0, (len(row["audio"]["array"]) - 16000) // 320)
    expected = torch.tensor(np.asarray(row["teacher_features"][offset : offset + 50]), dtype=torch.float32)
    torch.testing.assert_close(batch["teacher_features"][0], expected)
    assert batch["teacher_mask"][0].tolist() == row["teacher_mask"][offset : offset + 50]
    # and a run on the precomputed column needs no teacher
    model = tiny_tokenizer()
    args = HEARTokenizerTrainingArguments(output_dir=str(tmp_path), max_steps=4, learning_rate=3e-3, logging_steps=2, **COMMON)
    trainer = HEARTokenizerTrainer(
        model=model, args=args, train_dataset=with_features,
        data_collator=HEARPretrainingCollator(HEARFeatureExtractor(), max_seconds=1.28, random_crop=False),
    )
    trainer.train()
    assert all(np.isfinite(losses(trainer, "distillation_loss")))


def test_mam_stage_loss_falls_with_40_percent_masking(dataset, tmp_path):
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    model = HEARForMaskedAcousticModeling(HEARConfig(**TINY_HEAR, tokenizer_config=tokenizer.config.to_dict()))
    args = HEARMAMTrainingArguments(output_dir=str(tmp_path), max_steps=30, learning_rate=3e-3, logging_steps=5, **COMMON)
    trainer = HEARMAMTrainer(
        model=model, args=args, train_dataset=dataset, acoustic_tokenizer=tokenizer,
        data_collator=HEARPretrainingCollator(HEARFeatureExtractor(), max_seconds=2.0, random_crop=False),
    )
    before = {k: v.clone() for k, v in tokenizer.state_dict().items()}
    trainer.train()
    total = losses(trainer)
    assert total[-1] < 0.8 * total[0], total
    assert all(0.3 < r < 0.5 for r in losses(trainer, "mask_ratio"))
    assert np.mean(losses(trainer, "masked_accuracy")[-2:]) > losses(trainer, "masked_accuracy")[0]
    assert all(torch.equal(before[k], v) for k, v in tokenizer.state_dict().items())  # frozen
    metrics = trainer.evaluate(dataset)  # evaluation reports the same objective, with its terms
    assert np.isfinite(metrics["eval_loss"]) and 0.3 < metrics["eval_mask_ratio"] < 0.5
    assert 0.0 <= metrics["eval_masked_accuracy"] <= 1.0


@pytest.fixture(scope="module")
def pretrained_folder(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("hear_mam")
    HEARForMaskedAcousticModeling(HEARConfig(**TINY_HEAR)).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def esc50(tmp_path_factory):
    return load_esc50(write_esc50_layout(tmp_path_factory.mktemp("esc50")))["train"]


def test_downstream_settings_of_table_iv(pretrained_folder):
    pretrained = HEARForMaskedAcousticModeling.from_pretrained(pretrained_folder).hear.state_dict()
    labels = {0: "door_wood_knock", 1: "church_bells"}
    full = build_hear_classifier("full", pretrained_folder, labels)
    assert all(torch.equal(full.hear.state_dict()[k], v) for k, v in pretrained.items())
    assert full.config.use_power_spectrum and full.config.num_labels == 2
    assert build_hear_classifier("without_spectrum", pretrained_folder, labels).spectrum_fusion is None
    transfer = build_hear_classifier("transfer", pretrained_folder, labels)
    assert not any(p.requires_grad for p in transfer.hear.parameters())
    scratch = build_hear_classifier("scratch", pretrained_folder, labels)
    assert not torch.equal(scratch.hear.front_end.conv.weight, full.hear.front_end.conv.weight)
    with pytest.raises(ValueError, match="pretrained_model_name_or_path"):
        HEARFineTuningArguments(output_dir="x", variant="transfer")


def test_downstream_fine_tuning_loss_falls_and_transfer_keeps_the_acoustic_model(esc50, pretrained_folder, tmp_path):
    train = esc50.filter(lambda fold: fold != 5, input_columns="fold")
    args = HEARFineTuningArguments(
        output_dir=str(tmp_path / "full"), variant="full", pretrained_model_name_or_path=pretrained_folder,
        num_train_epochs=12, learning_rate=5e-3, logging_steps=4, **COMMON,
    )
    metrics = finetune_and_evaluate(args, train, test_dataset=esc50.filter(lambda f: f == 5, input_columns="fold"))
    history = json.loads((tmp_path / "full" / "all_results.json").read_text())
    assert history["test_accuracy"] == metrics["test_accuracy"] and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["epoch"] == 12 and metrics["bad_audio_skipped"] == 0
    total = [e["loss"] for e in history_of(tmp_path / "full")]
    assert np.mean(total[-2:]) < 0.8 * total[0], total
    # the transfer setting trains the task model only
    args = HEARFineTuningArguments(
        output_dir=str(tmp_path / "transfer"), variant="transfer", pretrained_model_name_or_path=pretrained_folder,
        max_steps=3, learning_rate=1e-3, **COMMON,
    )
    finetune_and_evaluate(args, train)
    from hf_audio_cr.models.hear import HEARForAudioClassification

    trained = HEARForAudioClassification.from_pretrained(tmp_path / "transfer")
    pretrained = HEARForMaskedAcousticModeling.from_pretrained(pretrained_folder).hear.state_dict()
    assert all(torch.equal(trained.hear.state_dict()[k], v) for k, v in pretrained.items())


def test_esc50_five_fold_cross_validation_reports_mean_and_std(esc50, tmp_path):
    args = HEARFineTuningArguments(
        output_dir=str(tmp_path), variant="scratch", max_steps=2, learning_rate=1e-3, **COMMON
    )
    summary = finetune_esc50_folds(args, esc50, config_overrides=TINY_HEAR)
    accuracies = [summary["fold_accuracy"][str(k)] for k in range(1, 6)]
    assert summary["num_folds"] == 5 and all(a in (0.0, 0.5, 1.0) for a in accuracies)  # 2 test clips per fold
    assert summary["accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert summary["accuracy_std"] == pytest.approx(np.std(accuracies))
    assert json.loads((tmp_path / "cv_results.json").read_text()) == summary
    assert (tmp_path / "fold_3" / "all_results.json").is_file()
