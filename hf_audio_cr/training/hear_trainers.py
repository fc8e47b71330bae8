"""HEAR's three training stages (Kawano & Sasaki, Sec. II-B to II-D, III-A) as ``Trainer`` subclasses.

1. ``HEARTokenizerTrainer`` (+ ``HEARTokenizerTrainingArguments``): Eq. 1 on a ``HEARTokenizerModel`` with a
   frozen teacher (or precomputed teacher features), Gumbel temperature annealed once per optimizer step.
2. ``HEARMAMTrainer`` (+ ``HEARMAMTrainingArguments``): masked acoustic modeling of a
   ``HEARForMaskedAcousticModeling`` against the codes of a frozen tokenizer.
3. ``HEARFineTuningTrainer`` (+ ``HEARFineTuningArguments``): downstream fine-tuning of
   ``HEARForAudioClassification`` in the paper's four settings (``hf_audio_cr.models.hear_variants``).

Each ``*Arguments`` class has the paper's optimisation settings as defaults; ``configs/hear/*.yaml`` hold the
per-dataset values; ``HEARPretrainingDataArguments`` / ``HEARDownstreamDataArguments`` are the scripts' data
arguments. Batches come from the data package's ``HEARPretrainingCollator`` (stages 1-2) or
``AudioClassificationCollator`` with ``HEARFeatureExtractor`` (stage 3); ``hf_audio_cr.experiments.hear_downstream``
runs stage 3 and ESC-50's cross-validation.
"""
from __future__ import annotations

import torch
from transformers import Trainer, TrainerCallback

from ..models.hear import average_window_logits, compute_mask_time_indices
from .distributed import PerRankSeedCallback, prepare_frozen_model
from .hear_config import (  # noqa: F401  the arguments live with the trainers' names, as before
    HEAR_VARIANTS,
    HEARDownstreamDataArguments,
    HEARFineTuningArguments,
    HEARMAMTrainingArguments,
    HEARPretrainingDataArguments,
    HEARTokenizerTrainingArguments,
    check_config_overrides,
)
from .hear_losses import hear_tokenizer_loss, masked_acoustic_modeling_loss
from .hear_teachers import HEARTeacher
from .loss_terms import LossTermsMixin


# ----------------------------------------------------------------------------------------------------------------
# Trainers
# ----------------------------------------------------------------------------------------------------------------
class _SelfSupervisedTrainer(LossTermsMixin, Trainer):
    """Stages 1-2: the objective's terms are logged in training and evaluation, and evaluation reports the
    self-supervised objective itself (no logits to score)."""

    # compute_loss returns a per-batch mean: the Trainer divides it for gradient accumulation.
    loss_is_scaled_for_ga = False

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
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


class HEARTokenizerTrainer(_SelfSupervisedTrainer):
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
            teacher = prepare_frozen_model(self.accelerator, teacher)
        self.teacher = teacher
        self.add_callback(GumbelTemperatureCallback())
        self.add_callback(PerRankSeedCallback())  # each rank its own crops (seed + rank)

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
        self._record(
            reconstruction_loss=terms.reconstruction_loss,
            distillation_loss=terms.distillation_loss,
            diversity_loss=terms.diversity_loss,
            codes_used=torch.unique(outputs.codes[token_mask]).numel(),
        )
        return (terms.loss, outputs) if return_outputs else terms.loss

    def _extra_logs(self) -> dict:
        return {"gumbel_temperature": round(self.accelerator.unwrap_model(self.model).gumbel_temperature, 6)}


class HEARMAMTrainer(_SelfSupervisedTrainer):
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
        self.acoustic_tokenizer = prepare_frozen_model(self.accelerator, acoustic_tokenizer)
        self.mask_time_prob = self.args.mask_time_prob if self.args.mask_time_prob is not None else config.mask_time_prob
        self.add_callback(PerRankSeedCallback())  # each rank its own crops and masks (seed + rank)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        input_values, attention_mask = inputs["input_values"], inputs.get("attention_mask")
        with torch.no_grad():
            codes, token_mask = self.acoustic_tokenizer.tokenize(input_values, attention_mask)
        mask_time_indices = compute_mask_time_indices(token_mask, self.mask_time_prob)
        outputs = model(input_values=input_values, attention_mask=attention_mask, mask_time_indices=mask_time_indices)
        loss = masked_acoustic_modeling_loss(outputs.logits, codes, mask_time_indices)
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_callback(PerRankSeedCallback())  # each rank its own crops and dropout (seed + rank)

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
        clip_logits = average_window_logits(logits, window_to_clip)  # the rule the model applies to long audio
        loss = None
        if labels is not None:
            loss = self.accelerator.unwrap_model(model).loss(clip_logits, labels).detach()
        if prediction_loss_only:
            return loss, None, None
        return loss, clip_logits, labels


# ----------------------------------------------------------------------------------------------------------------
# The scripts' data arguments
# ----------------------------------------------------------------------------------------------------------------


__all__ = [
    "GumbelTemperatureCallback",
    "HEARDownstreamDataArguments",
    "HEARFineTuningArguments",
    "HEARFineTuningTrainer",
    "HEARMAMTrainer",
    "HEARMAMTrainingArguments",
    "HEARPretrainingDataArguments",
    "HEARTokenizerTrainer",
    "HEARTokenizerTrainingArguments",
]
