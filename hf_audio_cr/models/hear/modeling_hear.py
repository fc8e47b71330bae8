"""HEAR (Kawano & Sasaki): the acoustic model with sliding windows, masked acoustic modeling head, and the
gated-spectrum task model with its classification head.

Read top to bottom: front end + relative-position encoder run on 6 s windows (stride 5 s) merged by a
raised-cosine cross-fade (Sec. II-D) -> `HEARModel`; + a token head -> `HEARForMaskedAcousticModeling`
(Sec. II-C); + gated power-spectrum fusion (Eq. 2-4), a 1-layer transformer with learned positions and
mean/max/std pooling -> `HEARForAudioClassification`. Training objectives live in `hf_audio_cr.training`.
Self-contained (only same-folder imports) so it travels as remote code.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import ModelOutput, logging
from transformers.utils.generic import can_return_tuple

from .configuration_hear import HEARConfig
from .modeling_hear_layers import (
    HEARFrontEnd,
    check_input_values,
    init_hear_weights,
    lengths_to_mask,
    relative_encoder_from,
    token_lengths,
)

logger = logging.get_logger(__name__)


@dataclass
class HEARModelOutput(ModelOutput):
    """Acoustic model output.

    Args:
        last_hidden_state (`(batch, tokens, hidden)`): the merged local features h-bar_t (20 ms per token).
        hidden_states (`tuple`, *optional*): front-end output and every layer's output, each merged over windows.
        token_attention_mask (`(batch, tokens)` bool): True on a clip's valid tokens.
    """

    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    token_attention_mask: torch.BoolTensor | None = None


@dataclass
class HEARMaskedAcousticModelingOutput(ModelOutput):
    """Masked acoustic modeling output.

    Args:
        loss (*optional*): cross-entropy of the token predictions at masked, valid, labelled positions.
        logits (`(batch, tokens, codebook_size)`): token predictions at every position.
        hidden_states (`tuple`, *optional*): as in `HEARModelOutput`.
        token_attention_mask (`(batch, tokens)` bool): True on valid tokens.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    token_attention_mask: torch.BoolTensor | None = None


