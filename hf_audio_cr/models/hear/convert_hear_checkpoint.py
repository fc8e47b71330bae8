"""Map checkpoints of HEAR's reference code (HarunoriKawano/HEAR, MIT) onto our HEAR classes.

Reads plain `state_dict` files (`torch.save(module.state_dict())`, `.pt`/`.pth` read with `weights_only=True`, or
`.safetensors`) of the reference modules and writes a transformers folder (safetensors weights, config, feature
extractor, remote code):

| reference module (its keys)                                   | our folder                        |
|---|---|
| `HEAR` classifier (`acoustic_model.*`, `task_model.*`, ...)   | `HEARForAudioClassification`      |
| `AcousticModel` alone, stage 2 (`feature_extractor.*`, ...)   | `HEARModel`                       |
| `PretrainFramework` (`encoder.*`, `out_linear.*`)             | `HEARForMaskedAcousticModeling`   |
| `TokenizerTrainFramework`, stage 1 (`tokenizer.*`, `decoder.*`, `vector_quantizer.*`), or a standalone `Tokenizer` (`encoder.*`, `linear.*`) plus optionally a standalone `Decoder` (`layers.*`, `out_layer.*`) | `HEARTokenizerModel` |

Every size is read off the weights, except the two the weights cannot tell: the window overlap (50 tokens) and
the task model's head count (4), both the reference defaults. Keys we do not use are reported, never dropped
silently; the reference's preprocessor buffers (STFT windows, Mel filterbank) are compared with what
`HEARFeatureExtractor` computes instead of being loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checkpoint_io import load_checkpoint_state_dict
from .configuration_hear import HEARConfig, HEARTokenizerConfig
from .feature_extraction_hear import HEARFeatureExtractor
from .modeling_hear import HEARForAudioClassification, HEARForMaskedAcousticModeling, HEARModel
from .modeling_hear_tokenizer import HEARTokenizerModel

# One relative-position transformer layer (src/models/transformer.py) -> HEARRelativePositionLayer.
LAYER_RULES = [
    (r"layer_norm1\.", "attention_norm."),
    (r"self_attn\.query_bias1$", "attention.content_bias"),  # added to the query of the content term
    (r"self_attn\.query_bias2$", "attention.position_bias"),  # ... and of the relative-position term
    (r"self_attn\.linear_q\.", "attention.query."),
    (r"self_attn\.linear_k\.", "attention.key."),
    (r"self_attn\.linear_v\.", "attention.value."),
    (r"self_attn\.linear_out\.", "attention.output."),
    (r"self_attn\.relative_position_k\.positional_embedding\.", "attention.relative_key."),
    (r"self_attn\.relative_position_v\.positional_embedding\.", "attention.relative_value."),
    (r"layer_norm2\.", "feed_forward_norm."),
    (r"ffn\.layer_norm\.", "feed_forward.input_norm."),
    (r"ffn\.intermediate_dense\.", "feed_forward.intermediate."),
    (r"ffn\.output_dense\.", "feed_forward.output."),
]

# Classifier / task model / head (src/hear.py, task_model.py, spectrogram_mixture.py, classification_decoder.py).
HEAD_RULES = [
    (r"spectrogram_mixture\.gate_linear\.", "spectrum_fusion.gate."),
    (r"spectrogram_mixture\.spectrum_linear\.", "spectrum_fusion.spectrum_projection."),
    (r"spectrogram_mixture\.layer_norm\.", "spectrum_fusion.norm."),
    (r"spectrogram_mixture\.mixture\.", "spectrum_fusion.fusion."),
    (r"task_model\.pos_embed$", "task_model.position_embeddings"),
    # nn.TransformerEncoderLayer: in_proj stacks q, k, v in the same order as our qkv projection
    (r"task_model\.transformer\.self_attn\.in_proj_(weight|bias)$", r"task_model.layers.0.qkv.\1"),
    (r"task_model\.transformer\.self_attn\.out_proj\.", "task_model.layers.0.attention_output."),
    (r"task_model\.transformer\.linear1\.", "task_model.layers.0.intermediate."),
    (r"task_model\.transformer\.linear2\.", "task_model.layers.0.output."),
    (r"task_model\.transformer\.norm1\.", "task_model.layers.0.attention_norm."),
    (r"task_model\.transformer\.norm2\.", "task_model.layers.0.output_norm."),
    (r"decoder\.linear\.", "classifier.dense."),
    (r"decoder\.batch_norm\.", "classifier.norm."),
    (r"decoder\.out\.", "classifier.out_proj."),
    (r"out_linear\.", "token_head."),  # PretrainFramework's masked acoustic modeling head
]

# Tokenizer training framework (src/frameworks/tokenizer_train_framework.py, models/tokenizer.py, decoder.py).
TOKENIZER_RULES = [
    (r"tokenizer\.linear\.", "code_head."),
    (r"vector_quantizer\.code_book$", "quantizer.codebook"),
    (r"vector_quantizer\.linear\.", "quantizer.code_projection."),
    (r"decoder\.out_layer\.linear\.", "decoder.dense."),
    (r"decoder\.out_layer\.layer_norm\.", "decoder.norm."),
    (r"decoder\.out_layer\.out_linear\.", "decoder.reconstruction_head."),
    (r"decoder\.out_layer\.out_linear2\.", "decoder.teacher_head."),
]

LAYOUTS = ("classifier", "acoustic", "pretrain", "tokenizer")


@dataclass
class ConversionReport:
    layout: str = ""
    missing_keys: list[str] = field(default_factory=list)  # ours, not in the checkpoint (freshly initialised)
    unexpected_keys: list[str] = field(default_factory=list)  # theirs, not used
    notes: list[str] = field(default_factory=list)


def load_reference_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A flat state dict from `.safetensors`, or from `.pt`/`.pth` with `torch.load(weights_only=True)` only."""
    return load_checkpoint_state_dict(path)


