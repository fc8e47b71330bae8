"""HEAR stage 3 (Sec. II-D, III-A2): the paper's fine-tuning settings, accuracy, and ESC-50's 5-fold protocol.

* :func:`build_hear_classifier` builds ``HEARForAudioClassification`` for a Table IV setting: ``full`` (pre-trained
  acoustic model, gated power spectrum, everything fine-tuned), ``without_spectrum``, ``transfer`` (acoustic model
  frozen) and ``scratch`` (random initialisation).
* :func:`compute_accuracy` is a ``compute_metrics`` for single-label sets (the paper reports accuracy everywhere).
* :func:`finetune_and_evaluate` runs one fine-tuning with ``HEARFineTuningTrainer`` and returns its metrics;
  :func:`esc50_cross_validate` runs it once per ESC-50 fold and reports mean and standard deviation.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import replace

import numpy as np
from transformers import set_seed

from ..models.hear import HEARConfig, HEARFeatureExtractor, HEARForAudioClassification
from ..paths import check_local_or_hub
from .hear_config import (  # noqa: F401  the arguments, importable from here as before
    DOWNSTREAM_TASKS,
    HEAR_VARIANTS,
    HEARDownstreamDataArguments,
    HEARFineTuningArguments,
    check_config_overrides,
)
from .hear_trainers import HEARFineTuningTrainer

logger = logging.getLogger(__name__)

def build_hear_classifier(
    variant: str,
    pretrained_model_name_or_path: str | None = None,
    id2label: dict | None = None,
    config_overrides: dict | None = None,
    **from_pretrained_kwargs,
) -> HEARForAudioClassification:
    """``HEARForAudioClassification`` for a Table IV setting, single-label with ``id2label``'s classes.

    ``full`` / ``without_spectrum`` / ``transfer`` load the pre-trained acoustic model (a stage-2
    ``HEARForMaskedAcousticModeling`` or ``HEARModel`` folder: its ``hear.*`` weights; the task model and head
    start random). ``scratch`` takes only the architecture (from the folder's config, or ``config_overrides``).
    """
    if variant not in HEAR_VARIANTS:
        raise ValueError(f"variant must be one of {HEAR_VARIANTS}, got {variant!r}.")
    config_overrides = check_config_overrides(HEARConfig, config_overrides)
    labels = {}
    if id2label is not None:
        id2label = {int(k): v for k, v in id2label.items()}
        labels = {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}, "num_labels": len(id2label)}
    settings = {
        "use_power_spectrum": variant != "without_spectrum",
        "freeze_acoustic_model": variant == "transfer",
        "problem_type": "single_label_classification",
        **labels,
    }
    pretrained_model_name_or_path = pretrained_model_name_or_path and check_local_or_hub(pretrained_model_name_or_path)
    if variant == "scratch":
        if pretrained_model_name_or_path:
            config = HEARConfig.from_pretrained(pretrained_model_name_or_path, **from_pretrained_kwargs)
            for name, value in {**(config_overrides or {}), **settings}.items():
                setattr(config, name, value)
        else:
            config = HEARConfig(**{**(config_overrides or {}), **settings})
        return HEARForAudioClassification(config)
    if not pretrained_model_name_or_path:
        raise ValueError(f"variant={variant!r} needs pretrained_model_name_or_path (a stage-2 folder).")
    model = HEARForAudioClassification.from_pretrained(
        pretrained_model_name_or_path, **{**(config_overrides or {}), **settings}, **from_pretrained_kwargs
    )
    if variant == "transfer":
        # from_pretrained materialises fresh parameters after __init__ froze them: freeze again
        model.freeze_acoustic_model()
    return model


def compute_accuracy(eval_prediction) -> dict:
    """``compute_metrics`` for ``Trainer``: top-1 accuracy of single-label logits."""
    logits = eval_prediction.predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    labels = np.asarray(eval_prediction.label_ids).reshape(-1)
    return {"accuracy": float((np.asarray(logits).argmax(-1) == labels).mean())}


def load_downstream(task: str, data_path: str | None) -> "datasets.DatasetDict":  # noqa: F821
    """The set of ``task`` through the data package's loaders (audio at 16 kHz, ``label`` ClassLabel)."""
    from .. import data

    if task not in DOWNSTREAM_TASKS:
        raise ValueError(f"task must be one of {DOWNSTREAM_TASKS}, got {task!r}.")
    if task == "esc50":
        return data.load_esc50(data_path) if data_path else data.load_esc50()
    if data_path is None:
        raise ValueError(f"task={task!r} needs data_path (a local copy of the set).")
    if task.startswith("speech_commands"):
        return data.load_speech_commands(data_path, version=int(task[-1]))
    if task == "voxceleb1":
        return data.load_voxceleb1(data_path)
    return data.load_audiofolder(data_path)


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
    from ..data.collate import AudioClassificationCollator
    from ..data.quality import AudioQualityCallback, AudioQualityPolicy

    names = train_dataset.features["label"].names
    set_seed(args.seed)  # before the model: one seed, one set of initial task-model and head weights
    model = build_hear_classifier(
        args.variant, args.pretrained_model_name_or_path, dict(enumerate(names)), config_overrides
    )
    feature_extractor = HEARFeatureExtractor()
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
    result = trainer.train()
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



def esc50_cross_validate(
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
    from ..data.downstream import esc50_folds

    per_fold = {}
    for fold in test_folds:
        split = esc50_folds(dataset, fold)
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


__all__ = [
    "DOWNSTREAM_TASKS",
    "HEARDownstreamDataArguments",
    "build_hear_classifier",
    "compute_accuracy",
    "esc50_cross_validate",
    "finetune_and_evaluate",
    "format_cross_validation",
    "load_downstream",
]
