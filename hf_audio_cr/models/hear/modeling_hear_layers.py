"""Blocks shared by HEAR's tokenizer, decoder and acoustic model: the Conv1d front end and the pre-norm
transformer with Shaw relative positions (Sec. II-A, ref. [18]). Self-contained (only same-folder imports)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer


def lengths_to_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """`(batch,)` valid lengths -> `(batch, max_length)` bool mask, True on valid positions."""
    return torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]


class HEARFrontEnd(nn.Module):
    """Patch splitting along time: Conv1d(Mel bins -> hidden, kernel 2, stride 2) + ReLU, one token per 20 ms."""

    def __init__(self, num_mel_bins: int, hidden_size: int, frames_per_token: int):
        super().__init__()
        self.frames_per_token = frames_per_token
        self.conv = nn.Conv1d(num_mel_bins, hidden_size, kernel_size=frames_per_token, stride=frames_per_token)
        self.activation = nn.ReLU()

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        """`(batch, frames, mels)` -> `(batch, frames // 2, hidden)`; a trailing odd frame is dropped."""
        return self.activation(self.conv(input_values.transpose(1, 2))).transpose(1, 2)


class HEARRelativePositionAttention(nn.Module):
    """Multi-head self-attention with learned relative positions (Shaw et al.) and two query biases.

    score_ij = ((q_i + u) . k_j + (q_i + w) . a^K_{j-i}) / sqrt(d);  out_i = sum_j p_ij (v_j + a^V_{j-i}).
    Distances are clipped to [-max_relative_position, max_relative_position - 1] (2 * max entries per table).
    The value-side term needs the attention probabilities, so that path computes them explicitly; without it
    (`relative_value_embeddings=False`) attention runs through `scaled_dot_product_attention` with the key-side
    term as an additive `attn_mask`.
    """

    def __init__(
        self,
        hidden_size: int,
        num_attention_heads: int,
        max_relative_position: int,
        relative_value_embeddings: bool,
        attention_dropout: float,
    ):
        super().__init__()
        self.num_heads = num_attention_heads
        self.head_size = hidden_size // num_attention_heads
        self.max_relative_position = max_relative_position
        self.attention_dropout = attention_dropout
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, hidden_size)
        self.relative_key = nn.Embedding(2 * max_relative_position, self.head_size)
        self.relative_value = (
            nn.Embedding(2 * max_relative_position, self.head_size) if relative_value_embeddings else None
        )
        self.content_bias = nn.Parameter(torch.zeros(num_attention_heads, self.head_size))
        self.position_bias = nn.Parameter(torch.zeros(num_attention_heads, self.head_size))

    def relative_indices(self, length: int, device: torch.device) -> torch.Tensor:
        """`(length, length)` table row index of distance j - i (query i, key j), clipped to the table."""
        positions = torch.arange(length, device=device)
        distance = positions[None, :] - positions[:, None]
        limit = self.max_relative_position
        return distance.clamp(-limit, limit - 1) + limit

    def relative_term(self, weights: torch.Tensor, table: torch.Tensor, keys_side: bool) -> torch.Tensor:
        """Key side: `weights` = queries `(b, h, i, d)` -> `sum_d q_id a_{j-i,d}` `(b, h, i, j)`.
        Value side: `weights` = probabilities `(b, h, i, j)` -> `sum_j p_ij a_{j-i}` `(b, h, i, d)`."""
        batch, heads, length = weights.shape[:3]
        limit = self.max_relative_position
        if length > limit:  # distances get clipped: gather the (i, j, d) table explicitly
            gathered = table[self.relative_indices(length, weights.device)]
            return torch.einsum("bhid,ijd->bhij" if keys_side else "bhij,ijd->bhid", weights, gathered)
        # Without clipping, query i needs rows limit-i .. limit-i+L-1 of the table: consecutive rows of the
        # flipped table, so one `unfold` view holds every query's (d, L) slice (key order reversed) and each
        # term is one batched matmul over queries, with no (L, L, d) gather.
        windows = table.flip(0).unfold(0, length, 1)[limit - length : limit]  # (i, d, L - 1 - j)
        if keys_side:
            per_query = weights.permute(2, 0, 1, 3).reshape(length, batch * heads, -1)
            scores = torch.bmm(per_query, windows).view(length, batch, heads, length)
            return scores.permute(1, 2, 0, 3).flip(-1)
        per_query = weights.flip(-1).permute(2, 0, 1, 3).reshape(length, batch * heads, length)
        return torch.bmm(per_query, windows.transpose(1, 2)).view(length, batch, heads, -1).permute(1, 2, 0, 3)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """`hidden_states` `(batch, length, hidden)`, `attention_mask` `(batch, length)` bool (True = valid key)."""
        batch, length, hidden = hidden_states.shape

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, length, self.num_heads, self.head_size).transpose(1, 2)

        query, key, value = heads(self.query(hidden_states)), heads(self.key(hidden_states)), heads(self.value(hidden_states))
        scale = 1.0 / math.sqrt(self.head_size)
        position_query = query + self.position_bias[None, :, None, :]
        position_scores = self.relative_term(position_query, self.relative_key.weight, keys_side=True)
        # masked keys get the most negative finite score: a window with no valid token stays finite
        key_mask = attention_mask[:, None, None, :]
        dropout = self.attention_dropout if self.training else 0.0
        content_query = query + self.content_bias[None, :, None, :]
        if self.relative_value is None:
            bias = (position_scores * scale).masked_fill(~key_mask, torch.finfo(position_scores.dtype).min)
            attended = F.scaled_dot_product_attention(content_query, key, value, attn_mask=bias, dropout_p=dropout, scale=scale)
        else:
            scores = (content_query @ key.transpose(-1, -2) + position_scores) * scale
            scores = scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min)
            probs = F.dropout(scores.softmax(dim=-1), p=dropout, training=self.training)
            attended = probs @ value + self.relative_term(probs, self.relative_value.weight, keys_side=False)
        return self.output(attended.transpose(1, 2).reshape(batch, length, hidden))


class HEARFeedForward(nn.Module):
    """[LayerNorm ->] Linear -> SiLU -> dropout -> Linear -> dropout.

    The reference code's feed-forward block starts with its own LayerNorm, right after the layer's pre-norm
    (`input_norm`, on by default: `feed_forward_layer_norm`); without it the authors' weights do not compute the
    same function."""

    def __init__(
        self,
        hidden_size: int,
        intermediate_size: int,
        hidden_act: str,
        dropout: float,
        input_norm: bool = True,
        layer_norm_eps: float = 1e-5,
    ):
        super().__init__()
        self.input_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps) if input_norm else None
        self.intermediate = nn.Linear(hidden_size, intermediate_size)
        self.activation = ACT2FN[hidden_act]
        self.output = nn.Linear(intermediate_size, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.input_norm is not None:
            hidden_states = self.input_norm(hidden_states)
        return self.dropout(self.output(self.dropout(self.activation(self.intermediate(hidden_states)))))


class HEARRelativePositionLayer(GradientCheckpointingLayer):
    """Pre-norm block: x + Attn(LN(x)), then x + FFN(LN(x)) (the FFN opens with a second LayerNorm by default)."""

    def __init__(
        self,
        hidden_size: int,
        intermediate_size: int,
        num_attention_heads: int,
        hidden_act: str,
        max_relative_position: int,
        relative_value_embeddings: bool,
        hidden_dropout: float,
        attention_dropout: float,
        layer_norm_eps: float,
        feed_forward_layer_norm: bool = True,
    ):
        super().__init__()
        self.attention_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.attention = HEARRelativePositionAttention(
            hidden_size, num_attention_heads, max_relative_position, relative_value_embeddings, attention_dropout
        )
        self.feed_forward_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.feed_forward = HEARFeedForward(
            hidden_size, intermediate_size, hidden_act, hidden_dropout, feed_forward_layer_norm, layer_norm_eps
        )

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.attention(self.attention_norm(hidden_states), attention_mask)
        return hidden_states + self.feed_forward(self.feed_forward_norm(hidden_states))


class HEARRelativePositionEncoder(nn.Module):
    """A stack of relative-position layers (no final norm, as in the reference code)."""

    def __init__(self, num_hidden_layers: int, **layer_kwargs):
        super().__init__()
        self.layers = nn.ModuleList(HEARRelativePositionLayer(**layer_kwargs) for _ in range(num_hidden_layers))

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        all_hidden = (hidden_states,) if output_hidden_states else None
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask)
            if output_hidden_states:
                all_hidden += (hidden_states,)
        return hidden_states, all_hidden


def relative_encoder_from(config, prefix: str = "") -> HEARRelativePositionEncoder:
    """Build an encoder from `config.<prefix>hidden_size` etc. (prefix "" or "decoder_")."""
    return HEARRelativePositionEncoder(
        num_hidden_layers=getattr(config, f"{prefix}num_hidden_layers"),
        hidden_size=getattr(config, f"{prefix}hidden_size"),
        intermediate_size=getattr(config, f"{prefix}intermediate_size"),
        num_attention_heads=getattr(config, f"{prefix}num_attention_heads"),
        hidden_act=config.hidden_act,
        max_relative_position=getattr(config, "max_relative_position", None) or config.window_length,
        relative_value_embeddings=config.relative_value_embeddings,
        hidden_dropout=config.hidden_dropout,
        attention_dropout=config.attention_dropout,
        layer_norm_eps=config.layer_norm_eps,
        feed_forward_layer_norm=config.feed_forward_layer_norm,
    )


def check_input_values(input_values: torch.Tensor, attention_mask: torch.Tensor | None, config, name: str) -> None:
    """Clear errors for inputs that are not `(batch, frames, mels)` log-Mel frames from HEARFeatureExtractor."""
    if not isinstance(input_values, torch.Tensor) or input_values.dim() != 3 or input_values.shape[-1] != config.num_mel_bins:
        shape = tuple(input_values.shape) if isinstance(input_values, torch.Tensor) else type(input_values).__name__
        raise ValueError(
            f"{name}: input_values must have shape (batch, frames, {config.num_mel_bins}) (log-Mel frames), got "
            f"{shape}; compute them with HEARFeatureExtractor."
        )
    if input_values.shape[1] < config.frames_per_token:
        raise ValueError(
            f"{name}: input_values has {input_values.shape[1]} frames; at least {config.frames_per_token} make a token."
        )
    if attention_mask is not None and tuple(attention_mask.shape) != tuple(input_values.shape[:2]):
        raise ValueError(
            f"{name}: attention_mask must have shape {tuple(input_values.shape[:2])} (batch, frames), got "
            f"{tuple(attention_mask.shape)}."
        )


def token_lengths(attention_mask: torch.Tensor | None, input_values: torch.Tensor, frames_per_token: int) -> torch.Tensor:
    """Valid tokens per clip: whole frame pairs among its valid frames."""
    if attention_mask is None:
        frames = torch.full((input_values.shape[0],), input_values.shape[1], device=input_values.device)
    else:
        frames = attention_mask.to(torch.long).sum(dim=-1)
    return frames // frames_per_token


__all__ = [
    "HEARFrontEnd",
    "HEARRelativePositionAttention",
    "HEARRelativePositionEncoder",
    "HEARRelativePositionLayer",
    "lengths_to_mask",
    "relative_encoder_from",
]


def init_hear_weights(module: nn.Module, std: float) -> None:
    """Weight init shared by the tokenizer and the acoustic/task models. Where the paper is silent it follows the
    reference code: Xavier-uniform query/key/value projections, N(0, 1) relative-position tables (PyTorch's
    `nn.Embedding` default), zero query biases; other projections truncated-normal(`std`), unit norms
    (BatchNorm statistics reset). Children are initialised before their parent, so the attention branch
    overrides the generic Linear / Embedding init of its own projections and tables."""
    if isinstance(module, (nn.Linear, nn.Conv1d)):
        init.trunc_normal_(module.weight, std=std)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        init.trunc_normal_(module.weight, std=std)
    elif isinstance(module, (nn.LayerNorm, nn.BatchNorm1d)):
        init.ones_(module.weight)
        init.zeros_(module.bias)
        if isinstance(module, nn.BatchNorm1d):
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)
    elif isinstance(module, HEARRelativePositionAttention):
        init.zeros_(module.content_bias)
        init.zeros_(module.position_bias)
        for projection in (module.query, module.key, module.value):
            init.xavier_uniform_(projection.weight)
        for table in (module.relative_key, module.relative_value):
            if table is not None:
                init.normal_(table.weight, std=1.0)
