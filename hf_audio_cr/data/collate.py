"""Batching: rows of waveforms -> one batched feature-extractor call per step."""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import torch

from .quality import AudioQualityPolicy, BadAudioError


class AudioClassificationCollator:
    """Collates ``datasets`` rows into ``{"input_values", "labels"}`` for a ``Trainer``.

    Every clip goes through the quality policy (decoded there if it is still a lazy ``AudioDecoder``): rejected
    clips are skipped and counted (training) or raise with the clip id (evaluation / strict), so a batch can be
    smaller than requested. The feature extractor is called once on the whole list of waveforms: the CR
    trainer builds all its views from these features, so they are computed once per step. With ``device`` set,
    waveforms move there first and the feature extractor runs on that device (use it with
    ``dataloader_num_workers=0``: CUDA cannot be used inside forked workers).

    Args:
        feature_extractor: callable ``fe(list_of_waveforms, sampling_rate=..., return_tensors="pt")``.
        device: where to compute features (``None``: in the calling process on CPU).
        quality: an :class:`AudioQualityPolicy`; by default a training policy, readable as ``collator.quality``.
        label_column: ``"labels"`` (multi-hot floats -> FloatTensor) or ``"label"`` (class ids -> LongTensor);
            by default whichever the rows have.
        return_clip_ids: also return ``clip_ids`` (list) -- for evaluation scripts, not for ``model(**batch)``.
        decode_only_kept: with a truncating extractor (``long_audio="truncate"``) decode only the first
            ``max_length`` frames' worth of each clip (8x less decoding for 128-frame crops of 10 s clips). The
            extractor then removes the mean of that part rather than of the whole clip (AudioMAE: whole clip);
            AudioSet clips (<= 10 s) fit in 1024 frames, so the paper setting is unchanged.
        **feature_extractor_kwargs: passed to every feature-extractor call (e.g. ``long_audio="truncate"``).
    """

    def __init__(
        self,
        feature_extractor,
        device: Optional[Union[str, torch.device]] = None,
        quality: Optional[AudioQualityPolicy] = None,
        audio_column: str = "audio",
        label_column: Optional[str] = None,
        id_column: str = "video_id",
        return_clip_ids: bool = False,
        decode_only_kept: bool = True,
        **feature_extractor_kwargs,
    ):
        self.feature_extractor = feature_extractor
        self.device = torch.device(device) if device is not None else None
        rate = getattr(feature_extractor, "sampling_rate", None) or 16000
        self.quality = quality if quality is not None else AudioQualityPolicy(sampling_rate=rate)
        if self.quality.sampling_rate != rate:
            raise ValueError(
                f"AudioQualityPolicy(sampling_rate={self.quality.sampling_rate}) does not match the feature "
                f"extractor's sampling_rate={rate}; build the policy with sampling_rate={rate}."
            )
        self.audio_column = audio_column
        self.label_column = label_column
        self.id_column = id_column
        self.return_clip_ids = return_clip_ids
        if feature_extractor_kwargs.get("long_audio", getattr(feature_extractor, "long_audio", None)) == "stream":
            feature_extractor_kwargs["long_audio"] = "window"  # a batch for Trainer needs tensors, not a stream
        self.feature_extractor_kwargs = feature_extractor_kwargs
        self.max_samples = self._kept_samples(feature_extractor, feature_extractor_kwargs) if decode_only_kept else None

    @staticmethod
    def _kept_samples(feature_extractor, kwargs) -> Optional[int]:
        """Samples a truncating AudioMAE-style extractor keeps (``max_length`` frames); None when it keeps all."""
        if kwargs.get("long_audio", getattr(feature_extractor, "long_audio", None)) != "truncate":
            return None
        try:
            return (feature_extractor.max_length - 1) * feature_extractor.window_shift + feature_extractor.window_size
        except AttributeError:
            return None

    def _clip_id(self, row: dict, position: int) -> Any:
        for key in (self.id_column, "video_id", "id", "file", "path"):
            if row.get(key) is not None:
                return row[key]
        return f"<batch row {position}>"

    def __call__(self, rows: list) -> dict:
        if not rows:
            raise ValueError("AudioClassificationCollator got an empty list of rows.")
        label_column = self.label_column or next((c for c in ("labels", "label") if c in rows[0]), None)
        waves, labels, clip_ids = [], [], []
        for position, row in enumerate(rows):
            if self.audio_column not in row:
                raise KeyError(
                    f"row {position} has no {self.audio_column!r} column (columns: {sorted(row)}); with Trainer "
                    "set remove_unused_columns=False so the audio reaches the collator."
                )
            clip_id, audio = self._clip_id(row, position), row[self.audio_column]
            if isinstance(audio, dict) and audio.get("checked"):  # AudioQualityPolicy.filter_dataset did it
                wave = audio["array"]
            else:
                wave = self.quality.check(
                    audio, clip_id=clip_id, unknown_labels=row.get("unknown_labels") or (), max_samples=self.max_samples
                )
            if wave is None:
                continue
            waves.append(wave)
            clip_ids.append(clip_id)
            if label_column is not None:
                labels.append(row[label_column])
        if not waves:
            raise BadAudioError(
                f"every clip of this batch was rejected ({[self._clip_id(r, i) for i, r in enumerate(rows)]}); "
                f"counts so far: {self.quality.counts()}. Use a larger batch or drop bad rows before batching "
                "with AudioQualityPolicy.filter_dataset."
            )
        rate = self.quality.sampling_rate
        if self.device is not None:
            waves = [torch.from_numpy(np.ascontiguousarray(w)).to(self.device, non_blocking=True) for w in waves]
        batch = dict(self.feature_extractor(waves, sampling_rate=rate, return_tensors="pt", **self.feature_extractor_kwargs))
        if labels:
            target = np.asarray(labels)
            if np.issubdtype(target.dtype, np.integer):
                batch["labels"] = torch.as_tensor(target, dtype=torch.long)
            else:
                batch["labels"] = torch.as_tensor(target, dtype=torch.float32)
            if self.device is not None:
                batch["labels"] = batch["labels"].to(self.device)
        if self.return_clip_ids:
            batch["clip_ids"] = clip_ids
        return batch