def normalise_layout(state_dict: dict[str, torch.Tensor]) -> tuple[str, dict[str, torch.Tensor]]:
    """Detect which reference module wrote `state_dict` and give its keys the classifier's / tokenizer
    framework's prefixes (`acoustic_model.`, `tokenizer.`, `decoder.`)."""
    keys = set(state_dict)

    def prefixed(prefix: str, rename=None) -> dict[str, torch.Tensor]:
        return {prefix + (rename(k) if rename else k): v for k, v in state_dict.items()}

    if "acoustic_model.feature_extractor.conv.weight" in keys:
        return ("classifier" if "decoder.out.weight" in keys else "acoustic"), dict(state_dict)
    if "feature_extractor.conv.weight" in keys:  # AcousticModel.state_dict()
        return "acoustic", prefixed("acoustic_model.")
    if "encoder.feature_extractor.conv.weight" in keys and "out_linear.weight" in keys:  # PretrainFramework
        return "pretrain", {re.sub(r"^encoder\.", "acoustic_model.", k): v for k, v in state_dict.items()}
    if "tokenizer.encoder.feature_extractor.conv.weight" in keys:  # TokenizerTrainFramework
        return "tokenizer", dict(state_dict)
    if "encoder.feature_extractor.conv.weight" in keys:  # standalone Tokenizer
        return "tokenizer", prefixed("tokenizer.")
    if "out_layer.out_linear.weight" in keys:  # standalone Decoder
        return "decoder", prefixed("decoder.")
    raise ValueError(
        "not a reference HEAR checkpoint: none of the known layouts matched (expected keys such as "
        "'acoustic_model.feature_extractor.conv.weight', 'feature_extractor.conv.weight', "
        f"'tokenizer.encoder.feature_extractor.conv.weight' or 'encoder.feature_extractor.conv.weight'); got "
        f"{sorted(keys)[:5]}..."
    )


def _encoder_rules(theirs: str, ours: str) -> list[tuple[str, str]]:
    """Front end + relative-position layers under `theirs` (a reference Encoder) -> `ours`."""
    layers = rf"^{re.escape(theirs)}contextual_encoder\.layers\.(\d+)\."
    return [(rf"^{re.escape(theirs)}feature_extractor\.conv\.", f"{ours}front_end.conv.")] + [
        (layers + pattern, rf"{ours}encoder.layers.\1." + replacement) for pattern, replacement in LAYER_RULES
    ]


def _decoder_layer_rules() -> list[tuple[str, str]]:
    return [(r"^decoder\.layers\.(\d+)\." + p, r"decoder.encoder.layers.\1." + r) for p, r in LAYER_RULES]


def key_rules(layout: str) -> list[tuple[str, str]]:
    """Regex rules from the (normalised) reference keys of `layout` to our state dict keys."""
    if layout == "classifier":
        return _encoder_rules("acoustic_model.", "hear.") + [(rf"^{p}", r) for p, r in HEAD_RULES]
    if layout == "acoustic":
        return _encoder_rules("acoustic_model.", "")
    if layout == "pretrain":
        return _encoder_rules("acoustic_model.", "hear.") + [(r"^out_linear\.", "token_head.")]
    if layout == "tokenizer":
        rules = _encoder_rules("tokenizer.encoder.", "") + _decoder_layer_rules()
        return rules + [(rf"^{p}", r) for p, r in TOKENIZER_RULES]
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def _sizes(state_dict: dict[str, torch.Tensor], prefix: str) -> dict:
    """Sizes of the reference relative-position encoder under `prefix` (`...feature_extractor`/`contextual_encoder`)."""
    layer = f"{prefix}layers.0."
    indices = [int(m.group(1)) for k in state_dict if (m := re.match(rf"{re.escape(prefix)}layers\.(\d+)\.", k))]
    return {
        "hidden_size": state_dict[f"{layer}layer_norm1.weight"].shape[0],
        "intermediate_size": state_dict[f"{layer}ffn.intermediate_dense.weight"].shape[0],
        "num_attention_heads": state_dict[f"{layer}self_attn.query_bias1"].shape[0],
        "num_hidden_layers": 1 + max(indices),
        "relative_rows": state_dict[f"{layer}self_attn.relative_position_k.positional_embedding.weight"].shape[0],
        "feed_forward_layer_norm": f"{layer}ffn.layer_norm.weight" in state_dict,
        "relative_value_embeddings": f"{layer}self_attn.relative_position_v.positional_embedding.weight" in state_dict,
    }