def compute_mask_time_indices(
    token_attention_mask: torch.Tensor, mask_prob: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Independent random masking of each valid token with probability `mask_prob` (Sec. II-C, 40 % in III-A1).

    Unlike wav2vec 2.0's spans, every token is drawn on its own. Returns a bool `(batch, tokens)` tensor.
    """
    draws = torch.rand(token_attention_mask.shape, generator=generator, device=token_attention_mask.device)
    return (draws < mask_prob) & token_attention_mask.bool()


def cross_fade_window(length: int, overlap: int, device=None, dtype=None) -> torch.Tensor:
    """Per-token weights of one window: raised-cosine ramps over the `overlap` tokens at each end, 1 inside.

    As the reference code: the ramp is 0.5 - 0.5 cos(pi r) at r = linspace(0, 1, overlap), floored at 1e-3 so
    no weight is 0 (a clip edge covered by a single window keeps its value after normalisation). A falling and
    a rising ramp add up to 1 (1.001 at the two floored ends); `cross_fade_merge` divides by the weight sum.
    """
    weights = torch.ones(length, device=device, dtype=dtype)
    if overlap > 0:
        ramp = torch.linspace(0, 1, overlap, device=device, dtype=dtype)
        ramp = (0.5 - 0.5 * torch.cos(math.pi * ramp)).clamp_min(1e-3)
        weights[:overlap] = ramp
        weights[length - overlap :] = ramp.flip(0)
    return weights


def cross_fade_merge(windows: torch.Tensor, weights: torch.Tensor, stride: int, length: int) -> torch.Tensor:
    """Overlap-add of `(batch, n, window, hidden)` window outputs with `(batch, n, window)` weights.

    Returns `(batch, length, hidden)`: the weighted average of the windows covering each position (positions no
    used window covers get 0).
    """
    batch, num_windows, window, hidden = windows.shape
    padded = (num_windows - 1) * stride + window

    def overlap_add(x: torch.Tensor) -> torch.Tensor:  # (batch, n, window, channels) -> (batch, padded, channels)
        channels = x.shape[-1]
        columns = x.permute(0, 3, 2, 1).reshape(batch, channels * window, num_windows)
        summed = F.fold(columns, output_size=(1, padded), kernel_size=(1, window), stride=(1, stride))
        return summed.view(batch, channels, padded).transpose(1, 2)

    total = overlap_add(windows * weights[..., None])
    norm = overlap_add(weights[..., None])
    return (total / norm.clamp_min(torch.finfo(norm.dtype).tiny))[:, :length]


def average_window_logits(logits: torch.Tensor, window_to_clip: torch.Tensor) -> torch.Tensor:
    """`(windows, labels)` -> `(clips, labels)`: the mean of each clip's windows (HEAR fine-tuning's evaluation)."""
    window_to_clip = window_to_clip.to(logits.device).long()
    num_clips = int(window_to_clip.max()) + 1
    counts = torch.bincount(window_to_clip, minlength=num_clips).clamp_min(1).to(logits.dtype)
    return logits.new_zeros(num_clips, logits.shape[-1]).index_add_(0, window_to_clip, logits) / counts[:, None]


class HEARPreTrainedModel(PreTrainedModel):
    config: HEARConfig
    config_class = HEARConfig
    base_model_prefix = "hear"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["HEARRelativePositionLayer", "HEARTaskLayer"]
    _supports_sdpa = True
    # Losses are per-batch means that ignore `num_items_in_batch`: Trainer must divide them for gradient
    # accumulation itself (forward's **kwargs would otherwise make it assume the model normalises).
    accepts_loss_kwargs = False

    def _init_weights(self, module):
        init_hear_weights(module, self.config.initializer_range)
        if isinstance(module, HEARTaskModel):
            init.zeros_(module.position_embeddings)  # the reference's learned positions start at zero
            # as nn.MultiheadAttention: Xavier over the stacked q/k/v (set here: transformers skips the layers
            # themselves, which hold no parameter of their own)
            for layer in module.layers:
                init.xavier_uniform_(layer.qkv.weight)

    def save_pretrained(self, save_directory, *args, **kwargs):
        # Remote code: a folder saved from any HEAR class loads with every Auto entry point.
        if self._auto_class is not None:
            self.config.auto_map = {
                **(getattr(self.config, "auto_map", None) or {}),
                "AutoModel": "modeling_hear.HEARModel",
                "AutoModelForPreTraining": "modeling_hear.HEARForMaskedAcousticModeling",
                "AutoModelForAudioClassification": "modeling_hear.HEARForAudioClassification",
            }
            # the pipeline that decodes files as training does; a relative import, so it is copied as remote code
            from .pipeline_audio_classification import CUSTOM_PIPELINES

            self.config.custom_pipelines = copy.deepcopy(CUSTOM_PIPELINES)  # pipeline() edits it in place
        return super().save_pretrained(save_directory, *args, **kwargs)


class HEARModel(HEARPreTrainedModel):
    """The acoustic model: Conv1d front end + 6-layer relative-position encoder over 6 s windows.

    Inputs longer than `window_length` tokens run as windows of 300 tokens every 250 tokens; each window is
    encoded on its own (a batch of windows) and the outputs are merged by a raised-cosine cross-fade over the
    50 shared tokens, then cropped to the input length. Shorter inputs run directly. Every clip in a batch uses
    only the windows its own length needs, so padding never changes a clip's output.
    """

    # windows encoded at once; longer inputs run in batches of this many (same result, bounded attention memory)
    window_batch_size = 32

    def __init__(self, config: HEARConfig):
        super().__init__(config)
        self.front_end = HEARFrontEnd(config.num_mel_bins, config.hidden_size, config.frames_per_token)
        self.encoder = relative_encoder_from(config)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.front_end.conv

    def encode_tokens(
        self, hidden_states: torch.Tensor, lengths: torch.Tensor, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Encoder over front-end tokens `(batch, tokens, hidden)` with `lengths` valid tokens per clip."""
        batch, tokens, hidden = hidden_states.shape
        size, stride = self.config.window_length, self.config.window_stride
        if tokens <= size:  # direct path: the whole input is one window
            return self.encoder(hidden_states, lengths_to_mask(lengths, tokens), output_hidden_states)
        num_windows = 1 + math.ceil((tokens - size) / stride)
        padded = F.pad(hidden_states, (0, 0, 0, (num_windows - 1) * stride + size - tokens))
        windows = padded.unfold(1, size, stride).transpose(2, 3).reshape(batch * num_windows, size, hidden)
        starts = torch.arange(num_windows, device=lengths.device) * stride
        window_lengths = (lengths[:, None] - starts[None, :]).clamp(0, size)
        window_masks = lengths_to_mask(window_lengths.reshape(-1), size)
        tracing = torch.compiler.is_compiling() or torch.compiler.is_exporting()  # graphs keep one symbolic batch
        if tracing or len(windows) <= self.window_batch_size:
            last, all_hidden = self.encoder(windows, window_masks, output_hidden_states)
        else:  # long audio: windows through the encoder a batch at a time (attention memory of a few windows)
            parts = [self.encoder(windows[i : i + self.window_batch_size], window_masks[i : i + self.window_batch_size],
                                  output_hidden_states) for i in range(0, len(windows), self.window_batch_size)]
            last = torch.cat([part[0] for part in parts])
            all_hidden = None
            if output_hidden_states:
                all_hidden = tuple(torch.cat(layer) for layer in zip(*(part[1] for part in parts)))
        # a clip uses window k iff its tokens reach past window k-1: 1 + ceil((L - size) / stride) windows
        used = starts[None, :] < (lengths[:, None] - self.config.window_overlap).clamp_min(1)
        weights = cross_fade_window(size, self.config.window_overlap, hidden_states.device, hidden_states.dtype)
        weights = weights[None, None, :] * used[..., None].to(hidden_states.dtype)

        def merge(x: torch.Tensor) -> torch.Tensor:
            return cross_fade_merge(x.view(batch, num_windows, size, -1), weights, stride, tokens)

        return merge(last), (tuple(merge(h) for h in all_hidden) if all_hidden is not None else None)

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask_time_indices: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> HEARModelOutput | tuple:
        """
        Args:
            input_values: `(batch, frames, 128)` normalised log-Mel frames from `HEARFeatureExtractor`.
            attention_mask: `(batch, frames)`, 1 on valid frames (padding frames must come last).
            mask_time_indices: `(batch, tokens)` bool; these tokens are set to zero after the front end
                (masked acoustic modeling, Sec. II-C).
        """
        if hasattr(input_values, "window_batches"):
            raise ValueError(
                f"{type(self).__name__} takes frames, not streamed windows of long audio: call the feature extractor "
                "with long_audio='window' (or max_seconds=None for whole clips), or score with HEARForAudioClassification."
            )
        check_input_values(input_values, attention_mask, self.config, type(self).__name__)
        output_hidden_states = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = self.config.return_dict if return_dict is None else return_dict
        hidden_states = self.front_end(input_values)
        lengths = token_lengths(attention_mask, input_values, self.config.frames_per_token)
        if mask_time_indices is not None:
            if tuple(mask_time_indices.shape) != tuple(hidden_states.shape[:2]):
                raise ValueError(
                    f"{type(self).__name__}: mask_time_indices must have shape {tuple(hidden_states.shape[:2])} "
                    f"(batch, tokens = frames // {self.config.frames_per_token}), got {tuple(mask_time_indices.shape)}."
                )
            hidden_states = hidden_states.masked_fill(mask_time_indices.bool()[..., None], 0.0)
        last, all_hidden = self.encode_tokens(hidden_states, lengths, output_hidden_states)
        token_mask = lengths_to_mask(lengths, last.shape[1])
        if not return_dict:
            return tuple(x for x in (last, all_hidden, token_mask) if x is not None)
        return HEARModelOutput(last_hidden_state=last, hidden_states=all_hidden, token_attention_mask=token_mask)


