"""HEAR configurations (Kawano & Sasaki): the acoustic tokenizer (stage 1) and the acoustic/task model (stages 2-3).

Defaults are the paper's (Table I, Sec. II-III) and, where the paper is silent, the authors' reference code
(HarunoriKawano/HEAR, MIT). Self-contained (only transformers imports) so it travels as remote code.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers.configuration_utils import PreTrainedConfig


def _check_transformer_sizes(owner: str, prefix: str, hidden: int, heads: int, layers: int) -> None:
    if hidden % heads:
        raise ValueError(f"{owner}: {prefix}hidden_size ({hidden}) must be divisible by {prefix}num_attention_heads ({heads}).")
    if layers < 1:
        raise ValueError(f"{owner}: {prefix}num_hidden_layers must be >= 1, got {layers}.")


@strict
class HEARTokenizerConfig(PreTrainedConfig):
    r"""Configuration of the HEAR acoustic tokenizer (Sec. II-B, Table I): encoder -> Gumbel-softmax codes -> decoder.

    Args:
        num_mel_bins (`int`, defaults to 128): Mel bins of the input log-Mel spectrogram.
        frames_per_token (`int`, defaults to 2): kernel and stride of the Conv1d front end (10 ms frames -> 20 ms tokens).
        hidden_size (`int`, defaults to 128): tokenizer encoder width.
        intermediate_size (`int`, defaults to 512): tokenizer encoder feed-forward width.
        num_attention_heads (`int`, defaults to 4): tokenizer encoder heads.
        num_hidden_layers (`int`, defaults to 6): tokenizer encoder layers.
        hidden_act (`str`, defaults to `"silu"`): feed-forward activation of the relative-position layers.
        max_relative_position (`int`, defaults to 300): relative distances -300..299 get their own learned key and
            value embedding (Shaw et al.), farther ones share the end entries; 300 tokens = one 6 s segment.
        relative_value_embeddings (`bool`, defaults to `True`): also add relative embeddings on the value side
            (Shaw et al.). `False` lets attention run through `scaled_dot_product_attention` with the key-side
            bias as `attn_mask`.
        codebook_size (`int`, defaults to 1024): vocabulary V of discrete acoustic tokens.
        code_vector_size (`int`, defaults to 32): dimension of a codebook vector.
        decoder_hidden_size (`int`, defaults to 128) / decoder_intermediate_size (`int`, defaults to 512) /
        decoder_num_attention_heads (`int`, defaults to 4) / decoder_num_hidden_layers (`int`, defaults to 2):
            the decoder's relative-position transformer (Table I).
        teacher_hidden_size (`int`, defaults to 768): width of the teacher features the decoder predicts for the
            distillation loss (SSAST-Base).
        gumbel_init_temperature (`float`, defaults to 2.0) / gumbel_min_temperature (`float`, defaults to 0.5) /
        gumbel_temperature_decay (`float`, defaults to 0.999995): Gumbel-softmax temperature schedule, multiplied by
            the decay at every training step down to the minimum (Sec. II-B).
        hidden_dropout (`float`, defaults to 0.1): dropout in the feed-forward blocks.
        attention_dropout (`float`, defaults to 0.1): dropout on attention probabilities.
        layer_norm_eps (`float`, defaults to 1e-5): LayerNorm epsilon.
        feed_forward_layer_norm (`bool`, defaults to `True`): every feed-forward block (encoder and decoder) opens
            with its own LayerNorm after the layer's pre-norm, as in the reference code (`FeedForward`); the
            paper is silent. `False` keeps the single pre-norm.
        initializer_range (`float`, defaults to 0.02): std of the truncated-normal init of the front end, the
            attention output, feed-forward, code and decoder projections.

    Initialisation, where the paper is silent, follows the reference code: Xavier-uniform query/key/value
    projections, N(0, 1) relative-position tables, zero query biases, N(0, 1) codebook; LayerNorms 1 / 0.
    """

    model_type = "hear_tokenizer"

    num_mel_bins: int = 128
    frames_per_token: int = 2
    hidden_size: int = 128
    intermediate_size: int = 512
    num_attention_heads: int = 4
    num_hidden_layers: int = 6
    hidden_act: str = "silu"
    max_relative_position: int = 300
    relative_value_embeddings: bool = True
    codebook_size: int = 1024
    code_vector_size: int = 32
    decoder_hidden_size: int = 128
    decoder_intermediate_size: int = 512
    decoder_num_attention_heads: int = 4
    decoder_num_hidden_layers: int = 2
    teacher_hidden_size: int = 768
    gumbel_init_temperature: float = 2.0
    gumbel_min_temperature: float = 0.5
    gumbel_temperature_decay: float = 0.999995
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-5
    feed_forward_layer_norm: bool = True
    initializer_range: float = 0.02

    def validate_architecture(self):
        super().validate_architecture()
        name = type(self).__name__
        _check_transformer_sizes(name, "", self.hidden_size, self.num_attention_heads, self.num_hidden_layers)
        _check_transformer_sizes(
            name, "decoder_", self.decoder_hidden_size, self.decoder_num_attention_heads, self.decoder_num_hidden_layers
        )
        if not 0 < self.gumbel_min_temperature <= self.gumbel_init_temperature:
            raise ValueError(
                f"{name}: need 0 < gumbel_min_temperature ({self.gumbel_min_temperature}) <= "
                f"gumbel_init_temperature ({self.gumbel_init_temperature})."
            )
        if not 0 < self.gumbel_temperature_decay <= 1:
            raise ValueError(f"{name}: gumbel_temperature_decay must be in (0, 1], got {self.gumbel_temperature_decay}.")


@strict
class HEARConfig(PreTrainedConfig):
    r"""Configuration of HEAR's acoustic model, gated-spectrum task model and classification head (Fig. 2, Table I).

    Acoustic model (`HEARModel`, pre-trained by masked acoustic modeling):

    Args:
        num_mel_bins (`int`, defaults to 128): Mel bins of the input log-Mel spectrogram.
        frames_per_token (`int`, defaults to 2): kernel and stride of the Conv1d front end (20 ms per token).
        hidden_size (`int`, defaults to 384) / intermediate_size (`int`, defaults to 1536) /
        num_attention_heads (`int`, defaults to 4) / num_hidden_layers (`int`, defaults to 6): acoustic model sizes.
        hidden_act (`str`, defaults to `"silu"`): feed-forward activation of the acoustic model.
        window_length (`int`, defaults to 300): tokens per sliding window (6 s); also the range of the learned
            relative positions.
        window_overlap (`int`, defaults to 50): tokens shared by consecutive windows (1 s), merged by a
            raised-cosine cross-fade. Windows start every `window_length - window_overlap` tokens.
        relative_value_embeddings (`bool`, defaults to `True`): relative embeddings on the value side as well
            (Shaw et al.); `False` runs attention through `scaled_dot_product_attention`.
        hidden_dropout (`float`, defaults to 0.1) / attention_dropout (`float`, defaults to 0.1): dropout rates.
        layer_norm_eps (`float`, defaults to 1e-5): LayerNorm epsilon everywhere.
        feed_forward_layer_norm (`bool`, defaults to `True`): every feed-forward block of the acoustic model
            opens with its own LayerNorm after the layer's pre-norm, as in the reference code (`FeedForward`);
            the paper is silent. `False` keeps the single pre-norm.
        mask_time_prob (`float`, defaults to 0.4): share of tokens masked independently in masked acoustic
            modeling (Sec. III-A1); read by the training code, not by the forward pass.
        tokenizer_config (`HEARTokenizerConfig` or `dict`, *optional*): the acoustic tokenizer whose codes the
            masked acoustic modeling head predicts (`codebook_size` outputs).

    Task model and head (`HEARForAudioClassification`, Sec. II-D):

        use_power_spectrum (`bool`, defaults to `True`): fuse the gated log power spectrum (Eq. 2-4); `False` is
            the "w/o Spectrum" ablation.
        num_frequency_bins (`int`, defaults to 513): bins of the power spectrum (n_fft 1024).
        spectrum_hidden_size (`int`, defaults to 384): d_p, width of the projected spectrum v_t.
        task_hidden_size (`int`, defaults to 384) / task_intermediate_size (`int`, defaults to 1536) /
        task_num_attention_heads (`int`, defaults to 4) / task_num_hidden_layers (`int`, defaults to 1): the task
            model, a standard (post-norm) transformer.
        task_hidden_act (`str`, defaults to `"relu"`): its feed-forward activation (PyTorch's standard layer).
        task_max_position_embeddings (`int`, defaults to 1500): learned absolute positions (30 s of tokens); longer
            inputs use the table linearly interpolated.
        classifier_hidden_size (`int`, defaults to 384): width of the head after mean/max/std pooling.
        classifier_dropout (`float`, defaults to 0.1): dropout before the output layer.
        freeze_acoustic_model (`bool`, defaults to `False`): train only the task model and head ("Transfer").
        initializer_range (`float`, defaults to 0.02): std of the truncated-normal init of the front end, the
            attention output, feed-forward, fusion and head projections.
        problem_type (`str`, *optional*): `"single_label_classification"` (cross-entropy),
            `"multi_label_classification"` (BCE with logits) or `"regression"`; inferred from the labels if unset.

    Initialisation, where the paper is silent, follows the reference code so from-scratch runs start where the
    authors' do: Xavier-uniform query/key/value projections (the relative-position layers, and the task layer's
    stacked q/k/v as `nn.MultiheadAttention`), N(0, 1) relative-position tables, zero query biases, zero task
    positions; LayerNorm / BatchNorm 1 / 0.
    """

    model_type = "hear"
    sub_configs_defaults = {"tokenizer_config": HEARTokenizerConfig}

    num_mel_bins: int = 128
    frames_per_token: int = 2
    hidden_size: int = 384
    intermediate_size: int = 1536
    num_attention_heads: int = 4
    num_hidden_layers: int = 6
    hidden_act: str = "silu"
    window_length: int = 300
    window_overlap: int = 50
    relative_value_embeddings: bool = True
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-5
    feed_forward_layer_norm: bool = True
    mask_time_prob: float = 0.4
    tokenizer_config: dict | HEARTokenizerConfig | None = None
    use_power_spectrum: bool = True
    num_frequency_bins: int = 513
    spectrum_hidden_size: int = 384
    task_hidden_size: int = 384
    task_intermediate_size: int = 1536
    task_num_attention_heads: int = 4
    task_num_hidden_layers: int = 1
    task_hidden_act: str = "relu"
    task_max_position_embeddings: int = 1500
    classifier_hidden_size: int = 384
    classifier_dropout: float = 0.1
    freeze_acoustic_model: bool = False
    initializer_range: float = 0.02

    def validate_architecture(self):
        super().validate_architecture()
        name = type(self).__name__
        _check_transformer_sizes(name, "", self.hidden_size, self.num_attention_heads, self.num_hidden_layers)
        _check_transformer_sizes(
            name, "task_", self.task_hidden_size, self.task_num_attention_heads, self.task_num_hidden_layers
        )
        if not 0 <= self.window_overlap < self.window_length:
            raise ValueError(
                f"{name}: window_overlap ({self.window_overlap}) must be in [0, window_length={self.window_length})."
            )
        if not 0.0 <= self.mask_time_prob < 1.0:
            raise ValueError(f"{name}: mask_time_prob must be in [0, 1), got {self.mask_time_prob}.")

    @property
    def window_stride(self) -> int:
        """Tokens between window starts: 250 (5 s) by default."""
        return self.window_length - self.window_overlap

    @property
    def codebook_size(self) -> int:
        """Outputs of the masked acoustic modeling head: the tokenizer's vocabulary."""
        return self.tokenizer_config.codebook_size


__all__ = ["HEARConfig", "HEARTokenizerConfig"]
