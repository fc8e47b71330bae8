"""Map original AudioMAE (facebookresearch/AudioMAE) and timm ViT weights onto CR-AudioMAE.

The one place foreign weights are adapted: key renaming, `module.` prefixes, and resizing of the stored
position table when the patch grid differs. Pickled checkpoints are read with `weights_only=True` only, with one
class allowed beyond tensors and containers: `argparse.Namespace`, the `args` that AudioMAE's `save_model` stores.
"""

from __future__ import annotations

import argparse
import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F

from ..checkpoint_io import load_checkpoint_state_dict
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
    label_set: str | None = None  # the package label set the head rows were put in ("527", "556", "557")


# Row orders of heads trained by other code, by name. ModifiedAudioMAE (the CR paper's fork) ships two
# 556-class CSVs with the same MIDs: class_label_indices556.csv sorted by MID string, and
# class_labels_indices556_reformatted.csv with the 527 standard MIDs first, each part sorted by MID string.
LABEL_ORDER_PRESETS = ("audioset_527", "modified_audiomae_556", "modified_audiomae_556_reformatted")


@dataclass
class ConvertArguments:
    """Arguments of `scripts/convert_audiomae_checkpoint.py`."""

    checkpoint: str = field(metadata={"positional": True, "help": ".pth/.pt (read with weights_only=True) or .safetensors"})
    output_dir: str = field(metadata={"positional": True, "help": "Where the CR-AudioMAE folder is written."})
    num_attention_heads: int = field(default=12, metadata={"help": "not recoverable from the weights"})
    max_length: int = field(default=1024, metadata={"help": "fbank frames; the position table is resized"})
    label_order: str | None = field(default=None, metadata={
        "help": f"row order of the checkpoint's head: one of {', '.join(LABEL_ORDER_PRESETS)} or a label CSV "
                "(index,mid,display_name); rows are put in the package's order with id2label set. Needed for 556-row "
                "heads."})


def source_label_mids(label_order: str | Path) -> list[str]:
    """MIDs of a head's rows, in row order: a preset of `LABEL_ORDER_PRESETS`, or a label CSV
    (`index,mid,display_name`, AudioSet's class_labels_indices.csv layout)."""
    from ...data.audioset import audioset_label_set

    standard = audioset_label_set("527")
    if label_order == "audioset_527":
        return standard
    if label_order == "modified_audiomae_556":
        return sorted(audioset_label_set("556"))
    if label_order == "modified_audiomae_556_reformatted":
        return sorted(standard) + sorted(set(audioset_label_set("556")) - set(standard))
    path = Path(label_order)
    if not path.is_file():
        raise ValueError(f"label order {label_order!r} is neither a preset {LABEL_ORDER_PRESETS} nor an existing CSV file.")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"index", "mid"} <= set(rows[0]):
        raise ValueError(f"{path}: a label CSV needs the columns index,mid(,display_name) as in class_labels_indices.csv.")
    try:
        by_index = {int(row["index"]): row["mid"].strip() for row in rows}
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: the index column must hold integers ({error}).") from error
    mids = [by_index.get(i) for i in range(len(rows))]
    if None in mids or len(set(mids)) != len(mids):
        raise ValueError(f"{path}: indices must be 0..{len(rows) - 1} once each and every MID must appear once.")
    return mids


def reorder_head(state_dict: dict[str, torch.Tensor], label_order: str | Path) -> tuple[dict, dict, str | None]:
    """Put the head rows of `state_dict` (original key names) into the package's order of the same label set.

    Returns the new state dict, the config's label fields (`id2label`, `label2id`) and the label set name
    (None when the MIDs are not one of the package's sets: the source order and ids are kept then).
    """
    from ...data.audioset import audioset_id2label, audioset_label_set, audioset_ontology

    mids = source_label_mids(label_order)
    rows = state_dict["head.weight"].shape[0]
    if len(mids) != rows:
        raise ValueError(f"label order {str(label_order)!r} lists {len(mids)} labels but the checkpoint's head has {rows} rows.")
    for name in ("527", "556", "557"):
        ours = audioset_label_set(name)
        if set(ours) == set(mids):
            source_row = {mid: i for i, mid in enumerate(mids)}
            order = torch.tensor([source_row[mid] for mid in ours])
            state_dict = {**state_dict, **{k: state_dict[k][order] for k in ("head.weight", "head.bias") if k in state_dict}}
            id2label = audioset_id2label(name)
            return state_dict, {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}, name
    ontology = audioset_ontology()
    id2label = {i: ontology[mid]["name"] if mid in ontology else mid for i, mid in enumerate(mids)}
    return state_dict, {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}, None