def _front_end(state_dict, key) -> dict:
    conv = state_dict[key]
    return {"num_mel_bins": conv.shape[1], "frames_per_token": conv.shape[2]}


def tokenizer_config_from_state_dict(state_dict: dict[str, torch.Tensor], **overrides) -> HEARTokenizerConfig:
    """Tokenizer (and, when present, decoder and quantizer) sizes read off normalised `tokenizer.*` keys."""
    encoder = _sizes(state_dict, "tokenizer.encoder.contextual_encoder.")
    found = {
        **_front_end(state_dict, "tokenizer.encoder.feature_extractor.conv.weight"),
        **{k: v for k, v in encoder.items() if k != "relative_rows"},
        "max_relative_position": encoder["relative_rows"] // 2,
        "codebook_size": state_dict["tokenizer.linear.weight"].shape[0],
    }
    if "decoder.layers.0.layer_norm1.weight" in state_dict:
        decoder = _sizes(state_dict, "decoder.")
        if decoder["relative_rows"] != encoder["relative_rows"]:
            raise ValueError(
                f"the decoder's relative tables have {decoder['relative_rows']} rows but the tokenizer's "
                f"{encoder['relative_rows']}: HEARTokenizerConfig has one max_relative_position for both."
            )
        for name in ("feed_forward_layer_norm", "relative_value_embeddings"):
            if decoder[name] != encoder[name]:
                raise ValueError(f"tokenizer and decoder differ in {name}; HEARTokenizerConfig has one value for both.")
        found.update({f"decoder_{k}": decoder[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers")})
        found["teacher_hidden_size"] = state_dict["decoder.out_layer.out_linear2.weight"].shape[0]
    if "vector_quantizer.code_book" in state_dict:
        found["code_vector_size"] = state_dict["vector_quantizer.code_book"].shape[-1]
    return HEARTokenizerConfig(**{**found, **overrides})


def config_from_state_dict(layout: str, state_dict: dict[str, torch.Tensor], **overrides):
    """Our config for a normalised reference state dict of `layout` (see `normalise_layout`)."""
    if layout == "tokenizer":
        return tokenizer_config_from_state_dict(state_dict, **overrides)
    acoustic = _sizes(state_dict, "acoustic_model.contextual_encoder.")
    found = {
        **_front_end(state_dict, "acoustic_model.feature_extractor.conv.weight"),
        **{k: v for k, v in acoustic.items() if k != "relative_rows"},
        "window_length": acoustic["relative_rows"] // 2,  # the reference's max_length: windows and tables
    }
    if layout == "pretrain":
        tokenizer = {"codebook_size": state_dict["out_linear.weight"].shape[0]}
        if "tokenizer.encoder.feature_extractor.conv.weight" in state_dict:
            tokenizer = tokenizer_config_from_state_dict(state_dict).to_dict()
        found["tokenizer_config"] = tokenizer
    if layout == "classifier":
        spectrum = state_dict["spectrogram_mixture.spectrum_linear.weight"]
        positions = state_dict["task_model.pos_embed"]
        found.update(
            use_power_spectrum=True,
            spectrum_hidden_size=spectrum.shape[0],
            num_frequency_bins=spectrum.shape[1] // found["frames_per_token"],
            task_hidden_size=positions.shape[-1],
            task_max_position_embeddings=positions.shape[1],
            task_intermediate_size=state_dict["task_model.transformer.linear1.weight"].shape[0],
            task_num_hidden_layers=1,  # the reference TaskModel builds one nn.TransformerEncoderLayer
            classifier_hidden_size=state_dict["decoder.linear.weight"].shape[0],
        )
        rows = state_dict["decoder.out.weight"].shape[0]
        if "id2label" in overrides and len(overrides["id2label"]) != rows:
            raise ValueError(f"id2label has {len(overrides['id2label'])} classes but the checkpoint's head has {rows} rows.")
        if "id2label" not in overrides:
            found["num_labels"] = rows
    return HEARConfig(**{**found, **overrides})


def convert_state_dict(layout: str, state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename normalised reference keys to ours; returns (converted, reference keys not used)."""
    rules = key_rules(layout)
    converted, unused = {}, []
    for key, value in state_dict.items():
        for pattern, replacement in rules:
            if re.match(pattern, key):
                converted[re.sub(pattern, replacement, key)] = value
                break
        else:
            unused.append(key)
    if "quantizer.codebook" in converted:  # (1, V, d) parameter -> (V, d)
        converted["quantizer.codebook"] = converted["quantizer.codebook"].reshape(-1, converted["quantizer.codebook"].shape[-1])
    return converted, unused


def _check_preprocessor(state_dict: dict[str, torch.Tensor], feature_extractor: HEARFeatureExtractor) -> list[str]:
    """Compare the reference's stored STFT window / Mel filterbank with what our feature extractor computes."""
    import torchaudio

    notes = []
    ours = {
        "window": torch.hann_window(feature_extractor.win_length),
        "mel_scale.fb": torchaudio.transforms.MelScale(
            n_mels=feature_extractor.feature_size,
            sample_rate=feature_extractor.sampling_rate,
            n_stft=feature_extractor.n_fft // 2 + 1,
        ).fb,
    }
    for key, value in state_dict.items():
        if not key.startswith("preprocessor."):
            continue
        name = "mel_scale.fb" if key.endswith("mel_scale.fb") else "window" if key.endswith(".window") else None
        if name is None:
            continue
        same = ours[name].shape == value.shape and torch.allclose(ours[name], value.float(), atol=1e-6)
        notes.append(f"{key}: {'equal to' if same else 'DIFFERS from'} HEARFeatureExtractor's {name}")
    return notes


def model_class(layout: str):
    """Our model class for a layout of `normalise_layout`."""
    return {
        "classifier": HEARForAudioClassification,
        "acoustic": HEARModel,
        "pretrain": HEARForMaskedAcousticModeling,
        "tokenizer": HEARTokenizerModel,
    }[layout]


def convert_checkpoint(
    checkpoint,
    output_dir=None,
    decoder_checkpoint=None,
    window_overlap: int = 50,
    task_num_attention_heads: int = 4,
    **config_overrides,
):
    """Convert a reference checkpoint (see the module docstring) and write a model folder to `output_dir`.

    `decoder_checkpoint`: a standalone reference `Decoder` state dict to add to a standalone `Tokenizer`.
    `window_overlap` / `task_num_attention_heads`: the two sizes the weights cannot tell (reference defaults),
    used where the model has windows / a task model. `config_overrides`: any other config field (e.g. labels).
    Returns `(model, ConversionReport)`.
    """
    layout, state_dict = normalise_layout(load_reference_state_dict(checkpoint))
    if decoder_checkpoint is not None:
        extra_layout, extra = normalise_layout(load_reference_state_dict(decoder_checkpoint))
        if layout != "tokenizer" or extra_layout != "decoder":
            raise ValueError(
                f"decoder_checkpoint: expected a reference tokenizer plus a standalone Decoder, got {layout!r} + {extra_layout!r}."
            )
        state_dict = {**state_dict, **extra}
    if layout == "decoder":
        raise ValueError(f"{checkpoint}: a standalone Decoder; pass the Tokenizer checkpoint first and this one as the decoder.")
    if layout != "tokenizer":
        config_overrides = {"window_overlap": window_overlap, **config_overrides}
    if layout == "classifier":
        config_overrides = {"task_num_attention_heads": task_num_attention_heads, **config_overrides}
    config = config_from_state_dict(layout, state_dict, **config_overrides)
    model = model_class(layout)(config)
    converted, unused = convert_state_dict(layout, state_dict)
    expected = model.state_dict()
    for key, value in converted.items():
        if key in expected and tuple(expected[key].shape) != tuple(value.shape):
            raise ValueError(f"{checkpoint}: {key} has shape {tuple(value.shape)}, the model expects {tuple(expected[key].shape)}.")
    incompatible = model.load_state_dict(converted, strict=False)
    feature_extractor = HEARFeatureExtractor(
        feature_size=config.num_mel_bins, n_fft=2 * (getattr(config, "num_frequency_bins", 513) - 1)
    )
    report = ConversionReport(
        layout=layout,
        missing_keys=list(incompatible.missing_keys),
        unexpected_keys=unused + list(incompatible.unexpected_keys),
        notes=_check_preprocessor(state_dict, feature_extractor),
    )
    model.eval()
    if output_dir is not None:
        model.save_pretrained(output_dir)
        feature_extractor.save_pretrained(output_dir)
    return model, report


__all__ = [
    "ConversionReport",
    "config_from_state_dict",
    "convert_checkpoint",
    "convert_state_dict",
    "key_rules",
    "load_reference_state_dict",
    "model_class",
    "normalise_layout",
]
