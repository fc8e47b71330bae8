"""HEAR stage 3 experiments (Sec. III-A2): one fine-tuning run, and ESC-50's 5-fold cross-validation.

* :func:`finetune_and_evaluate` fine-tunes a fresh classifier of a Table IV setting with ``HEARFineTuningTrainer``
  and returns its metrics (``scripts/finetune_hear.py``);
* :func:`finetune_esc50_folds` runs it once per fold of :func:`hf_audio_cr.data.esc50_cross_validation` and
  reports mean and standard deviation; :func:`format_cross_validation` writes that summary in one line.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import replace

import numpy as np
from transformers import set_seed

from ..data import AudioClassificationCollator, AudioQualityCallback, AudioQualityPolicy, esc50_cross_validation
from ..models.hear import HEARFeatureExtractor
from ..models.hear_variants import build_hear_classifier
from ..training.checkpoints import resolve_resume_checkpoint
from ..training.hear_trainers import HEARFineTuningArguments, HEARFineTuningTrainer
from ..training.metrics import compute_accuracy

logger = logging.getLogger(__name__)


def finetune_and_evaluate(
    args: HEARFineTuningArguments,
    train_dataset,
    eval_dataset=None,
    test_dataset=None,
    config_overrides: dict | None = None,
    save_model: bool = True,
    max_seconds: float | None = 6.0,
) -> dict:
    """Fine-tune a fresh classifier of ``args.variant`` on ``train_dataset`` and return the metrics of
    ``eval_dataset`` (``eval_*``) and ``test_dataset`` (``test_*``), written to ``output_dir/all_results.json``.

    Bad clips are skipped and counted in training (``bad_audio/*`` in the logs and the metrics, summed over
    processes) and raise ``BadAudioError`` naming the file in evaluation. ``max_seconds`` bounds what one clip
    costs: a random crop in training, averaged windows in evaluation."""
    names = train_dataset.features["label"].names
    set_seed(args.seed)  # before the model: one seed, one set of initial task-model and head weights
    model = build_hear_classifier(
        args.variant, args.pretrained_model_name_or_path, dict(enumerate(names)), config_overrides
    )
    # saved with the model (processing_class): pipeline() on a long clip then scores the windows evaluated here
    feature_extractor = HEARFeatureExtractor(max_seconds=max_seconds)
    train_collator = AudioClassificationCollator(feature_extractor, label_column="label", max_seconds=max_seconds)
    # evaluation: bad clips raise with their file name instead of silently changing the score
    eval_collator = AudioClassificationCollator(
        feature_extractor, label_column="label", quality=AudioQualityPolicy(mode="eval"), max_seconds=max_seconds
    )
    if eval_dataset is None and test_dataset is None:
        logger.warning(
            "No validation or test split: fine-tuning only, there is nothing to evaluate (an audiofolder needs "
            "test/<class>/<clip> or validation/<class>/<clip> next to train/)."
        )
    trainer = HEARFineTuningTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=train_collator,
        processing_class=feature_extractor,
        compute_metrics=compute_accuracy,
        callbacks=[AudioQualityCallback(train_collator.quality)],
    )
    # --resume_from_checkpoint PATH | last (the newest complete checkpoint in output_dir)
    result = trainer.train(resume_from_checkpoint=resolve_resume_checkpoint(args.resume_from_checkpoint, args.output_dir))
    metrics = {**result.metrics, **train_collator.quality.as_metrics(across_processes=True)}
    metrics["bad_audio_skipped"] = metrics["bad_audio/clips_skipped"]
    trainer.data_collator = eval_collator  # evaluation reads the collator at call time
    if eval_dataset is not None:
        metrics.update(trainer.evaluate(eval_dataset, metric_key_prefix="eval"))
    if test_dataset is not None:
        metrics.update(trainer.evaluate(test_dataset, metric_key_prefix="test"))
    if save_model:
        trainer.save_model()
    trainer.save_state()  # trainer_state.json: the logged losses
    trainer.save_metrics("all", metrics)
    return metrics


def finetune_esc50_folds(
    args: HEARFineTuningArguments,
    dataset,
    test_folds=(1, 2, 3, 4, 5),
    config_overrides: dict | None = None,
    max_seconds: float | None = 6.0,
) -> dict:
    """ESC-50's official protocol (Sec. III-A2): for each held-out fold, fine-tune a fresh model on the other four
    and score accuracy on it. Returns the per-fold accuracies, ``accuracy_mean`` and ``accuracy_std`` (population
    standard deviation over folds), also written to ``output_dir/cv_results.json``; fold ``k`` trains in
    ``output_dir/fold_k``."""
    per_fold = {}
    for fold, split in esc50_cross_validation(dataset, test_folds):
        fold_args = replace(args, output_dir=os.path.join(args.output_dir, f"fold_{fold}"))
        metrics = finetune_and_evaluate(
            fold_args, split["train"], test_dataset=split["test"], config_overrides=config_overrides, save_model=False,
            max_seconds=max_seconds,
        )
        per_fold[fold] = metrics["test_accuracy"]
    accuracies = np.array(list(per_fold.values()))
    summary = {
        "variant": args.variant,
        "fold_accuracy": {str(k): v for k, v in per_fold.items()},
        "accuracy_mean": float(accuracies.mean()),
        "accuracy_std": float(accuracies.std()),
        "num_folds": len(per_fold),
    }
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "cv_results.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def format_cross_validation(summary: dict) -> str:
    """``accuracy 84.90 ± 1.20 % over 5 folds`` for logs and READMEs."""
    if not math.isfinite(summary["accuracy_mean"]):
        return "accuracy n/a"
    return (
        f"accuracy {100 * summary['accuracy_mean']:.2f} ± {100 * summary['accuracy_std']:.2f} % "
        f"over {summary['num_folds']} folds"
    )


__all__ = ["finetune_and_evaluate", "finetune_esc50_folds", "format_cross_validation"]