class HEARForMaskedAcousticModeling(HEARPreTrainedModel):
    """Acoustic model + a linear head predicting the tokenizer's discrete code of every token (Sec. II-C).

    Pass `mask_time_indices` (see `compute_mask_time_indices`) to zero those tokens after the front end and
    `labels` `(batch, tokens)` (the frozen tokenizer's codes; -100 = ignore) to get the cross-entropy over the
    masked valid positions (all valid positions if no mask is given).
    """

    def __init__(self, config: HEARConfig):
        super().__init__(config)
        self.hear = HEARModel(config)
        self.token_head = nn.Linear(config.hidden_size, config.codebook_size)
        self.post_init()

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask_time_indices: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> HEARMaskedAcousticModelingOutput | tuple:
        return_dict = self.config.return_dict if return_dict is None else return_dict
        outputs = self.hear(
            input_values,
            attention_mask=attention_mask,
            mask_time_indices=mask_time_indices,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.token_head(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            if tuple(labels.shape) != tuple(logits.shape[:2]):
                raise ValueError(
                    f"{type(self).__name__}: labels must have shape {tuple(logits.shape[:2])} (batch, tokens), "
                    f"got {tuple(labels.shape)}."
                )
            selected = outputs.token_attention_mask & (labels != -100)
            if mask_time_indices is not None:
                selected = selected & mask_time_indices.bool()
            loss = F.cross_entropy(logits[selected].float(), labels[selected].long()) if selected.any() else logits.sum() * 0.0
        if not return_dict:
            return tuple(x for x in (loss, logits, outputs.hidden_states, outputs.token_attention_mask) if x is not None)
        return HEARMaskedAcousticModelingOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, token_attention_mask=outputs.token_attention_mask
        )


class HEARGatedSpectrumFusion(nn.Module):
    """Feature gating (Eq. 2-4): v_t = W_s S_t + b_s on a token's two spectrum frames (2 x 513 -> d_p),
    g_t = sigmoid(W_g h_t + b_g), then LayerNorm + GELU of g_t * v_t (reference code), concatenated with h_t
    and projected to the task model's width."""

    def __init__(self, config: HEARConfig):
        super().__init__()
        self.frames_per_token = config.frames_per_token
        self.spectrum_projection = nn.Linear(config.frames_per_token * config.num_frequency_bins, config.spectrum_hidden_size)
        self.gate = nn.Linear(config.hidden_size, config.spectrum_hidden_size)
        self.norm = nn.LayerNorm(config.spectrum_hidden_size, eps=config.layer_norm_eps)
        self.activation = nn.GELU()
        self.fusion = nn.Linear(config.hidden_size + config.spectrum_hidden_size, config.task_hidden_size)

    def forward(self, hidden_states: torch.Tensor, power_spectrum: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = hidden_states.shape
        frames = power_spectrum[:, : tokens * self.frames_per_token]
        # bins interleaved frame by frame within a token ([bin0 f0, bin0 f1, bin1 f0, ...]) as the reference unfold
        spectrum = frames.reshape(batch, tokens, self.frames_per_token, -1).transpose(2, 3).reshape(batch, tokens, -1)
        gated = torch.sigmoid(self.gate(hidden_states)) * self.spectrum_projection(spectrum)  # Eq. 3-4
        return self.fusion(torch.cat([hidden_states, self.activation(self.norm(gated))], dim=-1))


class HEARTaskLayer(nn.Module):
    """A standard post-norm transformer layer (PyTorch's `TransformerEncoderLayer` layout) with SDPA attention."""

    def __init__(self, config: HEARConfig):
        super().__init__()
        width = config.task_hidden_size
        self.num_heads = config.task_num_attention_heads
        self.attention_dropout = config.attention_dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.attention_output = nn.Linear(width, width)
        self.attention_norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(width, config.task_intermediate_size)
        self.activation = ACT2FN[config.task_hidden_act]
        self.output = nn.Linear(config.task_intermediate_size, width)
        self.output_norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden_states.shape
        q, k, v = self.qkv(hidden_states).view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attention_mask[:, None, None, :], dropout_p=self.attention_dropout if self.training else 0.0
        )
        attended = self.attention_output(attended.transpose(1, 2).reshape(batch, length, width))
        hidden_states = self.attention_norm(hidden_states + self.dropout(attended))
        feed_forward = self.output(self.dropout(self.activation(self.intermediate(hidden_states))))
        return self.output_norm(hidden_states + self.dropout(feed_forward))


class HEARTaskModel(nn.Module):
    """Global context over the whole clip (Sec. II-A): learned positions + `task_num_hidden_layers` layers."""

    def __init__(self, config: HEARConfig):
        super().__init__()
        self.position_embeddings = nn.Parameter(torch.zeros(1, config.task_max_position_embeddings, config.task_hidden_size))
        self.layers = nn.ModuleList(HEARTaskLayer(config) for _ in range(config.task_num_hidden_layers))

    def positions(self, length: int) -> torch.Tensor:
        table = self.position_embeddings
        if length <= table.shape[1]:
            return table[:, :length]
        logger.warning_once(
            f"HEAR task model: {length} tokens exceed task_max_position_embeddings ({table.shape[1]}, 30 s); "
            "using the position table linearly interpolated to that length."
        )
        return F.interpolate(table.transpose(1, 2), size=length, mode="linear", align_corners=True).transpose(1, 2)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.positions(hidden_states.shape[1])
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask)
        return hidden_states


