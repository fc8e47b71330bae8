"""HEAR's training objectives (Kawano & Sasaki, Sec. II-B and II-C) as plain functions on tensors.

Stage 1, the acoustic tokenizer, minimises Eq. 1, ``alpha * L_rec + beta * L_distill + gamma * L_div`` with the
paper's alpha = 0.3, beta = 0.7, gamma = 0.1 (Sec. III-A1). Stage 2, masked acoustic modeling, is a
cross-entropy on the masked tokens only. Every term averages over *valid* positions: padding frames and
tokens of a batch never enter a loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _check_mask(name: str, mask: torch.Tensor, shape: tuple) -> torch.Tensor:
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name}: mask must have shape {tuple(shape)}, got {tuple(mask.shape)}.")
    return mask.bool()


def reconstruction_loss(reconstruction: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """L_rec: mean squared error between decoded and input log-Mel frames over the valid frames only.

    ``reconstruction`` and ``target`` are ``(batch, frames, mels)``; ``frame_mask`` ``(batch, frames)`` is True on
    valid frames. The mean runs over valid frames x Mel bins.
    """
    if reconstruction.shape != target.shape:
        raise ValueError(
            f"reconstruction_loss: reconstruction {tuple(reconstruction.shape)} and target {tuple(target.shape)} "
            "must have the same shape (crop the input to 2 * tokens frames)."
        )
    mask = _check_mask("reconstruction_loss", frame_mask, reconstruction.shape[:2])
    if not mask.any():
        return reconstruction.sum() * 0.0
    return F.mse_loss(reconstruction[mask].float(), target[mask].float())


def distillation_loss(prediction: torch.Tensor, teacher_features: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """L_distill: ``1 - cos(prediction_t, teacher_t)`` averaged over valid tokens (Sec. II-B).

    ``prediction`` is the decoder's teacher head ``(batch, tokens, d)``, ``teacher_features`` the teacher's hidden
    states brought to the tokenizer's 20 ms token rate ``(batch, tokens, d)``; ``token_mask`` ``(batch, tokens)``
    marks tokens that are valid for both.
    """
    if prediction.shape != teacher_features.shape:
        raise ValueError(
            f"distillation_loss: decoder prediction {tuple(prediction.shape)} and teacher features "
            f"{tuple(teacher_features.shape)} differ; set HEARTokenizerConfig.teacher_hidden_size to the teacher's "
            "width and bring the teacher to the token rate (hf_audio_cr.training.hear_teachers)."
        )
    mask = _check_mask("distillation_loss", token_mask, prediction.shape[:2])
    if not mask.any():
        return prediction.sum() * 0.0
    cosine = F.cosine_similarity(prediction[mask].float(), teacher_features[mask].float(), dim=-1)
    return (1.0 - cosine).mean()


def codebook_diversity_loss(code_logits: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """L_div: squared deviation of the batch-mean codebook assignment probabilities from uniform (Sec. II-B).

    ``sum_k (p_k - 1/V)^2`` with ``p_k`` the mean over the batch's valid tokens of ``softmax(code_logits)_k``;
    0 when the codes are used uniformly, close to 1 when a single code takes every token (collapse).
    """
    mask = _check_mask("codebook_diversity_loss", token_mask, code_logits.shape[:2])
    if not mask.any():
        return code_logits.sum() * 0.0
    mean_probabilities = code_logits[mask].float().softmax(dim=-1).mean(dim=0)
    return ((mean_probabilities - 1.0 / code_logits.shape[-1]) ** 2).sum()


@dataclass
class HEARTokenizerLoss:
    """The three terms of Eq. 1 and their weighted sum ``loss``."""

    loss: torch.Tensor
    reconstruction_loss: torch.Tensor
    distillation_loss: torch.Tensor
    diversity_loss: torch.Tensor


def hear_tokenizer_loss(
    code_logits: torch.Tensor,
    reconstruction: torch.Tensor,
    teacher_prediction: torch.Tensor,
    input_values: torch.Tensor,
    token_mask: torch.Tensor,
    teacher_features: torch.Tensor | None = None,
    teacher_mask: torch.Tensor | None = None,
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 0.1,
) -> HEARTokenizerLoss:
    """Eq. 1 from a tokenizer forward: ``alpha * L_rec + beta * L_distill + gamma * L_div``.

    ``input_values`` ``(batch, frames, mels)`` are the tokenizer's inputs; the reconstruction covers the first
    ``2 * tokens`` frames, and frame ``f`` is valid when its token ``f // 2`` is. ``teacher_mask`` (optional)
    further restricts distillation to tokens the teacher covers. Without teacher features (``beta = 0``
    ablation) the distillation term is 0.
    """
    frames_per_token = reconstruction.shape[1] // code_logits.shape[1]
    frame_mask = token_mask.bool().repeat_interleave(frames_per_token, dim=1)
    rec = reconstruction_loss(reconstruction, input_values[:, : reconstruction.shape[1]], frame_mask)
    div = codebook_diversity_loss(code_logits, token_mask)
    if teacher_features is None:
        if beta:
            raise ValueError("hear_tokenizer_loss: beta > 0 needs teacher_features (or set beta=0 for no distillation).")
        dist = rec.new_zeros(())
    else:
        mask = token_mask.bool() if teacher_mask is None else token_mask.bool() & teacher_mask.bool()
        dist = distillation_loss(teacher_prediction, teacher_features.to(teacher_prediction.dtype), mask)
    total = alpha * rec + beta * dist + gamma * div
    return HEARTokenizerLoss(loss=total, reconstruction_loss=rec, distillation_loss=dist, diversity_loss=div)


def masked_acoustic_modeling_loss(logits: torch.Tensor, target_codes: torch.Tensor, mask_time_indices: torch.Tensor) -> torch.Tensor:
    """Masked audio prediction loss (Sec. II-C): cross-entropy of the acoustic model's token logits
    ``(batch, tokens, V)`` against the frozen tokenizer's codes ``(batch, tokens)`` at the masked positions only.

    ``mask_time_indices`` must already exclude padding (``compute_mask_time_indices`` draws only valid tokens).
    """
    mask = _check_mask("masked_acoustic_modeling_loss", mask_time_indices, logits.shape[:2])
    if tuple(target_codes.shape) != tuple(logits.shape[:2]):
        raise ValueError(
            f"masked_acoustic_modeling_loss: target codes {tuple(target_codes.shape)} must be (batch, tokens) = "
            f"{tuple(logits.shape[:2])}."
        )
    if not mask.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[mask].float(), target_codes[mask].long())


__all__ = [
    "HEARTokenizerLoss",
    "codebook_diversity_loss",
    "distillation_loss",
    "hear_tokenizer_loss",
    "masked_acoustic_modeling_loss",
    "reconstruction_loss",
]
