"""Reading the original research code's checkpoints safely (shared by the model converters)."""

from __future__ import annotations

import re
from pathlib import Path

import torch


def load_checkpoint_state_dict(path: str | Path, allowed_globals: tuple = ()) -> dict[str, torch.Tensor]:
    """A flat state dict from `.safetensors`, or from `.pt`/`.pth` read with `torch.load(weights_only=True)`.

    ``allowed_globals`` are the only classes beyond tensors the unpickler may build (e.g. AudioMAE stores its
    `argparse.Namespace` args); a pickle that carries code is refused with an error naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        with torch.serialization.safe_globals(list(allowed_globals)):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a pickle that carries code, or not a torch file at all
        raise ValueError(
            f"{path}: refused to load: only plain tensors are read from pickled checkpoints "
            f"(torch.load(weights_only=True)); convert it to safetensors from a trusted environment. ({error})"
        ) from error
    for key in ("model", "state_dict", "module"):  # common training wrappers around the state dict
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    if not isinstance(checkpoint, dict) or not any(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError(f"{path}: expected a state_dict (a dict of tensors), got {type(checkpoint).__name__}.")
    return {re.sub(r"^module\.", "", k): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
