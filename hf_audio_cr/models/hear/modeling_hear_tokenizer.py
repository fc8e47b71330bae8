"""HEAR's acoustic tokenizer (Sec. II-B, Fig. 1a): encoder -> 1024-way code logits -> Gumbel-softmax vector
quantizer (hard one-hot, 32-dim codes) -> decoder with a Mel-reconstruction head and a teacher-feature head.

The losses (Eq. 1: reconstruction, distillation, diversity) live in `hf_audio_cr.training`; this model returns
everything they need. Self-contained (only same-folder imports) so it travels as remote code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import initialization as init
from transformers.dynamic_module_utils import custom_object_save
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_hear import HEARTokenizerConfig
from .modeling_hear_layers import (
    HEARFrontEnd,
    check_input_values,
    init_hear_weights,
    lengths_to_mask,
    relative_encoder_from,
    token_lengths,
)


@dataclass
class HEARTokenizerOutput(ModelOutput):
    """Tokenizer output.

    Args:
        code_logits (`(batch, tokens, codebook_size)`): encoder logits over the codebook (softmax of these gives the
            assignment probabilities of the diversity loss).
        codes (`(batch, tokens)` long): the discrete acoustic tokens (argmax), the MAM targets.
        reconstruction (`(batch, tokens * 2, num_mel_bins)`): decoded normalised log-Mel frames.
        teacher_prediction (`(batch, tokens, teacher_hidden_size)`): decoder prediction of the teacher's features.
        token_attention_mask (`(batch, tokens)` bool): valid tokens; valid reconstructed frames are the first
            `2 * tokens` frames of each clip.
        last_hidden_state (`(batch, tokens, hidden)`): tokenizer encoder output.
        hidden_states (`tuple`, *optional*): front-end output and every tokenizer encoder layer's output.
    """

    code_logits: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    teacher_prediction: torch.FloatTensor | None = None
    token_attention_mask: torch.BoolTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class HEARGumbelVectorQuantizer(nn.Module):
    """Code logits -> hard one-hot codes (Gumbel-softmax while training, argmax in eval) -> codebook vector
    (32-dim) -> linear projection to the decoder width. The temperature is a persistent buffer, so it is saved
    with the weights and a resumed run continues the annealing where it stopped."""

    def __init__(self, config: HEARTokenizerConfig):
        super().__init__()
        self.min_temperature = config.gumbel_min_temperature
        self.temperature_decay = config.gumbel_temperature_decay
        self.codebook = nn.Parameter(torch.zeros(config.codebook_size, config.code_vector_size))
        self.code_projection = nn.Linear(config.code_vector_size, config.decoder_hidden_size)
        self.register_buffer("temperature", torch.tensor(config.gumbel_init_temperature), persistent=True)

    @torch.no_grad()
    def anneal_temperature(self, steps: int = 1) -> float:
        """tau <- max(tau_min, tau * 0.999995^steps); call once per optimizer step (Sec. II-B)."""
        self.temperature.copy_((self.temperature * self.temperature_decay**steps).clamp_min(self.min_temperature))
        return float(self.temperature)

    def forward(self, code_logits: torch.Tensor) -> torch.Tensor:
        if self.training:  # straight-through: one-hot forward, softmax gradient
            one_hot = F.gumbel_softmax(code_logits.float(), tau=self.temperature, hard=True).to(code_logits.dtype)
        else:
            one_hot = F.one_hot(code_logits.argmax(dim=-1), code_logits.shape[-1]).to(code_logits.dtype)
        return self.code_projection(one_hot @ self.codebook)


class HEARTokenizerDecoder(nn.Module):
    """Relative-position transformer over the quantized tokens, then Linear + GELU + LayerNorm and two heads:
    the Mel frames of each token (2 x 128, back at the input frame rate) and the teacher's features."""

    def __init__(self, config: HEARTokenizerConfig):
        super().__init__()
        width = config.decoder_hidden_size
        self.frames_per_token = config.frames_per_token
        self.encoder = relative_encoder_from(config, prefix="decoder_")
        self.dense = nn.Linear(width, width)
        self.activation = nn.GELU()
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.reconstruction_head = nn.Linear(width, config.frames_per_token * config.num_mel_bins)
        self.teacher_head = nn.Linear(width, config.teacher_hidden_size)

    def forward(self, quantized: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden_states, _ = self.encoder(quantized, attention_mask)
        hidden_states = self.norm(self.activation(self.dense(hidden_states)))
        batch, tokens, _ = hidden_states.shape
        reconstruction = self.reconstruction_head(hidden_states).view(batch, tokens * self.frames_per_token, -1)
        return reconstruction, self.teacher_head(hidden_states)


class HEARTokenizerModel(PreTrainedModel):
    """The acoustic tokenizer with its training decoder (a VQ-VAE with knowledge distillation, Fig. 1a).

    `forward` runs encoder, quantizer and decoder (stage 1 training); `tokenize` runs the encoder only and
    returns the codes that masked acoustic modeling predicts (stage 2, tokenizer frozen).
    """

    config: HEARTokenizerConfig
    config_class = HEARTokenizerConfig
    base_model_prefix = "tokenizer"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["HEARRelativePositionLayer"]
    accepts_loss_kwargs = False  # per-batch mean losses: Trainer divides them for gradient accumulation

    def __init__(self, config: HEARTokenizerConfig):
        super().__init__(config)
        self.front_end = HEARFrontEnd(config.num_mel_bins, config.hidden_size, config.frames_per_token)
        self.encoder = relative_encoder_from(config)
        self.code_head = nn.Linear(config.hidden_size, config.codebook_size)
        self.quantizer = HEARGumbelVectorQuantizer(config)
        self.decoder = HEARTokenizerDecoder(config)
        self.gradient_checkpointing = False
        self.post_init()

    def _init_weights(self, module):
        init_hear_weights(module, self.config.initializer_range)
        if isinstance(module, HEARGumbelVectorQuantizer):
            init.normal_(module.codebook, std=1.0)
            init.constant_(module.temperature, self.config.gumbel_init_temperature)

    @property
    def gumbel_temperature(self) -> float:
        return float(self.quantizer.temperature)

    def anneal_gumbel_temperature(self, steps: int = 1) -> float:
        """Advance the temperature schedule by `steps` optimizer steps; returns the new temperature."""
        return self.quantizer.anneal_temperature(steps)

    def encode(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple | None]:
        """-> code logits, token mask, encoder output, encoder hidden states."""
        check_input_values(input_values, attention_mask, self.config, type(self).__name__)
        hidden_states = self.front_end(input_values)
        token_mask = lengths_to_mask(
            token_lengths(attention_mask, input_values, self.config.frames_per_token), hidden_states.shape[1]
        )
        last, all_hidden = self.encoder(hidden_states, token_mask, output_hidden_states)
        return self.code_head(last), token_mask, last, all_hidden

    def tokenize(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.LongTensor, torch.BoolTensor]:
        """Discrete acoustic tokens `(batch, tokens)` and their validity mask (encoder only, no decoder)."""
        code_logits, token_mask, _, _ = self.encode(input_values, attention_mask)
        return code_logits.argmax(dim=-1), token_mask

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> HEARTokenizerOutput | tuple:
        output_hidden_states = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = self.config.return_dict if return_dict is None else return_dict
        code_logits, token_mask, last, all_hidden = self.encode(input_values, attention_mask, output_hidden_states)
        reconstruction, teacher_prediction = self.decoder(self.quantizer(code_logits), token_mask)
        output = HEARTokenizerOutput(
            code_logits=code_logits,
            codes=code_logits.argmax(dim=-1),
            reconstruction=reconstruction,
            teacher_prediction=teacher_prediction,
            token_attention_mask=token_mask,
            last_hidden_state=last,
            hidden_states=all_hidden,
        )
        return output if return_dict else output.to_tuple()

    def save_pretrained(self, save_directory, *args, **kwargs):
        # transformers special-cases auto classes whose name contains "Tokenizer" (it expects a text tokenizer),
        # so the auto_map is written here and the code copied without `register_for_auto_class`.
        self.config.auto_map = {
            "AutoConfig": "configuration_hear.HEARTokenizerConfig",
            "AutoModel": "modeling_hear_tokenizer.HEARTokenizerModel",
        }
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            custom_object_save(self, save_directory)
        return result


__all__ = ["HEARGumbelVectorQuantizer", "HEARTokenizerModel", "HEARTokenizerOutput"]
