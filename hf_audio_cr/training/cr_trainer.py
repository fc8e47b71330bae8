"""Consistency-regularised fine-tuning (Sadhu & Wang, Eq. 6) and its semi-supervised form (Eq. 7).

``CRTrainingArguments`` carries the paper's hyperparameters with the AS-20k settings of Sec. 4 as
defaults; ``CRTrainer`` and ``SemiSupervisedCRTrainer`` override only the loss, the sampler, the
optimizer's parameter groups (layer-wise lr decay) and, for two streams, the unlabeled side stream.
"""
import re
from collections import defaultdict
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset, RandomSampler
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import has_length
from transformers.utils import logging

from .augment import make_views, raw_zero_fill_value
from .distributed import PerRankSeedCallback
from .losses import consistency_loss
from .sampling import AudiosetWeightedSampler, audioset_sample_weights

UNLABELED_AUGMENTATIONS = ("mixup", "specaugment", "erasing")
SPEC_AUGMENT_FILLS = ("raw_zero", "mean")
# AudioMAEFeatureExtractor's AudioSet statistics, used when the trainer is given no feature extractor
AUDIOSET_FBANK_MEAN, AUDIOSET_FBANK_STD = -4.2677393, 4.5689974

logger = logging.get_logger(__name__)


def _fill_number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass
class CRTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus the CR-AudioMAE hyperparameters (Sec. 3-4).

    Defaults are the paper's AS-20k run: lambda 2, mixup 0.5 with Beta(10, 10), SpecAugment 48/192,
    random erasing 0.25, AdamW lr 1e-3, weight decay 5e-4, layer-wise lr decay 0.75, 4 warmup epochs of 60
    then cosine (AudioMAE fine-tuning); ``num_views`` defaults to Eq. 4's two views (the paper's best
    AS-20k run uses 6, see ``configs/cr_audiomae/as20k_cr.yaml``).
    """

    cr_weight: float = field(
        default=2.0, metadata={"help": "lambda of Eq. 6 (lambda_1 of Eq. 7): weight of the consistency loss."}
    )
    num_views: int = field(default=2, metadata={"help": "k: augmented views per clip, run as one batched forward."})
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
    layer_decay: float = field(default=0.75, metadata={"help": "Layer-wise lr decay: block i gets lr * decay^(L + 1 - i)."})
    weighted_sampling: bool = field(
        default=False, metadata={"help": "AudioMAE's class-balancing WeightedRandomSampler (map-style datasets only)."}
    )
    epoch_length: int | None = field(
        default=None, metadata={"help": "Clips drawn per epoch by the weighted sampler (AudioMAE AS-2M: 200000)."}
    )
    # TrainingArguments fields whose defaults become the paper's.
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
        if not 0.0 < self.layer_decay <= 1.0:
            raise ValueError(f"layer_decay must be in (0, 1], got {self.layer_decay}.")
        if self.spec_augment_fill not in SPEC_AUGMENT_FILLS and _fill_number(self.spec_augment_fill) is None:
            raise ValueError(
                f"spec_augment_fill must be one of {SPEC_AUGMENT_FILLS} or a number, got {self.spec_augment_fill!r}."
            )


def layer_id(name: str, num_layers: int) -> int:
    """Depth of a parameter for layer-wise lr decay: embeddings 0, block ``i`` ``i + 1``, the rest ``L + 1``."""
    match = re.search(r"(?:^|\.)layers?\.(\d+)\.", name)
    if match:
        return int(match.group(1)) + 1
    if "embeddings" in name or "cls_token" in name:
        return 0
    return num_layers + 1


def layer_decay_parameter_groups(model, learning_rate, weight_decay, layer_decay, decay_parameter_names):
    """AdamW groups with lr scaled by ``layer_decay ** (L + 1 - depth)`` (BEiT/MAE/AudioMAE fine-tuning);
    biases, norms, the cls token and position embeddings get no weight decay."""
    num_layers = model.config.num_hidden_layers
    groups = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth = layer_id(name, num_layers)
        decay = name in decay_parameter_names and param.ndim > 1 and "cls_token" not in name and "position" not in name
        group = groups.setdefault(
            (depth, decay),
            {
                "params": [],
                "lr": learning_rate * layer_decay ** (num_layers + 1 - depth),
                "weight_decay": weight_decay if decay else 0.0,
            },
        )
        group["params"].append(param)
    return list(groups.values())


class CRTrainer(Trainer):
    """``Trainer`` whose training loss is Eq. 6: ``mean_views BCE + cr_weight * L_CR``.

    ``compute_loss`` builds ``num_views`` augmented views of the batch (mixup once per clip, then per-view
    SpecAugment and random erasing; the model adds its own patch drop), runs them as one batched forward,
    and logs ``bce_loss`` and ``cr_loss`` next to ``loss``. Evaluation runs the clean input once. With
    ``cr_weight=0, num_views=1`` and no augmentation it is plain BCE fine-tuning.
    """

    # compute_loss returns a per-batch mean: the Trainer divides it for gradient accumulation.
    loss_is_scaled_for_ga = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, CRTrainingArguments):
            raise TypeError(f"{type(self).__name__} needs CRTrainingArguments, got {type(self.args).__name__}.")
        if self.args.weighted_sampling and self.train_dataset is not None and not has_length(self.train_dataset):
            raise ValueError(
                "weighted_sampling needs a map-style train_dataset (a streaming dataset has no length to sample "
                "from); set weighted_sampling=False or load the training set with streaming=False."
            )
        self.add_callback(PerRankSeedCallback())  # each rank its own augmentation draws (seed + rank)
        self._loss_terms = defaultdict(list)
        self.spec_augment_fill_value = self._spec_augment_fill_value()

    def _spec_augment_fill_value(self) -> float:
        """SpecAugment's fill in normalised units: by default 0 of the raw fbank under the feature extractor's
        own mean/std (the collator's, else ``processing_class``), as AudioMAE masks before normalising."""
        fill = self.args.spec_augment_fill
        if fill == "mean":
            return 0.0
        if fill != "raw_zero":
            return _fill_number(fill)
        candidates = (getattr(self.data_collator, "feature_extractor", None), self.processing_class)
        extractor = next((c for c in candidates if c is not None and hasattr(c, "mean") and hasattr(c, "std")), None)
        if extractor is None:
            logger.warning(
                "CRTrainer found no feature extractor (data_collator.feature_extractor or processing_class) to read "
                "the fbank mean/std from: SpecAugment fills the raw zero of AudioSet's statistics "
                f"({AUDIOSET_FBANK_MEAN}, {AUDIOSET_FBANK_STD}). Pass processing_class=feature_extractor or set "
                "spec_augment_fill to a number."
            )
            return (0.0 - AUDIOSET_FBANK_MEAN) / (2.0 * AUDIOSET_FBANK_STD)
        return raw_zero_fill_value(extractor)

    def _views(self, input_values, labels, augment=UNLABELED_AUGMENTATIONS):
        args = self.args
        return make_views(
            input_values,
            labels,
            num_views=args.num_views,
            mixup_prob=args.mixup_prob if "mixup" in augment else 0.0,
            mixup_alpha=args.mixup_alpha,
            freq_mask=args.freq_mask if "specaugment" in augment else 0,
            time_mask=args.time_mask if "specaugment" in augment else 0,
            erase_prob=args.erase_prob if "erasing" in augment else 0.0,
            mask_value=self.spec_augment_fill_value,
        )

    def _check_training_inputs(self, inputs):
        if "input_values" not in inputs or inputs.get("labels") is None:
            raise ValueError(
                f"{type(self).__name__} trains on batches with 'input_values' and multi-hot 'labels', got keys "
                f"{sorted(inputs)}; use AudioClassificationCollator(feature_extractor) as data_collator."
            )
        if inputs["labels"].dim() != 2 or not inputs["labels"].is_floating_point():
            raise ValueError(
                f"labels must be float multi-hot [batch, num_classes], got {inputs['labels'].dtype} "
                f"{tuple(inputs['labels'].shape)}: consistency regularisation is defined for multi-label sigmoids."
            )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:  # evaluation: the clean input, once
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        self._check_training_inputs(inputs)
        labels = inputs["labels"]
        views, targets = self._views(inputs["input_values"], labels)
        outputs = model(input_values=views)
        logits = outputs.logits.float()
        # BCE over all k*B rows (mean) equals the mean of the k views' BCE (Eq. 1 per view).
        bce = F.binary_cross_entropy_with_logits(logits, targets.float().repeat(self.args.num_views, 1))
        cr = consistency_loss(logits.view(self.args.num_views, labels.shape[0], -1))
        loss = bce + self.args.cr_weight * cr if self.args.cr_weight else bce
        self._record(bce_loss=bce, cr_loss=cr)
        return (loss, outputs) if return_outputs else loss

    def _record(self, **terms):
        for name, value in terms.items():
            self._loss_terms[name].append(value.detach())

    def log(self, logs, start_time=None):
        # Training logs carry "loss": add the mean of each loss term since the last log, averaged over processes.
        if "loss" in logs and self._loss_terms:
            names = sorted(self._loss_terms)
            means = torch.stack([torch.stack(self._loss_terms[n]).mean() for n in names])
            means = self.accelerator.reduce(means, reduction="mean")
            logs.update({n: round(v, 6) for n, v in zip(names, means.tolist())})
            self._loss_terms.clear()
        super().log(logs, start_time)

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if self.args.weighted_sampling and dataset is not None and has_length(dataset):
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return AudiosetWeightedSampler(audioset_sample_weights(dataset), self.args.epoch_length, seed=seed)
        return super()._get_train_sampler(train_dataset)

    def create_optimizer(self, model=None):
        opt_model = self.model if model is None else model
        if self.optimizer is None and self.args.layer_decay < 1.0 and hasattr(opt_model, "config"):
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            groups = layer_decay_parameter_groups(
                opt_model,
                self.args.learning_rate,
                self.args.weight_decay,
                self.args.layer_decay,
                set(self.get_decay_parameter_names(opt_model)),
            )
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return super().create_optimizer(model)


class SemiSupervisedCRTrainer(CRTrainer):
    """Eq. 7: ``BCE(labeled) + cr_weight * L_CR(labeled) + unlabeled_cr_weight * L_CR(unlabeled)``.

    Every step takes a labeled batch of ``B`` clips and ``unlabeled_ratio * B`` unlabeled clips; the views of
    both run as one batched forward. The labeled views get mixup and random erasing, the unlabeled ones
    only ``unlabeled_augment`` (paper: SpecAugment; mixup/erasing there hurt, Table 3 b-c) plus patch drop.

    Two streams: the labeled set stays the Trainer's own dataloader, so epochs, the weighted sampler,
    gradient accumulation and ``resume_from_checkpoint`` batch skipping work unchanged. The unlabeled set is
    a side stream built in ``get_train_dataloader``: a ``DataLoader`` of ``unlabeled_ratio`` times the batch
    size passed through ``accelerator.prepare`` (so map-style sets are sharded by sampler and streaming
    ``IterableDataset``s are dispatched/sharded per process like the main loader), cycled endlessly with
    ``set_epoch`` at each pass. Its position is not checkpointed: a resumed run starts it at a fresh
    shuffle (epoch = the resumed global step) rather than replaying the first unlabeled batches.
    """

    def __init__(self, *args, unlabeled_dataset=None, unlabeled_data_collator=None, **kwargs):
        super().__init__(*args, **kwargs)
        if unlabeled_dataset is None:
            raise ValueError("SemiSupervisedCRTrainer needs unlabeled_dataset (the unlabeled stream of Eq. 7).")
        if self.args.num_views < 2:
            raise ValueError("SemiSupervisedCRTrainer needs num_views >= 2: unlabeled clips only train through consistency.")
        self.unlabeled_dataset = unlabeled_dataset
        self.unlabeled_data_collator = unlabeled_data_collator or self.data_collator
        self._unlabeled_batches = None

    def get_unlabeled_dataloader(self) -> DataLoader:
        dataset = self.unlabeled_dataset
        params = {
            "batch_size": self._train_batch_size * self.args.unlabeled_ratio,
            "collate_fn": self.unlabeled_data_collator,
            "num_workers": self.args.dataloader_num_workers,
            "pin_memory": self.args.dataloader_pin_memory,
            "drop_last": True,
        }
        if not isinstance(dataset, IterableDataset):
            params["sampler"] = RandomSampler(dataset)  # accelerate swaps in its seedable, sharded sampler
        return self.accelerator.prepare(DataLoader(dataset, **params))

    def _cycle(self, loader, start_epoch):
        epoch = start_epoch
        while True:
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(epoch)
            empty = True
            for batch in loader:
                empty = False
                yield batch
            if empty:
                raise ValueError(
                    "unlabeled_dataset gave no full batch of "
                    f"{self._train_batch_size * self.args.unlabeled_ratio} clips per process; lower unlabeled_ratio "
                    "or the batch size, or add unlabeled clips."
                )
            epoch += 1

    def get_train_dataloader(self):
        self._unlabeled_batches = self._cycle(self.get_unlabeled_dataloader(), self.state.global_step)
        return super().get_train_dataloader()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        self._check_training_inputs(inputs)
        if self._unlabeled_batches is None:  # compute_loss called outside train()
            self._unlabeled_batches = self._cycle(self.get_unlabeled_dataloader(), self.state.global_step)
        unlabeled = self._prepare_inputs(next(self._unlabeled_batches))
        if "input_values" not in unlabeled:
            raise ValueError(f"unlabeled batches need 'input_values', got keys {sorted(unlabeled)}.")
        k, batch = self.args.num_views, inputs["labels"].shape[0]
        labeled_views, targets = self._views(inputs["input_values"], inputs["labels"])
        unlabeled_views, _ = self._views(unlabeled["input_values"], None, augment=self.args.unlabeled_augment)
        outputs = model(input_values=torch.cat([labeled_views, unlabeled_views.to(labeled_views.dtype)]))
        logits = outputs.logits.float()
        labeled_logits, unlabeled_logits = logits[: k * batch], logits[k * batch :]
        bce = F.binary_cross_entropy_with_logits(labeled_logits, targets.float().repeat(k, 1))
        cr = consistency_loss(labeled_logits.view(k, batch, -1))
        unlabeled_cr = consistency_loss(unlabeled_logits.view(k, -1, logits.shape[-1]))
        loss = bce + self.args.cr_weight * cr + self.args.unlabeled_cr_weight * unlabeled_cr
        self._record(bce_loss=bce, cr_loss=cr, unlabeled_cr_loss=unlabeled_cr)
        return (loss, outputs) if return_outputs else loss
