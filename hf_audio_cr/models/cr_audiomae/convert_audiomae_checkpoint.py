"""Map original AudioMAE (facebookresearch/AudioMAE) and timm ViT weights onto CR-AudioMAE.

The one place foreign weights are adapted: key renaming, `module.` prefixes, and resizing of the stored
position table when the patch grid differs. Pickled checkpoints are read with `weights_only=True` only, with one
class allowed beyond tensors and containers: `argparse.Namespace`, the `args` that AudioMAE's `save_model` stores.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F

from .configuration_cr_audiomae import CRAudioMAEConfig
from .feature_extraction_cr_audiomae import AudioMAEFeatureExtractor
from .modeling_cr_audiomae import CRAudioMAEForAudioClassification

KEY_RULES = [
    (r"^patch_embed\.proj\.", "audiomae.embeddings.patch_embed."),
    (r"^cls_token$", "audiomae.embeddings.cls_token"),
    (r"^pos_embed$", "audiomae.embeddings.position_embeddings"),
    (r"^blocks\.(\d+)\.", r"audiomae.layers.\1."),
    (r"^fc_norm\.", "audiomae.fc_norm."),
    (r"^head\.", "head."),
]


# Everything a weights-only load may build beyond tensors and plain containers.
ORIGINAL_CHECKPOINT_GLOBALS = [argparse.Namespace]


@dataclass
class ConversionReport:
    missing_keys: list[str] = field(default_factory=list)  # ours, not in the checkpoint (freshly initialised)
    unexpected_keys: list[str] = field(default_factory=list)  # theirs, not used (decoder_*, norm.*, mask_token)


def load_original_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a `.pth`/`.pt` (safely, `weights_only=True`) or `.safetensors` checkpoint into a flat state dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        # AudioMAE's util/misc.py save_model stores the run's `args` (an argparse.Namespace) next to the weights;
        # allow exactly that class. Its attributes still go through the weights-only unpickler.
        with torch.serialization.safe_globals(ORIGINAL_CHECKPOINT_GLOBALS):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle with code in it, or not a torch file at all
        raise ValueError(
            f"{path}: refused to load: only plain tensors are read from pickled checkpoints "
            f"(torch.load(weights_only=True)); convert it to safetensors from a trusted environment. ({error})"
        ) from error
    for key in ("model", "state_dict", "module"):
        if isinstance(checkpoint, dict) and key in checkpoint and isinstance(checkpoint[key], dict):
            checkpoint = checkpoint[key]
    return {re.sub(r"^module\.", "", k): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}


def config_from_state_dict(state_dict: dict[str, torch.Tensor], **overrides) -> CRAudioMAEConfig:
    """Read width, depth, MLP size, patch size and head size off the weights; the rest from `overrides`."""
    patch = state_dict["patch_embed.proj.weight"]
    depth = 1 + max(int(m.group(1)) for k in state_dict if (m := re.match(r"blocks\.(\d+)\.", k)))
    found = {
        "hidden_size": patch.shape[0],
        "patch_size": patch.shape[-1],
        "num_hidden_layers": depth,
        "intermediate_size": state_dict["blocks.0.mlp.fc1.weight"].shape[0],
    }
    if "head.weight" in state_dict and state_dict["head.weight"].shape[0] != 527:
        found["num_labels"] = state_dict["head.weight"].shape[0]
    return CRAudioMAEConfig(**{**found, **overrides})


def resize_position_table(table: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of a `[1, 1 + T*F, D]` table to a new (time, freq) patch grid; cls row kept."""
    cls, patches = table[:, :1], table[:, 1:]
    if patches.shape[1] == grid[0] * grid[1]:
        return table
    old_f = 8 if patches.shape[1] % 8 == 0 else int(patches.shape[1] ** 0.5)  # AudioMAE: 8 frequency rows
    old = patches.reshape(1, -1, old_f, table.shape[-1]).permute(0, 3, 1, 2)
    new = F.interpolate(old, size=grid, mode="bicubic", align_corners=False)
    return torch.cat([cls, new.permute(0, 2, 3, 1).reshape(1, -1, table.shape[-1])], dim=1)


def convert_state_dict(state_dict: dict[str, torch.Tensor], config: CRAudioMAEConfig) -> tuple[dict, list[str]]:
    """Rename keys to ours; return (converted, keys we do not use)."""
    converted, unused = {}, []
    for key, value in state_dict.items():
        for pattern, replacement in KEY_RULES:
            if re.match(pattern, key):
                converted[re.sub(pattern, replacement, key)] = value
                break
        else:
            unused.append(key)
    name = "audiomae.embeddings.position_embeddings"
    if name in converted:
        converted[name] = resize_position_table(converted[name], config.patch_grid)
    return converted, unused


def convert_checkpoint(checkpoint: str | Path, output_dir: str | Path, **config_overrides):
    """Convert `checkpoint` and write a safetensors model folder (config, weights, feature extractor, code)."""
    state_dict = load_original_state_dict(checkpoint)
    config = config_from_state_dict(state_dict, **config_overrides)
    model = CRAudioMAEForAudioClassification(config)
    converted, unused = convert_state_dict(state_dict, config)
    incompatible = model.load_state_dict(converted, strict=False)
    report = ConversionReport(missing_keys=list(incompatible.missing_keys), unexpected_keys=unused + list(incompatible.unexpected_keys))
    model.save_pretrained(output_dir)
    AudioMAEFeatureExtractor(num_mel_bins=config.num_mel_bins, max_length=config.max_length).save_pretrained(output_dir)
    return model, report


__all__ = ["ConversionReport", "convert_checkpoint", "convert_state_dict", "config_from_state_dict", "load_original_state_dict"]
