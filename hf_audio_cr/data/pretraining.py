"""Pre-training audio for HEAR's stages 1-2: AudioSet (streamed), or a folder of audio files or parquet files."""
from __future__ import annotations

import os

import datasets

from .audioset import load_audioset
from .quality import with_safe_audio


def load_pretraining_audio(dataset: str = "audioset", data_path: str | None = None, audioset_config: str = "unbalanced"):
    """``dataset="audioset"``: AudioSet's ``train`` split of ``audioset_config`` through :func:`load_audioset`
    (``data_path``: a Hub id or local parquet folder), streamed. Else ``dataset`` is a folder: its parquet files,
    or its audio files as an ``audiofolder``, with an ``audio`` column decoded safely at 16 kHz."""
    if dataset == "audioset":
        kwargs = {"path": data_path} if data_path else {}
        return load_audioset(name=audioset_config, split="train", **kwargs)
    path = dataset
    if not os.path.exists(path):
        raise FileNotFoundError(f"dataset={path!r}: give 'audioset' or an existing folder of audio or parquet files.")
    parquet = os.path.isdir(path) and any(name.endswith(".parquet") for name in os.listdir(path))
    audio = datasets.load_dataset("parquet" if parquet else "audiofolder", data_dir=path, split="train")
    if "audio" not in audio.column_names:
        raise ValueError(f"{path}: the dataset has no `audio` column (columns: {audio.column_names}).")
    # the same safe decoding as the other loaders: a bad file is skipped and counted by the collator's policy
    return with_safe_audio(audio, 16000)


__all__ = ["load_pretraining_audio"]
