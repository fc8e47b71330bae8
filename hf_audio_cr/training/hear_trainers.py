"""HEAR's three training stages (Kawano & Sasaki, Sec. II-B to II-D, III-A) as ``Trainer`` subclasses.

1. ``HEARTokenizerTrainer`` (+ ``HEARTokenizerTrainingArguments``): Eq. 1 on a ``HEARTokenizerModel`` with a
   frozen teacher (or precomputed teacher features), Gumbel temperature annealed once per optimizer step.
2. ``HEARMAMTrainer`` (+ ``HEARMAMTrainingArguments``): masked acoustic modeling of a
   ``HEARForMaskedAcousticModeling`` against the codes of a frozen tokenizer.
3. ``HEARFineTuningTrainer`` (+ ``HEARFineTuningArguments``): downstream fine-tuning of
   ``HEARForAudioClassification`` in the paper's four settings (``hear_downstream.build_hear_classifier``).

Each ``*Arguments`` class has the paper's optimisation settings as defaults; ``configs/hear/*.yaml`` hold the
per-dataset values. Batches come from ``HEARPretrainingCollator`` (stages 1-2) or the data package's
``AudioClassificationCollator`` with ``HEARFeatureExtractor`` (stage 3).
"""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from ..data.collate import AudioClassificationCollator
from ..data.quality import BadAudioError
from ..models.hear import compute_mask_time_indices
from .hear_losses import hear_tokenizer_loss, masked_acoustic_modeling_loss
from .hear_config import (  # noqa: F401  the arguments live with the trainers' names, as before
    HEAR_VARIANTS,
    HEARFineTuningArguments,
    HEARMAMTrainingArguments,
    HEARPretrainingDataArguments,
    HEARTokenizerTrainingArguments,
    check_config_overrides,
)
from .hear_teachers import HEARTeacher