def load_original_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a `.pth`/`.pt` (safely, `weights_only=True`) or `.safetensors` checkpoint into a flat state dict.

    AudioMAE's util/misc.py save_model stores the run's `args` (an argparse.Namespace) next to the weights;
    exactly that class is allowed. Its attributes still go through the weights-only unpickler."""
    return load_checkpoint_state_dict(path, allowed_globals=tuple(ORIGINAL_CHECKPOINT_GLOBALS))


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
    """Fit a stored `[1, 1 + N, D]` table to a new (time, freq) patch grid, the way AudioMAE does; cls row kept.

    AudioMAE's rows are laid out on its (freq, time) `patch_hw` grid (see `sincos_position_embedding`). A shorter
    clip keeps the first time columns of that grid (`interpolate_pos_embed_audio`, e.g. 512 frames for ESC-50),
    which is exactly the sin-cos table of the shorter grid; any other change is a bicubic resize on that grid.
    """
    cls, patches = table[:, :1], table[:, 1:]
    time, freq = grid
    if patches.shape[1] == time * freq:
        return table
    dim = table.shape[-1]
    old_f = 8 if patches.shape[1] % 8 == 0 else int(patches.shape[1] ** 0.5)  # AudioMAE: 8 frequency rows
    old = patches.reshape(1, old_f, -1, dim)  # (1, freq, time, D)
    if old_f == freq and time <= old.shape[2]:
        new = old[:, :, :time]
    else:
        new = F.interpolate(old.permute(0, 3, 1, 2), size=(freq, time), mode="bicubic", align_corners=False)
        new = new.permute(0, 2, 3, 1)
    return torch.cat([cls, new.reshape(1, -1, dim)], dim=1)


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


def convert_checkpoint(checkpoint: str | Path, output_dir: str | Path, label_order: str | Path | None = None, **config_overrides):
    """Convert `checkpoint` and write a safetensors model folder (config, weights, feature extractor, code).

    `label_order` names the row order of the checkpoint's head (a preset of `LABEL_ORDER_PRESETS` or a label
    CSV); the rows are put into the package's order of that label set and `id2label` is set. A 527-row head is
    read as AudioSet's standard order; a 556-row head needs `label_order` (the fork's two files disagree).
    """
    state_dict = load_original_state_dict(checkpoint)
    rows = state_dict["head.weight"].shape[0] if "head.weight" in state_dict else None
    if label_order is None and rows == 556:
        raise ValueError(
            f"{checkpoint}: the head has 556 rows, whose order depends on the label CSV it was trained with; pass "
            "label_order='modified_audiomae_556' (class_label_indices556.csv), 'modified_audiomae_556_reformatted' "
            "(class_labels_indices556_reformatted.csv) or the path of that CSV."
        )
    label_set = "527" if rows == 527 and label_order is None else None
    if label_order is not None:
        if rows is None:
            raise ValueError(f"{checkpoint}: label_order was given but the checkpoint has no head.weight.")
        state_dict, labels, label_set = reorder_head(state_dict, label_order)
        config_overrides = {**labels, **config_overrides}
    config = config_from_state_dict(state_dict, **config_overrides)
    model = CRAudioMAEForAudioClassification(config)
    converted, unused = convert_state_dict(state_dict, config)
    incompatible = model.load_state_dict(converted, strict=False)
    report = ConversionReport(
        missing_keys=list(incompatible.missing_keys),
        unexpected_keys=unused + list(incompatible.unexpected_keys),
        label_set=label_set,
    )
    model.save_pretrained(output_dir)
    AudioMAEFeatureExtractor(num_mel_bins=config.num_mel_bins, max_length=config.max_length).save_pretrained(output_dir)
    return model, report


__all__ = [
    "LABEL_ORDER_PRESETS",
    "ConversionReport",
    "ConvertArguments",
    "config_from_state_dict",
    "convert_checkpoint",
    "convert_state_dict",
    "load_original_state_dict",
    "reorder_head",
    "source_label_mids",
]
