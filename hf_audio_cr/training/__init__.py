"""Training objectives of the papers as Trainer subclasses, with their augmentations, losses and metrics."""
from .augment import make_views, make_views_with_frames, mixup, random_erasing, spec_augment
from .cr_trainer import CRTrainer, CRTrainingArguments, SemiSupervisedCRTrainer
from .distributed import exit_distributed_run
from ..data.collate import HEARPretrainingCollator  # public here too: the HEAR stages' collator
from ..models.hear_variants import build_hear_classifier
from .hear_teachers import ASTTeacher, CRAudioMAETeacher, HEARTeacher, add_teacher_features, load_teacher
from .hear_trainers import (
    HEARFineTuningArguments,
    HEARFineTuningTrainer,
    HEARMAMTrainer,
    HEARMAMTrainingArguments,
    HEARTokenizerTrainer,
    HEARTokenizerTrainingArguments,
)
from .losses import consistency_loss, consistency_loss_for, softmax_consistency_loss
from .metrics import AUDIOSET_MAP_PATH, audioset_compute_metrics, compute_accuracy, load_audioset_metric
from .sampling import AudiosetWeightedSampler, AudiosetWeightedStream, audioset_sample_weights, stream_class_weights

__all__ = [
    "AUDIOSET_MAP_PATH",
    "ASTTeacher",
    "AudiosetWeightedSampler",
    "AudiosetWeightedStream",
    "CRAudioMAETeacher",
    "CRTrainer",
    "CRTrainingArguments",
    "HEARFineTuningArguments",
    "HEARFineTuningTrainer",
    "HEARMAMTrainer",
    "HEARMAMTrainingArguments",
    "HEARPretrainingCollator",
    "HEARTeacher",
    "HEARTokenizerTrainer",
    "HEARTokenizerTrainingArguments",
    "SemiSupervisedCRTrainer",
    "add_teacher_features",
    "build_hear_classifier",
    "compute_accuracy",
    "load_teacher",
    "audioset_compute_metrics",
    "audioset_sample_weights",
    "stream_class_weights",
    "consistency_loss",
    "consistency_loss_for",
    "softmax_consistency_loss",
    "make_views_with_frames",
    "exit_distributed_run",
    "load_audioset_metric",
    "make_views",
    "mixup",
    "random_erasing",
    "spec_augment",
]