# ----------------------------------------------------------------------------------------------------------------
# Batching for stages 1-2
# ----------------------------------------------------------------------------------------------------------------
class HEARPretrainingCollator(AudioClassificationCollator):
    """Rows with audio -> ``input_values`` / ``attention_mask`` log-Mel frames for the tokenizer and MAM stages.

    Clips go through the data package's quality policy (skip-and-count while training) and are cut to
    ``max_seconds`` (the paper's 6 s blocks; a random crop starting on a token boundary, or the first
    ``max_seconds`` with ``random_crop=False``). With a ``teacher`` the batch also carries the teacher's inputs
    (``teacher_*`` keys) and ``num_samples``; with precomputed ``teacher_features`` / ``teacher_mask`` columns
    (``add_teacher_features``) those are cropped like the audio and padded to the batch's token count.
    """

    def __init__(
        self,
        feature_extractor,
        teacher: HEARTeacher | None = None,
        max_seconds: float | None = 6.0,
        random_crop: bool = True,
        seed: int | None = None,
        **kwargs,
    ):
        kwargs.setdefault("return_power_spectrum", False)  # stages 1-2 read only the log-Mel frames
        super().__init__(feature_extractor, **kwargs)
        # only the teacher's input features travel with the collator (into workers), never its weights
        self.teacher_inputs = teacher.input_processor() if teacher is not None else None
        self.max_seconds = max_seconds
        self.random_crop = random_crop
        # no seed: the global `random` module, which Trainer seeds per run and per DataLoader worker
        self._random = random.Random(seed) if seed is not None else random
        hop = getattr(feature_extractor, "hop_length", 160)
        self.token_samples = 2 * hop  # crops start on token boundaries so precomputed features stay aligned

    def _crop(self, wave: np.ndarray) -> tuple[np.ndarray, int]:
        """-> (crop, first token index)."""
        if self.max_seconds is None:
            return wave, 0
        size = int(self.max_seconds * self.quality.sampling_rate)
        if len(wave) <= size:
            return wave, 0
        start_token = self._random.randint(0, (len(wave) - size) // self.token_samples) if self.random_crop else 0
        start = start_token * self.token_samples
        return wave[start : start + size], start_token

    def __call__(self, rows: list) -> dict:
        if not rows:
            raise ValueError("HEARPretrainingCollator got an empty list of rows.")
        waves, kept, offsets = [], [], []
        for position, row in enumerate(rows):
            if self.audio_column not in row:
                raise KeyError(
                    f"row {position} has no {self.audio_column!r} column (columns: {sorted(row)}); with Trainer set "
                    "remove_unused_columns=False so the audio reaches the collator."
                )
            audio = row[self.audio_column]
            if isinstance(audio, dict) and audio.get("checked"):
                wave = audio["array"]
            else:
                wave = self.quality.check(audio, clip_id=self._clip_id(row, position))
            if wave is None:
                continue
            wave, offset = self._crop(np.asarray(wave, dtype=np.float32))
            waves.append(wave)
            kept.append(row)
            offsets.append(offset)
        if not waves:
            raise BadAudioError(
                f"every clip of this batch was rejected; counts so far: {self.quality.counts()}. Use a larger batch "
                "or drop bad rows first with AudioQualityPolicy.filter_dataset."
            )
        rate = self.quality.sampling_rate
        features = self.feature_extractor(waves, sampling_rate=rate, return_tensors="pt", **self.feature_extractor_kwargs)
        batch = {"input_values": features["input_values"], "attention_mask": features["attention_mask"]}
        if self.teacher_inputs is not None:
            batch.update({f"teacher_{k}": v for k, v in self.teacher_inputs(waves).items()})
            batch["num_samples"] = torch.tensor([len(w) for w in waves])
        elif "teacher_features" in kept[0]:
            batch.update(self._precomputed(kept, offsets, features["input_values"].shape[1] // 2))
        return batch

    @staticmethod
    def _precomputed(rows: list, offsets: list, num_tokens: int) -> dict:
        first = np.asarray(rows[0]["teacher_features"], dtype=np.float32)
        features = torch.zeros(len(rows), num_tokens, first.shape[-1])
        mask = torch.zeros(len(rows), num_tokens, dtype=torch.bool)
        for i, (row, offset) in enumerate(zip(rows, offsets)):
            values = np.asarray(row["teacher_features"], dtype=np.float32)[offset : offset + num_tokens]
            valid = np.asarray(row.get("teacher_mask", np.ones(len(values), bool)), dtype=bool)[offset : offset + num_tokens]
            features[i, : len(values)] = torch.from_numpy(values)
            mask[i, : len(valid)] = torch.from_numpy(valid)
        return {"teacher_features": features, "teacher_mask": mask}


# ----------------------------------------------------------------------------------------------------------------
# Trainers
# ----------------------------------------------------------------------------------------------------------------
class _LossTermsMixin:
    """Logs the mean of each recorded loss term since the last log next to ``loss`` (averaged over processes)."""

    # compute_loss returns a per-batch mean: the Trainer divides it for gradient accumulation.
    loss_is_scaled_for_ga = False

    def _record(self, **terms):
        if not hasattr(self, "_loss_terms"):
            self._loss_terms = defaultdict(list)
        for name, value in terms.items():
            self._loss_terms[name].append(torch.as_tensor(value, dtype=torch.float32).detach())

    def _extra_logs(self) -> dict:
        return {}

    def log(self, logs, start_time=None):
        if "loss" in logs:
            terms = getattr(self, "_loss_terms", None)
            if terms:
                names = sorted(terms)
                means = torch.stack([torch.stack(terms[n]).to(self.args.device).mean() for n in names])
                means = self.accelerator.reduce(means, reduction="mean")
                logs.update({n: round(v, 6) for n, v in zip(names, means.tolist())})
                terms.clear()
            logs.update(self._extra_logs())
        super().log(logs, start_time)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        # self-supervised objectives: evaluation reports the training objective itself
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None


class GumbelTemperatureCallback(TrainerCallback):
    """Anneals the tokenizer's Gumbel-softmax temperature once per optimizer step (tau <- max(0.5, 0.999995 tau),
    Sec. II-B): ``on_step_end`` runs after each optimizer step, not after each gradient-accumulation forward. The
    temperature is a persistent buffer of the model, so checkpoints carry it and ``resume_from_checkpoint``
    continues the schedule where it stopped."""

    def on_step_end(self, args, state, control, model=None, **kwargs):
        model.anneal_gumbel_temperature(1)


class HEARTokenizerTrainer(_LossTermsMixin, Trainer):
    """Stage 1: ``HEARTokenizerModel`` trained with Eq. 1.

    ``compute_loss`` runs the tokenizer (Gumbel-softmax codes while training), gets the teacher's features at
    the token rate -- from the frozen ``teacher`` (no gradient) on the batch's ``teacher_*`` inputs, or from the
    batch's precomputed ``teacher_features`` / ``teacher_mask`` -- and returns
    ``alpha * L_rec + beta * L_distill + gamma * L_div``; the three terms and the temperature are logged.
    """

    def __init__(self, *args, teacher: HEARTeacher | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, HEARTokenizerTrainingArguments):
            raise TypeError(f"{type(self).__name__} needs HEARTokenizerTrainingArguments, got {type(self.args).__name__}.")
        unwrapped = self.accelerator.unwrap_model(self.model)
        if not hasattr(unwrapped, "anneal_gumbel_temperature"):
            raise TypeError(f"{type(self).__name__} trains a HEARTokenizerModel, got {type(unwrapped).__name__}.")
        if teacher is not None:
            if teacher.hidden_size != unwrapped.config.teacher_hidden_size:
                raise ValueError(
                    f"The teacher's hidden size ({teacher.hidden_size}) differs from HEARTokenizerConfig."
                    f"teacher_hidden_size ({unwrapped.config.teacher_hidden_size}); build the tokenizer config with "
                    f"teacher_hidden_size={teacher.hidden_size}."
                )
            teacher = teacher.to(self.args.device).eval()
        self.teacher = teacher
        self.add_callback(GumbelTemperatureCallback())

    def teacher_targets(self, inputs: dict, num_tokens: int):
        """Teacher features at the token rate and their mask, from precomputed columns or the live teacher."""
        if inputs.get("teacher_features") is not None:
            features, mask = inputs["teacher_features"], inputs.get("teacher_mask")
            if features.shape[1] != num_tokens:
                raise ValueError(
                    f"precomputed teacher_features have {features.shape[1]} tokens, the tokenizer made {num_tokens}."
                )
            return features, mask
        if self.teacher is not None:
            teacher_inputs = {k[len("teacher_"):]: v for k, v in inputs.items() if k.startswith("teacher_")}
            if not teacher_inputs or "num_samples" not in inputs:
                raise ValueError(
                    "HEARTokenizerTrainer has a teacher but the batch has no teacher inputs: build the collator as "
                    "HEARPretrainingCollator(feature_extractor, teacher=teacher)."
                )
            return self.teacher(teacher_inputs, inputs["num_samples"], num_tokens)
        if self.args.distillation_weight > 0:
            raise ValueError(
                "distillation_weight > 0 needs teacher features: pass teacher= to HEARTokenizerTrainer (and to the "
                "collator), precompute them with add_teacher_features, or set distillation_weight=0."
            )
        return None, None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(input_values=inputs["input_values"], attention_mask=inputs.get("attention_mask"))
        token_mask = outputs.token_attention_mask
        teacher_features, teacher_mask = self.teacher_targets(inputs, token_mask.shape[1])
        terms = hear_tokenizer_loss(
            outputs.code_logits,
            outputs.reconstruction,
            outputs.teacher_prediction,
            inputs["input_values"],
            token_mask,
            teacher_features,
            teacher_mask,
            alpha=self.args.reconstruction_weight,
            beta=self.args.distillation_weight,
            gamma=self.args.diversity_weight,
        )
        if model.training:
            codes = outputs.codes[token_mask]
            self._record(
                reconstruction_loss=terms.reconstruction_loss,
                distillation_loss=terms.distillation_loss,
                diversity_loss=terms.diversity_loss,
                codes_used=torch.unique(codes).numel(),
            )
        return (terms.loss, outputs) if return_outputs else terms.loss

    def _extra_logs(self) -> dict:
        return {"gumbel_temperature": round(self.accelerator.unwrap_model(self.model).gumbel_temperature, 6)}


class HEARMAMTrainer(_LossTermsMixin, Trainer):
    """Stage 2: masked acoustic modeling (Sec. II-C) of a ``HEARForMaskedAcousticModeling``.

    The frozen ``acoustic_tokenizer`` (a stage-1 ``HEARTokenizerModel``, eval mode, no gradient) turns each batch into
    target codes (argmax of its code logits); each valid token is masked independently with probability
    ``mask_time_prob`` (40 %; padding is never masked), masked tokens are zeroed after the acoustic model's front
    end, and the loss is the cross-entropy at the masked positions only. Logs the masked-token accuracy and the
    realised mask ratio.
    """

    def __init__(self, *args, acoustic_tokenizer=None, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, HEARMAMTrainingArguments):
            raise TypeError(f"{type(self).__name__} needs HEARMAMTrainingArguments, got {type(self.args).__name__}.")
        if acoustic_tokenizer is None:
            raise ValueError("HEARMAMTrainer needs acoustic_tokenizer= (the stage-1 HEARTokenizerModel) for its targets.")
        config = self.accelerator.unwrap_model(self.model).config
        if acoustic_tokenizer.config.codebook_size != config.codebook_size:
            raise ValueError(
                f"The tokenizer has {acoustic_tokenizer.config.codebook_size} codes but the MAM head predicts "
                f"{config.codebook_size}; build HEARConfig(tokenizer_config=tokenizer.config)."
            )
        self.acoustic_tokenizer = acoustic_tokenizer.to(self.args.device).eval().requires_grad_(False)
        self.mask_time_prob = self.args.mask_time_prob if self.args.mask_time_prob is not None else config.mask_time_prob

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        input_values, attention_mask = inputs["input_values"], inputs.get("attention_mask")
        with torch.no_grad():
            codes, token_mask = self.acoustic_tokenizer.tokenize(input_values, attention_mask)
        mask_time_indices = compute_mask_time_indices(token_mask, self.mask_time_prob)
        outputs = model(input_values=input_values, attention_mask=attention_mask, mask_time_indices=mask_time_indices)
        loss = masked_acoustic_modeling_loss(outputs.logits, codes, mask_time_indices)
        if model.training:
            predicted = outputs.logits.detach().argmax(-1)[mask_time_indices]
            self._record(
                masked_accuracy=(predicted == codes[mask_time_indices]).float().mean() if predicted.numel() else 0.0,
                mask_ratio=mask_time_indices.sum() / token_mask.sum().clamp_min(1),
            )
        return (loss, outputs) if return_outputs else loss


class HEARFineTuningTrainer(Trainer):
    """Stage 3: the plain ``Trainer`` for ``HEARForAudioClassification``, named to pair with
    ``HEARFineTuningArguments``; the classifier's own cross-entropy/BCE is the whole objective, and the model
    declares ``accepts_loss_kwargs = False`` so gradient accumulation divides its mean loss as usual.

    Evaluation of long clips: when the collator cut them into windows (``AudioClassificationCollator(
    max_seconds=...)`` with an evaluation policy, ``window_to_clip`` in the batch), ``prediction_step`` scores
    the windows ``per_device_eval_batch_size`` at a time and averages each clip's window logits, so memory is
    bounded by the window length whatever the clip's length, and metrics stay per clip."""

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        if "window_to_clip" not in inputs:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        inputs = self._prepare_inputs(inputs)
        window_to_clip, labels = inputs.pop("window_to_clip"), inputs.pop("labels", None)
        step = max(1, self.args.per_device_eval_batch_size)
        with torch.no_grad(), self.compute_loss_context_manager():
            logits = torch.cat([
                model(**{name: value[start : start + step] for name, value in inputs.items()}).logits
                for start in range(0, len(window_to_clip), step)
            ])
        num_clips = int(window_to_clip.max()) + 1
        counts = torch.bincount(window_to_clip, minlength=num_clips).clamp_min(1).to(logits.dtype)
        clip_logits = logits.new_zeros(num_clips, logits.shape[-1]).index_add_(0, window_to_clip, logits) / counts[:, None]
        loss = None
        if labels is not None:
            loss = self.accelerator.unwrap_model(model).loss(clip_logits, labels).detach()
        if prediction_loss_only:
            return loss, None, None
        return loss, clip_logits, labels


# ----------------------------------------------------------------------------------------------------------------
# Pre-training data and script arguments
# ----------------------------------------------------------------------------------------------------------------
def load_pretraining_audio(data_args: HEARPretrainingDataArguments):
    """The pre-training audio: AudioSet through the data package (streamed), else ``audiofolder`` / parquet."""
    import os

    import datasets

    from ..data.audioset import load_audioset
    from ..data.quality import with_safe_audio

    if data_args.dataset == "audioset":
        kwargs = {"path": data_args.data_path} if data_args.data_path else {}
        return load_audioset(name=data_args.audioset_config, split="train", **kwargs)
    path = data_args.dataset
    if not os.path.exists(path):
        raise FileNotFoundError(f"dataset={path!r}: give 'audioset' or an existing folder of audio or parquet files.")
    parquet = os.path.isdir(path) and any(name.endswith(".parquet") for name in os.listdir(path))
    dataset = datasets.load_dataset("parquet" if parquet else "audiofolder", data_dir=path, split="train")
    if "audio" not in dataset.column_names:
        raise ValueError(f"{path}: the dataset has no `audio` column (columns: {dataset.column_names}).")
    # the same safe decoding as the other loaders: a bad file is skipped and counted by the collator's policy
    return with_safe_audio(dataset, 16000)


__all__ = [
    "HEAR_VARIANTS",
    "check_config_overrides",
    "GumbelTemperatureCallback",
    "HEARFineTuningArguments",
    "HEARFineTuningTrainer",
    "HEARMAMTrainer",
    "HEARMAMTrainingArguments",
    "HEARPretrainingCollator",
    "HEARPretrainingDataArguments",
    "HEARTokenizerTrainer",
    "HEARTokenizerTrainingArguments",
    "load_pretraining_audio",
]
