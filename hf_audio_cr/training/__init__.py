"""Training objectives of the papers as Trainer subclasses, with their augmentations, losses and metrics."""
from .augment import make_views, mixup, random_erasing, spec_augment
from .cr_trainer import CRTrainer, CRTrainingArguments, SemiSupervisedCRTrainer
from .distributed import exit_distributed_run
from .losses import consistency_loss
from .metrics import AUDIOSET_MAP_PATH, audioset_compute_metrics, load_audioset_metric
from .sampling import AudiosetWeightedSampler, audioset_sample_weights

__all__ = [
    "AUDIOSET_MAP_PATH",
    "AudiosetWeightedSampler",
    "CRTrainer",
    "CRTrainingArguments",
    "SemiSupervisedCRTrainer",
    "audioset_compute_metrics",
    "audioset_sample_weights",
    "consistency_loss",
    "exit_distributed_run",
    "load_audioset_metric",
    "make_views",
    "mixup",
    "random_erasing",
    "spec_augment",
]
