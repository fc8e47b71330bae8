"""Resuming after a crash: find the newest checkpoint that was written completely.

``Trainer`` writes a checkpoint file by file (weights, optimizer, scheduler, RNG state, then
``trainer_state.json``) with no atomic rename, so a process killed mid-save leaves a folder that
``get_last_checkpoint`` still picks and ``resume_from_checkpoint`` then fails on (or, worse, a
half-written optimizer state). :func:`last_complete_checkpoint` checks each folder cheaply -- JSON
parses, safetensors payload sizes match their headers, torch zip archives have their central
directory -- and falls back to the previous complete one, saying which folder was skipped and why.
"""
from __future__ import annotations

import json
import logging
import os
import re
import struct
import zipfile
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

logger = logging.getLogger(__name__)

_CHECKPOINT_RE = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
TRAINER_STATE = "trainer_state.json"
# Pickled torch files of a checkpoint (zip archives since torch 1.6); absent ones are not required
# (save_only_model runs have no optimizer), present ones must be whole.
TORCH_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state.pth", "training_args.bin")


def _safetensors_problem(path: Path) -> str | None:
    size = path.stat().st_size
    if size < 8:
        return f"{path.name} is {size} bytes (no safetensors header)"
    with path.open("rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        if 8 + header_len > size:
            return f"{path.name} is cut off inside its header"
        try:
            header = json.loads(f.read(header_len))
        except ValueError:
            return f"{path.name} has an unreadable header"
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if 8 + header_len + end != size:
        return f"{path.name} has {size} bytes but its header describes {8 + header_len + end} (truncated write)"
    return None


def _torch_zip_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:  # reads the central directory at the end of the file
            archive.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        return f"{path.name} is not a complete torch archive ({err})"
    return None


def checkpoint_problems(checkpoint: str | os.PathLike) -> list[str]:
    """Why ``checkpoint`` cannot be resumed from (an empty list when it is complete)."""
    folder = Path(checkpoint)
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    problems = []
    state = folder / TRAINER_STATE
    if not state.is_file():
        problems.append(f"{TRAINER_STATE} is missing (the save did not finish)")
    else:
        try:
            json.loads(state.read_text())["global_step"]
        except (ValueError, KeyError) as err:
            problems.append(f"{TRAINER_STATE} is unreadable ({type(err).__name__})")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights and not (folder / "pytorch_model.bin").is_file():
        problems.append("no model weights (*.safetensors)")
    problems.extend(p for p in map(_safetensors_problem, weights) if p)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        problems.extend(f"shard {s} is missing" for s in sorted(shards) if not (folder / s).is_file())
    problems.extend(p for p in (_torch_zip_problem(folder / n) for n in TORCH_FILES if (folder / n).is_file()) if p)
    return problems


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """``checkpoint-N`` folders of ``output_dir``, oldest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if p.is_dir() and (m := _CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def last_complete_checkpoint(output_dir: str | os.PathLike, before: int | None = None) -> str | None:
    """The newest complete ``checkpoint-N`` in ``output_dir`` (with ``N <= before`` when given), or None.
    Incomplete newer ones are reported with a warning naming what is wrong."""
    for folder in reversed(list_checkpoints(output_dir)):
        if before is not None and int(folder.name.rsplit("-", 1)[1]) > before:
            continue
        problems = checkpoint_problems(folder)
        if not problems:
            return str(folder)
        logger.warning("Skipping incomplete checkpoint %s: %s. Trying the previous one.", folder, "; ".join(problems))
    return None


def resolve_resume_checkpoint(resume_from_checkpoint, output_dir) -> str | None:
    """Turn ``--resume_from_checkpoint`` into a complete checkpoint folder for ``Trainer.train``.

    ``None``/``False``/``""`` -> no resume. ``True``/``"true"``/``"last"`` -> the newest complete
    checkpoint of ``output_dir`` (None if there is none yet, so a first run starts from scratch). A path
    -> that checkpoint if it is complete, else the newest complete one before it in the same folder
    (with a warning); a path with no complete checkpoint at or before it raises ``ValueError``.
    """
    if resume_from_checkpoint in (None, False, "", "false", "False"):
        return None
    if resume_from_checkpoint is True or str(resume_from_checkpoint).lower() in ("true", "last"):
        found = last_complete_checkpoint(output_dir)
        if found is None and list_checkpoints(output_dir):
            raise ValueError(
                f"resume_from_checkpoint: no checkpoint in {output_dir} is complete "
                f"({', '.join(p.name for p in list_checkpoints(output_dir))}); remove them to start from scratch."
            )
        return found
    path = Path(resume_from_checkpoint)
    if not path.is_dir():
        raise FileNotFoundError(
            f"resume_from_checkpoint={str(path)!r} does not exist; pass a checkpoint-N folder, or 'last' for the "
            f"newest complete checkpoint in output_dir."
        )
    problems = checkpoint_problems(path)
    if not problems:
        return str(path)
    match = _CHECKPOINT_RE.match(path.name)
    fallback = last_complete_checkpoint(path.parent, before=int(match.group(1)) - 1) if match else None
    if fallback is None:
        raise ValueError(f"resume_from_checkpoint={str(path)!r} is incomplete ({'; '.join(problems)}) and no "
                         f"earlier complete checkpoint exists next to it; start from scratch or pick another folder.")
    logger.warning("Checkpoint %s is incomplete (%s); resuming from %s instead.", path, "; ".join(problems), fallback)
    return fallback
