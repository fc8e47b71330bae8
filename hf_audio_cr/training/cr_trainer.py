"""Consistency-regularised fine-tuning (Sadhu & Wang, Eq. 6) and its semi-supervised form (Eq. 7).

``CRTrainingArguments`` carries the paper's hyperparameters with the AS-20k settings of Sec. 4 as
defaults (except the number of views and the batch size, see its docstring); ``CRTrainer`` and ``SemiSupervisedCRTrainer`` override only the loss, the sampler, the
optimizer's parameter groups (layer-wise lr decay) and, for two streams, the unlabeled side stream.
"""
import math
import re

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, RandomSampler
from transformers import Trainer
from transformers.trainer_utils import has_length
from transformers.utils import logging

from .augment import make_views, make_views_with_frames, raw_zero_fill_value
from .cr_config import SPEC_AUGMENT_FILLS, UNLABELED_AUGMENTATIONS, CRTrainingArguments, _fill_number  # noqa: F401
from .distributed import PerRankSeedCallback
from .loss_terms import LossTermsMixin
from .losses import MULTI_LABEL, SINGLE_LABEL, consistency_loss_for
from .sampling import AudiosetWeightedSampler, AudiosetWeightedStream, audioset_sample_weights
from .stream_resume import StreamResumeMixin

# AudioMAEFeatureExtractor's AudioSet statistics, used when the trainer is given no feature extractor
AUDIOSET_FBANK_MEAN, AUDIOSET_FBANK_STD = -4.2677393, 4.5689974

logger = logging.get_logger(__name__)


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


