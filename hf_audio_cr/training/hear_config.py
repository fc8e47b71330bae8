"""The arguments of HEAR's three training stages (Kawano & Sasaki, Sec. II-B to II-D, III-A) and of their data.

Kept apart from ``hear_trainers.py`` (trl's config/trainer pairs) so a script parses its flags, and answers
``--help``, without importing ``Trainer`` and the models; ``hear_trainers`` imports them
back, so every name is still importable from there.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..data.tasks import DOWNSTREAM_TASKS

HEAR_VARIANTS = ("full", "without_spectrum", "transfer", "scratch")


@dataclass
class HEARTokenizerTrainingArguments(TrainingArguments):
    """``TrainingArguments`` for stage 1 (Sec. III-A1): AdamW, peak lr 3e-4, batch 64, 540k steps, 10k warmup steps
    then cosine decay; Eq. 1 weights alpha 0.3, beta 0.7, gamma 0.1. The paper does not give a weight decay."""

    reconstruction_weight: float = field(default=0.3, metadata={"help": "alpha of Eq. 1: Mel reconstruction MSE."})
    distillation_weight: float = field(default=0.7, metadata={"help": "beta of Eq. 1: cosine distillation to the teacher."})
    diversity_weight: float = field(default=0.1, metadata={"help": "gamma of Eq. 1: codebook diversity."})
    teacher_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Teacher (AST/SSAST or CR-AudioMAE folder or Hub id); None with precomputed teacher_features."},
    )
    teacher_layer: int | None = field(default=None, metadata={"help": "Teacher hidden layer to distil (None: last)."})
    learning_rate: float = field(default=3e-4, metadata={"help": "Peak lr (Sec. III-A1)."})
    per_device_train_batch_size: int = field(default=64, metadata={"help": "Batch size 64 (Sec. III-A1)."})
    max_steps: int = field(default=540_000, metadata={"help": "540k steps (Sec. III-A1)."})
    warmup_steps: float = field(default=10_000, metadata={"help": "Linear warmup steps before cosine decay."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Warmup then cosine decay."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep `audio`: the collator needs it."})

    def __post_init__(self):
        super().__post_init__()
        for name in ("reconstruction_weight", "distillation_weight", "diversity_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")


@dataclass
class HEARMAMTrainingArguments(TrainingArguments):
    """``TrainingArguments`` for stage 2 (Sec. III-A1): 40 % masking, AdamW, peak lr 5e-4, batch 128, 450k steps,
    10k warmup steps then cosine decay."""

    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "The stage-1 tokenizer folder (frozen; its codes are the targets)."}
    )
    mask_time_prob: float | None = field(
        default=None, metadata={"help": "Share of valid tokens masked independently (None: the model config's 0.4)."}
    )
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak lr (Sec. III-A1)."})
    per_device_train_batch_size: int = field(default=128, metadata={"help": "Batch size 128 (Sec. III-A1)."})
    max_steps: int = field(default=450_000, metadata={"help": "450k steps (Sec. III-A1)."})
    warmup_steps: float = field(default=10_000, metadata={"help": "Linear warmup steps before cosine decay."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Warmup then cosine decay."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep `audio`: the collator needs it."})

    def __post_init__(self):
        super().__post_init__()
        if self.mask_time_prob is not None and not 0.0 < self.mask_time_prob < 1.0:
            raise ValueError(f"mask_time_prob must be in (0, 1), got {self.mask_time_prob}.")


@dataclass
class HEARFineTuningArguments(TrainingArguments):
    """``TrainingArguments`` for stage 3 (Sec. III-A2, Table II; ESC-50 values as defaults: batch 16, lr 2e-4,
    80 epochs) and the Table IV setting: ``full`` (proposed), ``without_spectrum``, ``transfer`` (acoustic model
    frozen) or ``scratch`` (no pre-training). The paper gives no scheduler or warmup for this stage: the
    defaults keep the pre-training recipe's cosine decay with a short warmup."""

    variant: str = field(default="full", metadata={"help": f"Table IV setting, one of {HEAR_VARIANTS}."})
    pretrained_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Stage-2 acoustic model folder (not used by `scratch`)."}
    )
    learning_rate: float = field(default=2e-4, metadata={"help": "Table II (ESC-50: 2e-4)."})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Table II (ESC-50: 16)."})
    num_train_epochs: float = field(default=80.0, metadata={"help": "Table II (ESC-50: 80 epochs)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Cosine decay (paper silent)."})
    warmup_steps: float = field(default=0.05, metadata={"help": "Warmup, a ratio of all steps (paper silent)."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep `audio`: the collator needs it."})

    def __post_init__(self):
        super().__post_init__()
        if self.variant not in HEAR_VARIANTS:
            raise ValueError(f"variant must be one of {HEAR_VARIANTS}, got {self.variant!r}.")
        if self.variant != "scratch" and not self.pretrained_model_name_or_path:
            raise ValueError(
                f"variant={self.variant!r} fine-tunes a pre-trained acoustic model: set pretrained_model_name_or_path "
                "(the pretrain_hear.py output folder), or use variant='scratch'."
            )


@dataclass
class HEARPretrainingDataArguments:
    """Audio for stages 1-2 and the model's size. The paper pre-trains on AudioSet + VGG-Sound + LAION-Audio-630k
    cut into blocks of at most 6 s, dropping blocks under 1 s (Sec. III-A1)."""

    dataset: str = field(
        default="audioset",
        metadata={"help": "'audioset' (hf_audio_cr.data.load_audioset, streamed), or a folder of audio files / "
                          "parquet files with an `audio` column."},
    )
    data_path: str | None = field(default=None, metadata={"help": "AudioSet: Hub id or local parquet folder."})
    audioset_config: str = field(default="unbalanced", metadata={"help": "AudioSet config: 'balanced' or 'unbalanced'."})
    max_seconds: float = field(default=6.0, metadata={"help": "Random crop of each clip (6 s blocks)."})
    min_seconds: float = field(default=1.0, metadata={"help": "Clips shorter than this are skipped and counted."})
    precompute_teacher_features: bool = field(
        default=False, metadata={"help": "Stage 1: run the teacher once over the set into a datasets column."}
    )
    config_overrides: dict | None = field(
        default=None, metadata={"help": "Fields of HEARTokenizerConfig (stage 1) or HEARConfig (stage 2)."}
    )


def check_config_overrides(config_class, overrides: dict | None, what: str = "config_overrides") -> dict:
    """Refuse keys that are not fields of ``config_class`` (a typo such as ``hiden_size`` would otherwise train
    the default size and write a stray key into config.json), naming the closest field."""
    import difflib

    overrides = dict(overrides or {})
    known = set(config_class().to_dict())
    unknown = sorted(set(overrides) - known)
    if unknown:
        hints = [f"{key!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(key, known, 1)) else repr(key)
                 for key in unknown]
        raise ValueError(f"{what}: unknown {config_class.__name__} fields {', '.join(hints)}.")
    return overrides


@dataclass
class HEARDownstreamDataArguments:
    """Which downstream set to fine-tune on and how to evaluate it."""

    task: str = field(default="esc50", metadata={"help": f"One of {DOWNSTREAM_TASKS}."})
    data_path: str | None = field(default=None, metadata={"help": "Hub id or local folder of the set (see hf_audio_cr.data)."})
    test_folds: list[int] = field(
        default_factory=lambda: [1, 2, 3, 4, 5], metadata={"help": "ESC-50: held-out folds of the cross-validation."}
    )
    config_overrides: dict | None = field(
        default=None, metadata={"help": "HEARConfig fields for `scratch` without a pre-trained folder (e.g. tiny sizes)."}
    )
    max_seconds: float | None = field(
        default=6.0,
        metadata={"help": "Longest audio per clip: a random crop in training, windows (averaged) in evaluation. "
                          "6 s, the paper's pre-training block; ESC-50 (5 s) and Speech Commands (1 s) are whole."},
    )

    def __post_init__(self):
        # before any data is read: a typo such as `hiden_size` would train the default width
        from ..models.hear import HEARConfig

        self.config_overrides = check_config_overrides(HEARConfig, self.config_overrides) or None
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0 (or null for whole clips), got {self.max_seconds}.")
