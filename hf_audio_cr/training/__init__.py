"""Training objectives of the papers as Trainer subclasses, with their augmentations, losses and metrics.

Names load their submodule on first use (PEP 562), so importing one light module (e.g. the argument
dataclasses a script parses) does not import the whole training stack."""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("make_views", "make_views_with_frames", "mixup", "random_erasing", "spec_augment",), ".augment"),
    **dict.fromkeys(("CRTrainer", "SemiSupervisedCRTrainer",), ".cr_trainer"),
    **dict.fromkeys(("CRTrainingArguments",), ".cr_config"),
    **dict.fromkeys(("exit_distributed_run",), ".distributed"),
    "build_hear_classifier": "..models.hear_variants",
    "HEARPretrainingCollator": "..data.collate",  # public here too: the HEAR stages' collator
    **dict.fromkeys((
        "ASTTeacher", "CRAudioMAETeacher", "HEARTeacher", "add_teacher_features", "load_teacher",
    ), ".hear_teachers"),
    **dict.fromkeys(
        ("HEARFineTuningTrainer", "HEARMAMTrainer", "HEARTokenizerTrainer"), ".hear_trainers"
    ),
    **dict.fromkeys(("HEARFineTuningArguments", "HEARMAMTrainingArguments", "HEARTokenizerTrainingArguments"), ".hear_config"),
    **dict.fromkeys(("consistency_loss", "consistency_loss_for", "softmax_consistency_loss",), ".losses"),
    **dict.fromkeys(("AUDIOSET_MAP_PATH", "audioset_compute_metrics", "compute_accuracy", "load_audioset_metric"), ".metrics"),
    **dict.fromkeys(("AudiosetWeightedSampler", "AudiosetWeightedStream", "audioset_sample_weights", "stream_class_weights"),
        ".sampling"),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