class CRTrainer(LossTermsMixin, StreamResumeMixin, Trainer):
    """``Trainer`` whose training loss is Eq. 6: ``mean_views supervised loss + cr_weight * L_CR``.

    Works with any audio classifier whose ``input_values`` are ``[batch, frames, freq]`` features
    (CR-AudioMAE, transformers' ``ASTForAudioClassification``, HEAR). ``compute_loss`` builds ``num_views``
    augmented views of the batch (mixup once per clip, then per-view SpecAugment and random erasing; the model
    adds its own patch drop or dropout), runs them as one batched forward and logs ``bce_loss`` (the supervised
    term) and ``cr_loss`` next to ``loss``. Other inputs that share the frames (HEAR's ``power_spectrum`` and
    ``attention_mask``) follow the same mixup and time masks (``make_views_with_frames``).

    The form of the consistency term follows ``model.config.problem_type`` (inferred from the labels when
    unset, as transformers does): multi-label -> sigmoid BCE targets (Eq. 2-5) with BCE supervision on
    multi-hot float labels; single-label -> CR-CTC's softmax KL with cross-entropy on class ids (mixup mixes
    their one-hot targets). Evaluation scores the clean input, once; with ``eval_loss_terms`` it also logs the
    terms of Eq. 6 on views of each evaluation batch (``eval_bce_loss``, ``eval_cr_loss``, ...).

    Diagnostics (``log_diagnostics``), averaged over the logging period: ``pred_std`` — std across the
    batch's clips of each class's probability (view 1), mean over the classes present in the batch (all
    classes for single-label): near 0 means outputs that ignore the input; ``logit_std`` the same on
    logits; ``view_gap`` — mean |p_view - mean over views p|; ``view_agreement`` — share of clips whose top
    class is the same in every view; ``cr_weight`` when ramped up (``cr_rampup_ratio``).
    """

    # compute_loss returns a per-batch mean: the Trainer divides it for gradient accumulation.
    loss_is_scaled_for_ga = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, CRTrainingArguments):
            raise TypeError(f"{type(self).__name__} needs CRTrainingArguments, got {type(self.args).__name__}.")
        streamed = self.train_dataset is not None and not has_length(self.train_dataset)
        if self.args.weighted_sampling and streamed and not isinstance(self.train_dataset, AudiosetWeightedStream):
            raise ValueError(
                "weighted_sampling on a streaming train_dataset needs it wrapped as AudiosetWeightedStream(dataset, "
                "stream_class_weights(load_audioset_labels(...)), epoch_length) (scripts/train_cr_audiomae.py does "
                "this for streaming: true), or load a map-style training set with streaming=False."
            )
        self.add_callback(PerRankSeedCallback())  # each rank its own augmentation draws (seed + rank)
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
        per_clip = next((c for c in candidates if c is not None and hasattr(c, "num_mel_bins")), None)
        if extractor is None and per_clip is not None:
            # e.g. HEAR: each clip normalised over its own frames, no dataset statistics: 0 is the clip's mean
            return 0.0
        if extractor is None:
            logger.warning(
                "CRTrainer found no feature extractor (data_collator.feature_extractor or processing_class) to read "
                "the fbank mean/std from: SpecAugment fills the raw zero of AudioSet's statistics "
                f"({AUDIOSET_FBANK_MEAN}, {AUDIOSET_FBANK_STD}). Pass processing_class=feature_extractor or set "
                "spec_augment_fill to a number."
            )
            return (0.0 - AUDIOSET_FBANK_MEAN) / (2.0 * AUDIOSET_FBANK_STD)
        return raw_zero_fill_value(extractor)

    def _views(self, inputs, labels, augment=UNLABELED_AUGMENTATIONS):
        """Views of ``input_values`` and of every other tensor input; returns (model inputs, mixed labels).
        Given the ``input_values`` tensor alone, returns (views tensor, mixed labels)."""
        args = self.args
        if isinstance(inputs, torch.Tensor):
            model_inputs, labels = self._views({"input_values": inputs}, labels, augment)
            return model_inputs["input_values"], labels
        settings = dict(
            num_views=args.num_views,
            mixup_prob=args.mixup_prob if "mixup" in augment else 0.0,
            mixup_alpha=args.mixup_alpha,
            freq_mask=args.freq_mask if "specaugment" in augment else 0,
            time_mask=args.time_mask if "specaugment" in augment else 0,
            erase_prob=args.erase_prob if "erasing" in augment else 0.0,
            mask_value=self.spec_augment_fill_value,
        )
        input_values = inputs["input_values"]
        others = {k: v for k, v in inputs.items() if k not in ("input_values", "labels") and isinstance(v, torch.Tensor)}
        if not others:
            views, labels = make_views(input_values, labels, **settings)
            return {"input_values": views}, labels
        frames = {k: v for k, v in others.items() if tuple(v.shape[:2]) == tuple(input_values.shape[:2])}
        views, repeated, labels = make_views_with_frames(input_values, labels, frames, **settings)
        for name, value in others.items():  # per-clip inputs: one copy per view
            if name not in repeated:
                repeated[name] = value.repeat(args.num_views, *([1] * (value.dim() - 1)))
        return {"input_values": views, **repeated}, labels

    def problem_type(self, model, labels) -> str:
        """``model.config.problem_type``, else transformers' rule: integer class ids -> single-label."""
        config = getattr(self.accelerator.unwrap_model(model), "config", None)
        problem = getattr(config, "problem_type", None)
        if problem is None:
            problem = SINGLE_LABEL if not labels.is_floating_point() else MULTI_LABEL
        if problem not in (SINGLE_LABEL, MULTI_LABEL):
            raise ValueError(
                f"{type(self).__name__} trains classifiers; model.config.problem_type is {problem!r}, expected "
                f"{MULTI_LABEL!r} or {SINGLE_LABEL!r}."
            )
        return problem

    def _check_training_inputs(self, inputs, problem=MULTI_LABEL):
        if "input_values" not in inputs or inputs.get("labels") is None:
            raise ValueError(
                f"{type(self).__name__} trains on batches with 'input_values' and 'labels', got keys "
                f"{sorted(inputs)}; use AudioClassificationCollator(feature_extractor) as data_collator."
            )
        labels = inputs["labels"]
        if problem == MULTI_LABEL and (labels.dim() != 2 or not labels.is_floating_point()):
            raise ValueError(
                f"labels must be float multi-hot [batch, num_classes] for {MULTI_LABEL}, got {labels.dtype} "
                f"{tuple(labels.shape)}; for one class per clip set model.config.problem_type={SINGLE_LABEL!r} "
                "and pass class ids."
            )
        if problem == SINGLE_LABEL and (labels.dim() != 1 or labels.is_floating_point()):
            raise ValueError(
                f"labels must be integer class ids [batch] for {SINGLE_LABEL}, got {labels.dtype} "
                f"{tuple(labels.shape)}; for multi-hot targets set model.config.problem_type={MULTI_LABEL!r}."
            )

    def current_cr_scale(self) -> float:
        """Ramp-up factor of lambda: exp(-5 (1 - t)^2) for t = step / (cr_rampup_ratio * max_steps) < 1, else 1."""
        ratio = self.args.cr_rampup_ratio
        total = self.state.max_steps or self.args.max_steps
        if ratio <= 0 or not total or total <= 0:
            return 1.0
        t = min(1.0, self.state.global_step / (ratio * total))
        return float(math.exp(-5.0 * (1.0 - t) ** 2)) if t < 1.0 else 1.0

    def _supervised_terms(self, logits, targets, problem):
        """Mean over the k views of BCE (multi-label) or soft-target cross-entropy (single-label), Eq. 1 per view."""
        repeated = targets.float().repeat(self.args.num_views, 1)
        if problem == SINGLE_LABEL:
            return F.cross_entropy(logits, repeated)
        return F.binary_cross_entropy_with_logits(logits, repeated)

    @torch.no_grad()
    def _diagnostics(self, logits_views, targets, problem):
        if not self.args.log_diagnostics:
            return {}
        probs = logits_views.softmax(-1) if problem == SINGLE_LABEL else logits_views.sigmoid()
        present = torch.ones(probs.shape[-1], dtype=torch.bool, device=probs.device)
        if problem == MULTI_LABEL and bool((targets > 0).any()):
            present = (targets > 0).any(dim=0)
        first, first_logits = probs[0][:, present], logits_views[0][:, present]
        top = probs.argmax(-1)  # [k, batch]
        terms = {
            "pred_std": first.std(dim=0).mean() if first.shape[0] > 1 else first.new_zeros(()),
            "logit_std": first_logits.std(dim=0).mean() if first.shape[0] > 1 else first.new_zeros(()),
            "view_gap": (probs - probs.mean(0, keepdim=True)).abs().mean(),
            "view_agreement": (top == top[:1]).all(dim=0).float().mean(),
        }
        return terms

    def _checked_targets(self, model, inputs):
        """``(problem_type, targets)`` of a checked training batch: multi-hot labels as they are, class ids one-hot
        (mixup then mixes the one-hot rows)."""
        labels = inputs.get("labels")
        problem = self.problem_type(model, labels) if labels is not None else MULTI_LABEL
        self._check_training_inputs(inputs, problem)
        num_labels = self.accelerator.unwrap_model(model).config.num_labels
        return problem, F.one_hot(labels.long(), num_labels).float() if problem == SINGLE_LABEL else labels

    def _objective(self, model, inputs):
        """Eq. 6 on ``num_views`` views of the batch: (loss, model outputs, the terms to log)."""
        problem, targets = self._checked_targets(model, inputs)
        model_inputs, targets = self._views(inputs, targets)
        outputs = model(**model_inputs)
        logits = outputs.logits.float()
        k, batch = self.args.num_views, inputs["labels"].shape[0]
        supervised = self._supervised_terms(logits, targets, problem)
        cr = consistency_loss_for(problem)(logits.view(k, batch, -1))
        weight = self.args.cr_weight * self.current_cr_scale()
        loss = supervised + weight * cr if weight else supervised
        terms = dict(bce_loss=supervised, cr_loss=cr, **self._diagnostics(logits.view(k, batch, -1), targets, problem))
        if self.args.cr_rampup_ratio > 0:
            terms["cr_weight"] = torch.tensor(weight)
        return loss, outputs, terms

    def _record_eval_terms(self, model, inputs):
        """Eq. 6's terms on views of an evaluation batch; the forked RNG leaves the training draws as they were."""
        devices = [self.args.device] if self.args.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            self._record(**self._objective(model, inputs)[2])

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:  # evaluation: the clean input, once
            if self.args.eval_loss_terms and inputs.get("labels") is not None:
                self._record_eval_terms(model, inputs)
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss, outputs, terms = self._objective(model, inputs)
        self._record(**terms)
        return (loss, outputs) if return_outputs else loss

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if self.args.weighted_sampling and dataset is not None and has_length(dataset):
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            weights = audioset_sample_weights(
                dataset, with_ancestors=self.args.weighted_sampling_ancestors, label_set=self.args.sampling_label_set
            )
            return AudiosetWeightedSampler(
                weights, self.args.epoch_length, seed=seed, replacement=self.args.weighted_sampling_replacement
            )
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
    size built by ``Trainer``'s own loader code (so map-style sets are sharded by sampler and streaming
    ``IterableDataset``s are dispatched/sharded per process like the main loader), cycled endlessly with
    ``set_epoch`` at each pass. Its position (pass, batches) is checkpointed per process with the RNG state
    (:class:`~hf_audio_cr.training.stream_resume.StreamResumeMixin`), so a resumed run continues it exactly.
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
        """``Trainer``'s own loader code (worker seeding per rank, prefetch, persistent workers, accelerate's
        sharding) with ``unlabeled_ratio`` times the batch size and the unlabeled collator."""
        labeled_collator, self.data_collator = self.data_collator, self.unlabeled_data_collator
        try:
            return self._get_dataloader(
                self.unlabeled_dataset, "unlabeled", self._train_batch_size * self.args.unlabeled_ratio,
                sampler_fn=RandomSampler, is_training=True,  # accelerate swaps in its seedable, sharded sampler
            )
        finally:
            self.data_collator = labeled_collator

    def _cycle(self, loader, epoch=0, batches=0):
        """The unlabeled loader, pass after pass (``set_epoch`` at each); full batches only (a pass's short last
        one is dropped). ``self._positions()["unlabeled"]`` is the pass and the batches taken from it, which
        checkpoints carry. Resuming at ``(epoch, batches)`` opens that pass and reads past its first ``batches``
        batches now, not at the first step: a DataLoader's iterator draws its base seed from the global RNG, and
        the uninterrupted run drew it before the checkpoint's RNG state was saved."""
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        self._positions()["unlabeled"] = {"epoch": epoch, "batches": batches}
        iterator = iter(loader)
        for _ in range(batches):
            next(iterator)
        return self._unlabeled_passes(loader, iterator, epoch, resumed=batches > 0)

    def _unlabeled_passes(self, loader, iterator, epoch, resumed):
        size = self._train_batch_size * self.args.unlabeled_ratio
        while True:
            position, full = self._positions()["unlabeled"], 0
            for batch in iterator:
                position["batches"] += 1
                if len(batch["input_values"]) < size:
                    continue
                full += 1
                yield batch
            if not full and not resumed:
                raise ValueError(
                    f"unlabeled_dataset gave no full batch of {size} clips per process; lower unlabeled_ratio or the "
                    "batch size, or add unlabeled clips."
                )
            epoch, resumed = epoch + 1, False
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(epoch)
            self._positions()["unlabeled"] = {"epoch": epoch, "batches": 0}
            iterator = iter(loader)

    def get_train_dataloader(self):
        self._unlabeled_loader = self.get_unlabeled_dataloader()
        self._unlabeled_batches = self._cycle(self._unlabeled_loader)
        return super().get_train_dataloader()

    def _load_rng_state(self, checkpoint):
        # Called once when a run resumes, before its first step: continue the unlabeled stream where it stood,
        # then restore the RNG state (the reads past the consumed batches must not shift it).
        position = self.saved_stream_position(checkpoint, "unlabeled")
        if position is not None and getattr(self, "_unlabeled_loader", None) is not None:
            self._unlabeled_batches = self._cycle(self._unlabeled_loader, position["epoch"], position["batches"])
        super()._load_rng_state(checkpoint)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        problem, targets = self._checked_targets(model, inputs)
        if self._unlabeled_batches is None:  # compute_loss called outside train()
            self._unlabeled_loader = self.get_unlabeled_dataloader()
            self._unlabeled_batches = self._cycle(self._unlabeled_loader)
        unlabeled = self._prepare_inputs(next(self._unlabeled_batches))
        if "input_values" not in unlabeled:
            raise ValueError(f"unlabeled batches need 'input_values', got keys {sorted(unlabeled)}.")
        unlabeled = {k: v for k, v in unlabeled.items() if k != "labels"}
        k, batch = self.args.num_views, inputs["labels"].shape[0]
        labeled_inputs, targets = self._views(inputs, targets)
        unlabeled_inputs, _ = self._views(unlabeled, None, augment=self.args.unlabeled_augment)
        if set(labeled_inputs) != set(unlabeled_inputs):
            raise ValueError(
                f"labeled and unlabeled batches must carry the same inputs, got {sorted(labeled_inputs)} and "
                f"{sorted(unlabeled_inputs)}; use the same collator for both."
            )
        model_inputs = {
            name: torch.cat([value, unlabeled_inputs[name].to(value.dtype)]) for name, value in labeled_inputs.items()
        }
        outputs = model(**model_inputs)
        logits = outputs.logits.float()
        labeled_logits, unlabeled_logits = logits[: k * batch], logits[k * batch :]
        cr_fn = consistency_loss_for(problem)
        supervised = self._supervised_terms(labeled_logits, targets, problem)
        cr = cr_fn(labeled_logits.view(k, batch, -1))
        unlabeled_cr = cr_fn(unlabeled_logits.view(k, -1, logits.shape[-1]))
        scale = self.current_cr_scale()
        loss = supervised + scale * (self.args.cr_weight * cr + self.args.unlabeled_cr_weight * unlabeled_cr)
        self._record(bce_loss=supervised, cr_loss=cr, unlabeled_cr_loss=unlabeled_cr,
                     **self._diagnostics(labeled_logits.view(k, batch, -1), targets, problem))
        if self.args.cr_rampup_ratio > 0:
            self._record(cr_weight=torch.tensor(self.args.cr_weight * scale))
        return (loss, outputs) if return_outputs else loss
