"""CR-AudioMAE: AudioMAE's ViT-B encoder with mean pooling and a multi-label head.

Read top to bottom: patch embedding + fixed 2-D sin-cos positions, per-sample patch drop (training only),
pre-norm transformer blocks with SDPA attention, mean over patch tokens -> `fc_norm` -> head. The
consistency-regularization objective lives in `hf_audio_cr.training` (it is a training loss, not a layer).
Self-contained (only same-folder imports) so it travels as remote code.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.modeling_utils import PreTrainedModel
from transformers.utils.generic import can_return_tuple

from .configuration_cr_audiomae import CRAudioMAEConfig


def sincos_position_embedding(dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """The fixed 2-D sin-cos table exactly as AudioMAE's pretraining builds it, with a zero row for the cls token.

    AudioMAE calls `get_2d_sincos_pos_embed_flexible` on `PatchEmbed_org.patch_hw`, which is (freq, time) = (8, 64):
    row k holds the codes of (k mod time, k div time) in its two halves. Its tokens are time-major like ours
    (k = t * freq + f), so the table is transposed relative to the token grid; every AudioMAE checkpoint, and the
    fine-tuning that inherits it, uses it that way, and so do we (a from-scratch model starts where AudioMAE does).
    Converted checkpoints load their stored table instead of this one.
    """
    def one_axis(positions: torch.Tensor, channels: int) -> torch.Tensor:
        omega = 1.0 / 10000 ** (torch.arange(channels // 2, dtype=torch.float64) / (channels / 2))
        angles = positions.reshape(-1, 1).double() * omega
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    time, freq = grid
    row = torch.arange(time * freq)
    table = torch.cat([one_axis(row % time, dim // 2), one_axis(row // time, dim // 2)], dim=1)
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64), table]).float().unsqueeze(0)


class CRAudioMAEEmbeddings(nn.Module):
    """Conv2d 16x16 patches of the (time, freq) fbank plus fixed positions; patch drop while training."""

    def __init__(self, config: CRAudioMAEConfig):
        super().__init__()
        self.config = config
        self.patch_embed = nn.Conv2d(1, config.hidden_size, config.patch_size, stride=config.patch_size)
        num_patches = config.patch_grid[0] * config.patch_grid[1]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        # a frozen weight, not a buffer recomputed at load time: original checkpoints store their own table
        # (and it counts in the parameters, as in AudioMAE); from_pretrained re-freezes it after loading
        self.position_embeddings = nn.Parameter(torch.zeros(1, num_patches + 1, config.hidden_size), requires_grad=False)

    def patch_drop(self, patches: torch.Tensor) -> torch.Tensor:
        """Keep a random subset of whole time columns and frequency rows, drawn per sample (AudioMAE fine-tuning)."""
        batch, _, dim = patches.shape
        grid_t, grid_f = self.config.patch_grid
        keep_t = int(grid_t * (1 - self.config.patch_drop_time))
        keep_f = int(grid_f * (1 - self.config.patch_drop_freq))
        if keep_t == grid_t and keep_f == grid_f:
            return patches
        time_ids = torch.rand(batch, grid_t, device=patches.device).argsort(dim=1)[:, :keep_t]
        freq_ids = torch.rand(batch, grid_f, device=patches.device).argsort(dim=1)[:, :keep_f]
        token_ids = (time_ids[:, :, None] * grid_f + freq_ids[:, None, :]).reshape(batch, -1)
        return patches.gather(1, token_ids[..., None].expand(-1, -1, dim))

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embed(input_values.unsqueeze(1)).flatten(2).transpose(1, 2)  # time-major tokens
        patches = patches + self.position_embeddings[:, 1:]
        if self.training:
            patches = self.patch_drop(patches)
        cls = (self.cls_token + self.position_embeddings[:, :1]).expand(patches.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1)


class CRAudioMAEAttention(nn.Module):
    def __init__(self, config: CRAudioMAEConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.dropout = config.attention_probs_dropout_prob
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.proj_dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = hidden_states.shape
        q, k, v = self.qkv(hidden_states).view(batch, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj_dropout(self.proj(attended.transpose(1, 2).reshape(batch, tokens, dim)))


class CRAudioMAEMlp(nn.Module):
    def __init__(self, config: CRAudioMAEConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.dropout(self.act(self.fc1(hidden_states)))))


class CRAudioMAELayer(GradientCheckpointingLayer):
    """Pre-norm block: x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x)))."""

    def __init__(self, config: CRAudioMAEConfig, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attn = CRAudioMAEAttention(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = CRAudioMAEMlp(config)
        self.drop_path = drop_path

    def stochastic_depth(self, residual: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_path == 0.0:
            return residual
        keep = 1.0 - self.drop_path
        mask = residual.new_empty(residual.shape[0], 1, 1).bernoulli_(keep)
        return residual * mask / keep

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.stochastic_depth(self.attn(self.norm1(hidden_states)))
        return hidden_states + self.stochastic_depth(self.mlp(self.norm2(hidden_states)))


class CRAudioMAEPreTrainedModel(PreTrainedModel):
    config: CRAudioMAEConfig
    config_class = CRAudioMAEConfig
    base_model_prefix = "audiomae"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["CRAudioMAELayer"]
    _supports_sdpa = True
    # The loss is a per-batch mean that ignores `num_items_in_batch`: Trainer must divide it for gradient
    # accumulation itself (forward's **kwargs would otherwise make it assume the model normalises).
    accepts_loss_kwargs = False

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init.trunc_normal_(module.weight, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, CRAudioMAEEmbeddings):
            init.normal_(module.cls_token, std=self.config.initializer_range)
            table = sincos_position_embedding(self.config.hidden_size, self.config.patch_grid)
            init.copy_(module.position_embeddings, table.to(module.position_embeddings.device))

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # transformers re-creates every loaded weight as a trainable Parameter; AudioMAE's table stays fixed.
        loaded = super().from_pretrained(*args, **kwargs)
        (loaded[0] if isinstance(loaded, tuple) else loaded).freeze_position_embeddings()
        return loaded

    def freeze_position_embeddings(self) -> None:
        """Keep the sin-cos position table out of the optimizer (frozen in AudioMAE pretraining and fine-tuning)."""
        for module in self.modules():
            if isinstance(module, CRAudioMAEEmbeddings):
                module.position_embeddings.requires_grad_(False)

    def save_pretrained(self, save_directory, *args, **kwargs):
        # Remote code: a folder saved from either class loads with both Auto entry points.
        if self._auto_class is not None:
            module = "modeling_cr_audiomae"
            self.config.auto_map = {
                **(getattr(self.config, "auto_map", None) or {}),
                "AutoModel": f"{module}.CRAudioMAEModel",
                "AutoModelForAudioClassification": f"{module}.CRAudioMAEForAudioClassification",
            }
            # the pipeline that decodes files as training does; a relative import, so it is copied as remote code
            from .pipeline_audio_classification import CUSTOM_PIPELINES

            self.config.custom_pipelines = copy.deepcopy(CUSTOM_PIPELINES)  # pipeline() edits it in place
        return super().save_pretrained(save_directory, *args, **kwargs)

    def check_input_values(self, input_values: torch.Tensor) -> None:
        if hasattr(input_values, "window_batches"):
            raise ValueError(
                f"{type(self).__name__} takes one window per clip; streamed windows of long clips are scored by "
                "CRAudioMAEForAudioClassification. For encoder features call the feature extractor with "
                "long_audio='window' (or 'truncate') and run the windows as a batch."
            )
        expected = (self.config.max_length, self.config.num_mel_bins)
        if input_values.dim() != 3 or tuple(input_values.shape[1:]) != expected:
            raise ValueError(
                f"input_values must have shape (batch, {expected[0]}, {expected[1]}) (time frames, Mel bins), "
                f"got {tuple(input_values.shape)}; compute them with AudioMAEFeatureExtractor."
            )


class CRAudioMAEModel(CRAudioMAEPreTrainedModel):
    """The encoder: returns the patch tokens and their mean (over patch tokens, the cls token left out)."""

    def __init__(self, config: CRAudioMAEConfig):
        super().__init__(config)
        self.embeddings = CRAudioMAEEmbeddings(config)
        # stochastic depth grows linearly from 0 to drop_path_rate over the blocks (timm)
        last = max(config.num_hidden_layers - 1, 1)
        rates = [config.drop_path_rate * i / last for i in range(config.num_hidden_layers)]
        self.layers = nn.ModuleList(CRAudioMAELayer(config, rate) for rate in rates)
        self.fc_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.patch_embed

    def forward(
        self,
        input_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        self.check_input_values(input_values)
        output_hidden_states = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = self.config.return_dict if return_dict is None else return_dict
        hidden_states = self.embeddings(input_values)
        all_hidden = (hidden_states,) if output_hidden_states else None
        for layer in self.layers:
            hidden_states = layer(hidden_states)
            if output_hidden_states:
                all_hidden += (hidden_states,)
        pooled = self.fc_norm(hidden_states[:, 1:].mean(dim=1))  # AudioMAE global_pool="avg"
        if not return_dict:
            return tuple(x for x in (hidden_states, pooled, all_hidden) if x is not None)
        return BaseModelOutputWithPooling(last_hidden_state=hidden_states, pooler_output=pooled, hidden_states=all_hidden)


class CRAudioMAEForAudioClassification(CRAudioMAEPreTrainedModel):
    """Encoder + linear head. Accepts one window per clip `(batch, frames, bins)`, or windows of long clips
    `(batch, windows, frames, bins)` with `window_mask`: each window is scored and the clip's logits are the
    maximum over its windows (a tag present anywhere in the clip is present in the clip). Windows streamed by
    the feature extractor (`long_audio="stream"`, anything with `window_batches`) are scored batch by batch
    as they are computed, keeping a running maximum, so memory stays that of `window_batch_size` windows."""

    def __init__(self, config: CRAudioMAEConfig):
        super().__init__(config)
        self.audiomae = CRAudioMAEModel(config)
        self.head = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        window_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        hidden_states = None
        if hasattr(input_values, "window_batches"):  # duck-typed: the model folder does not import the extractor
            logits = self.score_streamed_windows(input_values)
        elif input_values.dim() == 4:
            logits = self.score_windows(input_values, window_mask)
        else:
            outputs = self.audiomae(input_values, output_hidden_states=output_hidden_states, return_dict=True)
            logits = self.head(outputs.pooler_output)
            hidden_states = outputs.hidden_states
        loss = self.loss(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states)

    def score_windows(self, windows: torch.Tensor, window_mask: torch.Tensor | None) -> torch.Tensor:
        batch, num_windows = windows.shape[:2]
        if window_mask is None:
            window_mask = torch.ones(batch, num_windows, dtype=torch.bool, device=windows.device)
        valid = windows[window_mask.bool()]
        step = self.config.window_batch_size
        scores = torch.cat([self.head(self.audiomae(valid[i : i + step]).pooler_output) for i in range(0, len(valid), step)])
        logits = scores.new_full((batch, num_windows, scores.shape[-1]), float("-inf"))
        logits[window_mask.bool()] = scores
        return logits.amax(dim=1)

    def score_streamed_windows(self, streamed) -> torch.Tensor:
        """Clip max of the window logits, one `window_batch_size` batch of windows in memory at a time."""
        parameter = next(self.parameters())
        logits = parameter.new_full((len(streamed), self.config.num_labels), float("-inf"))
        for index, windows in streamed.to(parameter.device).window_batches(self.config.window_batch_size):
            scores = self.head(self.audiomae(windows.to(parameter.dtype)).pooler_output)
            logits[index] = torch.maximum(logits[index], scores.amax(dim=0))
        return logits

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

__all__ = ["CRAudioMAEModel", "CRAudioMAEForAudioClassification", "CRAudioMAEPreTrainedModel"]