class HEARClassificationHead(nn.Module):
    """Masked mean / max / std pooling over time, concatenated -> Linear -> BatchNorm -> ReLU -> dropout -> Linear."""

    def __init__(self, config: HEARConfig):
        super().__init__()
        self.dense = nn.Linear(3 * config.task_hidden_size, config.classifier_hidden_size)
        self.norm = nn.BatchNorm1d(config.classifier_hidden_size)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.out_proj = nn.Linear(config.classifier_hidden_size, config.num_labels)

    @staticmethod
    def pool(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """`[mean; max; std]` over each clip's valid tokens (std with Bessel's correction, as the reference)."""
        mask = attention_mask[..., None]
        count = mask.sum(dim=1).clamp_min(1)
        mean = hidden_states.masked_fill(~mask, 0.0).sum(dim=1) / count
        maximum = hidden_states.masked_fill(~mask, torch.finfo(hidden_states.dtype).min).amax(dim=1)
        variance = ((hidden_states - mean[:, None]) ** 2).masked_fill(~mask, 0.0).sum(dim=1) / (count - 1).clamp_min(1)
        return torch.cat([mean, maximum, torch.sqrt(variance + 1e-8)], dim=-1)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = self.dense(self.pool(hidden_states, attention_mask))
        if self.training and pooled.shape[0] == 1:
            # One clip has no batch variance (BatchNorm1d raises): normalise it with the running statistics, as
            # in evaluation, and leave them unchanged -- a one-sample "batch mean" would be the clip itself. The
            # affine weights still learn. Happens on an epoch's last batch or when bad clips were skipped.
            normalised = F.batch_norm(
                pooled, self.norm.running_mean, self.norm.running_var, self.norm.weight, self.norm.bias,
                training=False, eps=self.norm.eps,
            )
        else:
            normalised = self.norm(pooled)
        return self.out_proj(self.dropout(self.activation(normalised)))


class HEARForAudioClassification(HEARPreTrainedModel):
    """Acoustic model -> gated power-spectrum fusion -> task model -> pooling head (Fig. 2).

    A clip `(batch, frames, 128)` is scored whole: the acoustic model windows it, the task model attends over all
    of it. Long clips come from `HEARFeatureExtractor` as windows (`max_seconds`, 30 s by default) whose logits are
    averaged per clip, as HEAR fine-tuning evaluates: either all at once with `window_to_clip` (`long_audio=
    "window"`), or streamed (`long_audio="stream"`, anything with `window_batches`): `long_audio_batch_size`
    windows are featurised and scored at a time and only the running sums of logits are kept, so memory is that
    of one batch of windows and time is linear in the length. With `config.freeze_acoustic_model` ("Transfer")
    the acoustic model gets no gradient and stays in eval mode.
    """

    # windows of a streamed long clip featurised and scored at once. The task model's attention over a 30 s
    # window's 1500 tokens is most of the memory (tens of MB per window on CPU); one at a time measured the
    # lowest and flattest peak RSS for the same speed on CPU (scripts/bench_long_audio_memory.py); raise it on a GPU
    long_audio_batch_size = 1

    def __init__(self, config: HEARConfig):
        super().__init__(config)
        self.hear = HEARModel(config)
        if config.use_power_spectrum:
            self.spectrum_fusion = HEARGatedSpectrumFusion(config)
        elif config.hidden_size != config.task_hidden_size:
            self.spectrum_fusion = nn.Linear(config.hidden_size, config.task_hidden_size)
        else:
            self.spectrum_fusion = None
        self.task_model = HEARTaskModel(config)
        self.classifier = HEARClassificationHead(config)
        self.post_init()
        if config.freeze_acoustic_model:
            self.freeze_acoustic_model()

    def freeze_acoustic_model(self) -> None:
        """Keep the pre-trained acoustic model fixed (the paper's "Transfer" setting)."""
        self.config.freeze_acoustic_model = True
        self.hear.requires_grad_(False)
        self.hear.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.config.freeze_acoustic_model:
            self.hear.eval()  # no dropout in frozen features
        return self

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        power_spectrum: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        window_to_clip: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """
        Args:
            input_values: `(batch, frames, 128)` log-Mel frames; power_spectrum: `(batch, frames, 513)` log power
                spectrum (required when `config.use_power_spectrum`); attention_mask: `(batch, frames)`. Or the
                feature extractor's streamed windows of long clips as `input_values` (nothing else needed).
            labels: class ids `(batch,)` (single-label), multi-hot `(batch, num_labels)` (multi-label) or targets,
                one per clip.
            window_to_clip: `(rows,)` the clip of each row when the rows are windows (`long_audio="window"`):
                the logits are then averaged over each clip's windows (`hidden_states` stay per window).
        """
        hidden_states = None
        if hasattr(input_values, "window_batches"):  # duck-typed: the model folder does not import the extractor
            logits = self.score_streamed_windows(input_values)
        else:
            logits, hidden_states = self.score_clips(input_values, power_spectrum, attention_mask, output_hidden_states)
            if window_to_clip is not None:
                logits = average_window_logits(logits, window_to_clip)
        loss = self.loss(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states)

    def score_clips(self, input_values, power_spectrum=None, attention_mask=None, output_hidden_states=None):
        """Logits `(batch, num_labels)` of clips scored whole, and the acoustic model's hidden states."""
        if self.config.use_power_spectrum:
            expected = (*input_values.shape[:2], self.config.num_frequency_bins)
            if power_spectrum is None or tuple(power_spectrum.shape) != expected:
                got = None if power_spectrum is None else tuple(power_spectrum.shape)
                raise ValueError(
                    f"{type(self).__name__}: power_spectrum of shape {expected} is required (use_power_spectrum=True), "
                    f"got {got}; HEARFeatureExtractor returns it, or set use_power_spectrum=False (w/o Spectrum)."
                )
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_acoustic_model):
            outputs = self.hear(
                input_values, attention_mask=attention_mask, output_hidden_states=output_hidden_states, return_dict=True
            )
        hidden_states, token_mask = outputs.last_hidden_state, outputs.token_attention_mask
        if isinstance(self.spectrum_fusion, HEARGatedSpectrumFusion):
            hidden_states = self.spectrum_fusion(hidden_states, power_spectrum)
        elif self.spectrum_fusion is not None:
            hidden_states = self.spectrum_fusion(hidden_states)
        hidden_states = self.task_model(hidden_states, token_mask)
        return self.classifier(hidden_states, token_mask), outputs.hidden_states

    def score_streamed_windows(self, streamed) -> torch.Tensor:
        """Mean of each clip's window logits, `long_audio_batch_size` windows in memory at a time (the windows are
        added one by one in order, as `index_add_` over the `"window"` output does)."""
        parameter = next(self.parameters())
        sums = parameter.new_zeros(len(streamed), self.config.num_labels)
        counts = [0] * len(streamed)
        for index, features in streamed.to(parameter.device).window_batches(self.long_audio_batch_size):
            spectrum = features.get("power_spectrum")
            logits, _ = self.score_clips(features["input_values"].to(parameter.dtype),
                                         None if spectrum is None else spectrum.to(parameter.dtype),
                                         features["attention_mask"])
            for row in logits:
                sums[index] += row
            counts[index] += len(logits)
        return sums / torch.tensor(counts, dtype=sums.dtype, device=sums.device).clamp_min(1)[:, None]

    # Copied from hf_audio_cr.models.cr_audiomae.modeling_cr_audiomae.CRAudioMAEForAudioClassification.loss
    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """transformers' classification loss (`ForSequenceClassificationLoss`, as AST): BCE with logits (mean over
        samples and classes), cross-entropy or MSE by `config.problem_type`, inferred from the labels when unset
        (one label: regression; integer ids: single-label; else multi-label), on float32 logits."""
        problem = self.config.problem_type
        if problem == "multi_label_classification" and labels.shape != logits.shape:
            raise ValueError(f"multi-label targets must have shape {tuple(logits.shape)}, got {tuple(labels.shape)}.")
        if problem in ("multi_label_classification", "regression"):
            labels = labels.float()  # integer multi-hot targets work too
        return self.loss_function(labels, logits.float(), self.config)

__all__ = [
    "HEARForAudioClassification",
    "HEARForMaskedAcousticModeling",
    "HEARModel",
    "HEARPreTrainedModel",
    "average_window_logits",
    "compute_mask_time_indices",
    "cross_fade_merge",
    "cross_fade_window",
]
