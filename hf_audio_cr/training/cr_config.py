"""``CRTrainingArguments``: the CR-AudioMAE hyperparameters (Sadhu & Wang, Sec. 3-4) as ``TrainingArguments``.

Kept apart from ``cr_trainer.py`` (trl's config/trainer pairs) so a script parses its flags, and answers
``--help``, without importing ``Trainer`` and the models.
"""
from dataclasses import dataclass, field

from transformers import TrainingArguments

UNLABELED_AUGMENTATIONS = ("mixup", "specaugment", "erasing")
SPEC_AUGMENT_FILLS = ("raw_zero", "mean")


def _fill_number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass
class CRTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus the CR-AudioMAE hyperparameters (Sec. 3-4).

    Defaults are the AS-20k run's objective, augmentation and optimiser settings: lambda 2, mixup 0.5 with
    Beta(10, 10), SpecAugment 48/192, random erasing 0.25, AdamW lr 1e-3, weight decay 5e-4, layer-wise lr
    decay 0.75, 4 warmup epochs of 60 then cosine (AudioMAE fine-tuning). Two defaults are not that run's:
    ``num_views`` is Eq. 4's 2 (the run uses 6) and the batch is transformers' 8 per device (the run uses 64);
    ``configs/cr_audiomae/as20k_cr.yaml`` is the whole run.
    """

    cr_weight: float = field(
        default=2.0, metadata={"help": "lambda of Eq. 6 (lambda_1 of Eq. 7): weight of the consistency loss."}
    )
    num_views: int = field(default=2, metadata={
        "help": "k: augmented views per clip, run as one batched forward. Default 2 (Eq. 4); the paper's AS-20k "
                "run uses 6 (configs/cr_audiomae/as20k_cr.yaml)."})
    mixup_prob: float = field(default=0.5, metadata={"help": "Probability that a clip is mixed with a batch partner."})
    mixup_alpha: float = field(default=10.0, metadata={"help": "mu ~ Beta(mixup_alpha, mixup_alpha) (AudioMAE: 10)."})
    freq_mask: int = field(default=48, metadata={"help": "SpecAugment: largest frequency mask, in Mel bins."})
    time_mask: int = field(default=192, metadata={"help": "SpecAugment: largest time mask, in frames."})
    erase_prob: float = field(default=0.25, metadata={"help": "Random erasing probability per view (AS-20k: 0.25)."})
    spec_augment_fill: str = field(
        default="raw_zero",
        metadata={
            "help": "Value written into SpecAugment's masked cells: 'raw_zero' (AudioMAE: 0 in the raw fbank, "
            "i.e. -mean / (2 std) from the feature extractor's own statistics, 0.467 for AudioSet's), 'mean' "
            "(0 in normalised units) or a number in normalised units."
        },
    )
    unlabeled_cr_weight: float = field(
        default=1.0, metadata={"help": "lambda_2 of Eq. 7: weight of the consistency loss on unlabeled clips."}
    )
    unlabeled_ratio: int = field(default=4, metadata={"help": "Unlabeled clips per labeled clip in each step (Sec. 4.4)."})
    unlabeled_augment: list[str] = field(
        default_factory=lambda: ["specaugment"],
        metadata={"help": f"Augmentations of the unlabeled views, from {UNLABELED_AUGMENTATIONS} (paper: SpecAugment only)."},
    )
    cr_rampup_ratio: float = field(
        default=0.0,
        metadata={"help": "Share of the training steps over which lambda (lambda_1, lambda_2) grows from 0 to its value "
                          "as exp(-5 (1 - t)^2) (the Pi-model's ramp-up, Laine & Aila); 0 = the paper's constant lambda."},
    )
    log_diagnostics: bool = field(
        default=True,
        metadata={"help": "Log pred_std (probability std across the batch's clips), logit_std, view_gap and "
                          "view_agreement next to the loss terms (see CRTrainer)."},
    )
    eval_loss_terms: bool = field(
        default=False,
        metadata={"help": "Evaluation also logs Eq. 6's terms (eval_bce_loss, eval_cr_loss and the diagnostics) on "
                          "num_views augmented views of each evaluation batch: one more forward of num_views times "
                          "the batch per batch. The score (eval_loss, metrics) stays the clean input's."},
    )
    layer_decay: float = field(default=0.75, metadata={"help": "Layer-wise lr decay: block i gets lr * decay^(L + 1 - i)."})
    weighted_sampling: bool = field(
        default=False, metadata={"help": "AudioMAE's class-balancing WeightedRandomSampler (map-style datasets; a "
                                         "stream must come wrapped as AudiosetWeightedStream)."}
    )
    epoch_length: int | None = field(
        default=None, metadata={"help": "Clips drawn per epoch by the weighted sampler (AudioMAE AS-2M: 200000)."}
    )
    weighted_sampling_replacement: bool = field(
        default=True,
        metadata={"help": "Weighted sampler draws with replacement; AudioMAE's AS-2M recipe draws without (False)."},
    )
    weighted_sampling_ancestors: bool = field(
        default=False,
        metadata={
            "help": "Count each clip's labels with their ontology ancestors in sampling_label_set for the class "
            "weights, as the CR paper's fork does (gen_weight.py on labels 'with parents'); False: own labels (AudioMAE)."
        },
    )
    sampling_label_set: str = field(
        default="556", metadata={"help": "Label set whose ancestors count when weighted_sampling_ancestors is set."}
    )
    # TrainingArguments fields whose defaults become the paper's, or whose help says where the paper differs.
    per_device_train_batch_size: int = field(default=8, metadata={
        "help": "Training clips per device and step. Default 8 (transformers'); the paper's AS-20k run uses a total "
                "batch of 64 (configs/cr_audiomae/as20k_cr.yaml), AS-2M 512."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak lr (AS-20k: 1e-3, AS-2M: 2e-4)."})
    weight_decay: float = field(default=5e-4, metadata={"help": "AdamW weight decay (AudioMAE fine-tuning)."})
    num_train_epochs: float = field(default=60.0, metadata={"help": "Sec. 4.1: 60 epochs."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Warmup then cosine decay (AudioMAE)."})
    warmup_steps: float = field(default=4 / 60, metadata={"help": "Warmup, a ratio of all steps: 4 of 60 epochs."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep the `audio` column: the collator turns it into features."}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {self.num_views}.")
        if self.cr_weight < 0 or self.unlabeled_cr_weight < 0:
            raise ValueError("cr_weight and unlabeled_cr_weight must be >= 0.")
        if self.cr_weight > 0 and self.num_views < 2:
            raise ValueError(f"cr_weight={self.cr_weight} needs num_views >= 2 (consistency compares views).")
        for name in ("mixup_prob", "erase_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}.")
        if self.unlabeled_ratio < 1:
            raise ValueError(f"unlabeled_ratio must be >= 1, got {self.unlabeled_ratio}.")
        unknown = set(self.unlabeled_augment) - set(UNLABELED_AUGMENTATIONS)
        if unknown:
            raise ValueError(f"unlabeled_augment has unknown entries {sorted(unknown)}; choose from {UNLABELED_AUGMENTATIONS}.")
        if not 0.0 <= self.cr_rampup_ratio <= 1.0:
            raise ValueError(f"cr_rampup_ratio must be in [0, 1], got {self.cr_rampup_ratio}.")
        if not 0.0 < self.layer_decay <= 1.0:
            raise ValueError(f"layer_decay must be in (0, 1], got {self.layer_decay}.")
        if self.spec_augment_fill not in SPEC_AUGMENT_FILLS and _fill_number(self.spec_augment_fill) is None:
            raise ValueError(
                f"spec_augment_fill must be one of {SPEC_AUGMENT_FILLS} or a number, got {self.spec_augment_fill!r}."
            )
