"""CR-AudioMAE configuration: AudioMAE's ViT-B on 128 x 1024 Kaldi fbanks (Sadhu & Wang, Sec. 4.1)."""

from __future__ import annotations

import csv
from pathlib import Path

from huggingface_hub.dataclasses import strict
from transformers.configuration_utils import PreTrainedConfig


def _default_id2label() -> dict[int, str] | None:
    """The 527 AudioSet display names in the standard order, when hf_audio_cr's label file is at hand: the same
    names as ``hf_audio_cr.data.audioset_id2label("527")`` (the ontology's), read from the shipped CSV because a
    model folder must not import the data package (it travels as remote code).

    Saved folders always carry `id2label`, so remote-code loading never needs this default.
    """
    try:
        from importlib.resources import files

        path = Path(str(files("hf_audio_cr.data") / "resources" / "class_labels_indices.csv"))
    except (ImportError, ModuleNotFoundError):
        return None
    if not path.is_file():
        return None
    with path.open(newline="") as f:
        return {int(row["index"]): row["display_name"] for row in csv.DictReader(f)}


@strict
class CRAudioMAEConfig(PreTrainedConfig):
    r"""Configuration of a CR-AudioMAE model (AudioMAE ViT-B fine-tuned with consistency regularization).

    Defaults are AudioMAE's ViT-B as used by the CR paper (88.9 M trainable parameters with the 556-label head).

    Args:
        hidden_size (`int`, defaults to 768): width of the transformer.
        num_hidden_layers (`int`, defaults to 12): transformer blocks.
        num_attention_heads (`int`, defaults to 12): attention heads per block.
        intermediate_size (`int`, defaults to 3072): MLP width (4 x hidden).
        hidden_act (`str`, defaults to `"gelu"`): MLP activation.
        qkv_bias (`bool`, defaults to `True`): bias on the fused query/key/value projection.
        layer_norm_eps (`float`, defaults to 1e-6): LayerNorm epsilon (timm ViT).
        hidden_dropout_prob (`float`, defaults to 0.0): dropout after attention and MLP projections.
        attention_probs_dropout_prob (`float`, defaults to 0.0): attention dropout.
        drop_path_rate (`float`, defaults to 0.1): stochastic depth, linearly increasing over blocks.
        patch_size (`int`, defaults to 16): square Conv2d patch embedding, stride = patch size.
        num_mel_bins (`int`, defaults to 128): frequency size of the input fbank.
        max_length (`int`, defaults to 1024): time frames of the input fbank (10.24 s); 64 x 8 = 512 patches.
        patch_drop_time (`float`, defaults to 0.2): share of whole time columns of patches dropped per sample
            while training (AudioMAE fine-tuning `mask_t_prob`).
        patch_drop_freq (`float`, defaults to 0.2): share of whole frequency rows dropped per sample
            while training (AudioMAE fine-tuning `mask_f_prob`).
        window_batch_size (`int`, defaults to 16): windows of a long clip run through the encoder at once.
        initializer_range (`float`, defaults to 0.02): std of the truncated-normal init.
            From scratch the position table is AudioMAE's fixed 2-D sin-cos table, built as its pretraining builds
            it (on the (freq, time) = (8, 64) patch grid, transposed relative to the (64, 8) token grid; equal to the
            table stored in AudioMAE checkpoints) and never trained; converted checkpoints keep their stored table.
        num_labels / id2label: AudioSet's 527 classes in the standard order by default.
        problem_type (`str`, defaults to `"multi_label_classification"`): BCE with logits; use
            `"single_label_classification"` for cross-entropy.
    """

    model_type = "cr_audiomae"

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-6
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    drop_path_rate: float = 0.1
    patch_size: int = 16
    num_mel_bins: int = 128
    max_length: int = 1024
    patch_drop_time: float = 0.2
    patch_drop_freq: float = 0.2
    window_batch_size: int = 16
    initializer_range: float = 0.02
    problem_type: str | None = "multi_label_classification"

    def __post_init__(self, **kwargs):
        if self.id2label is None and kwargs.get("num_labels") is None:
            self.id2label = _default_id2label()
        super().__post_init__(**kwargs)
        if self.label2id is None and self.id2label is not None:
            self.label2id = {name: i for i, name in self.id2label.items()}

    def validate_architecture(self):
        super().validate_architecture()
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})."
            )
        for name in ("max_length", "num_mel_bins"):
            if getattr(self, name) % self.patch_size:
                raise ValueError(f"{name} ({getattr(self, name)}) must be a multiple of patch_size ({self.patch_size}).")
        for name in ("patch_drop_time", "patch_drop_freq", "drop_path_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}.")

    @property
    def patch_grid(self) -> tuple[int, int]:
        """(time, frequency) patches: 64 x 8 for the default 1024 x 128 input."""
        return self.max_length // self.patch_size, self.num_mel_bins // self.patch_size


__all__ = ["CRAudioMAEConfig"]
