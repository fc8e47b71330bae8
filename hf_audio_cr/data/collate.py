"""Batching: rows of waveforms -> one batched feature-extractor call per step.

``AudioClassificationCollator`` (fine-tuning: features + labels, evaluation windows of long clips) and
``HEARPretrainingCollator`` (HEAR stages 1-2: log-Mel frames cut on token boundaries, teacher inputs) read each
row the same way (``_decode_rows``: one quality check and decode per clip, rejected clips skipped and counted).
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from .quality import AudioQualityPolicy, BadAudioError

# `scripts/prepare_audioset.py --store_fbank fp16`: each clip's log-Mel frames (AudioMAEFeatureExtractor.log_mel
# with these settings) as float16 bytes, read instead of decoding the audio when the extractor matches.
STORED_FBANK_COLUMN = "fbank_fp16"
STORED_FBANK_SETTINGS = {"sampling_rate": 16000, "num_mel_bins": 128, "frame_length_ms": 25.0, "frame_shift_ms": 10.0,
                         "preemphasis": 0.97}


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
        max_seconds: bound on the audio one clip puts into the model (``None``: the whole clip). In training
            (a ``mode="train"`` policy) a random ``max_seconds`` crop of each longer clip, and a lazy decoder
            decodes only that crop; in evaluation (``mode="eval"``) each longer clip is cut into ``max_seconds``
            windows every ``window_hop_seconds`` (the last one ends at the clip's end) and the batch gets
            ``window_to_clip`` (window -> clip row) for the trainer to average the windows' logits per clip.
            So a 10-minute file costs what a ``max_seconds`` clip costs.
        window_hop_seconds: hop between evaluation windows (default ``max_seconds / 2``).
        seed: seed of the training crops (default: the global ``random`` module, seeded by ``Trainer``).
        **feature_extractor_kwargs: passed to every feature-extractor call (e.g. ``long_audio="truncate"``).
    """

    def __init__(
        self,
        feature_extractor,
        device: str | torch.device | None = None,
        quality: AudioQualityPolicy | None = None,
        audio_column: str = "audio",
        label_column: str | None = None,
        id_column: str = "video_id",
        return_clip_ids: bool = False,
        decode_only_kept: bool = True,
        max_seconds: float | None = None,
        window_hop_seconds: float | None = None,
        seed: int | None = None,
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
        # the policy's floor is never below this extractor's real minimum (shorter clips would raise inside it)
        self.quality.min_samples = max(self.quality.min_samples, self._min_samples(feature_extractor))
        if max_seconds is not None and max_seconds <= 0:
            raise ValueError(f"AudioClassificationCollator(max_seconds={max_seconds}): give a positive length or None.")
        self.max_seconds = max_seconds
        self.window_hop_seconds = window_hop_seconds or (max_seconds / 2 if max_seconds else None)
        fe_seconds = getattr(feature_extractor, "max_seconds", None)  # HEAR's own window of long audio
        if max_seconds is not None and isinstance(fe_seconds, (int, float)) and fe_seconds < max_seconds:
            raise ValueError(
                f"AudioClassificationCollator(max_seconds={max_seconds}) is longer than the feature extractor's "
                f"max_seconds={fe_seconds}, which would cut each crop or window again; build the extractor with "
                f"max_seconds={max_seconds} (what a saved model is then scored with) or lower the collator's."
            )
        self._random = random.Random(seed) if seed is not None else random
        self.audio_column = audio_column
        self.label_column = label_column
        self.id_column = id_column
        self.return_clip_ids = return_clip_ids
        if feature_extractor_kwargs.get("long_audio", getattr(feature_extractor, "long_audio", None)) == "stream":
            feature_extractor_kwargs["long_audio"] = "window"  # a batch for Trainer needs tensors, not a stream
        self.feature_extractor_kwargs = feature_extractor_kwargs
        self.max_samples = self._kept_samples(feature_extractor, feature_extractor_kwargs) if decode_only_kept else None

    @staticmethod
    def _kept_samples(feature_extractor, kwargs) -> int | None:
        """Samples a truncating AudioMAE-style extractor keeps (``max_length`` frames); None when it keeps all."""
        if kwargs.get("long_audio", getattr(feature_extractor, "long_audio", None)) != "truncate":
            return None
        try:
            return (feature_extractor.max_length - 1) * feature_extractor.window_shift + feature_extractor.window_size
        except AttributeError:
            return None

    @staticmethod
    def _min_samples(feature_extractor) -> int:
        """The shortest clip the extractor takes: HEAR's ``min_samples``, AudioMAE's fbank window."""
        for name in ("min_samples", "window_size"):
            value = getattr(feature_extractor, name, None)
            if isinstance(value, int):
                return value
        return 0

    def _clip_id(self, row: dict, position: int) -> Any:
        # ``path``: the audio file, added by the data package's loaders (SafeAudioDecoding); ``filename``: ESC-50
        for key in (self.id_column, "video_id", "id", "path", "filename", "file"):
            if row.get(key) is not None:
                return row[key]
        audio = row.get(self.audio_column)
        if isinstance(audio, dict) and audio.get("clip_id") is not None:  # an UnreadableAudio marker
            return audio["clip_id"]
        return f"<batch row {position}>"

    @property
    def _crop_samples(self) -> int | None:
        return None if self.max_seconds is None else int(round(self.max_seconds * self.quality.sampling_rate))

    def _check(self, audio, clip_id, unknown_labels=()) -> np.ndarray | None:
        """Quality check (and decode) one clip; in training with ``max_seconds``, only a random crop of it."""
        size = self._crop_samples
        if size is None or self.quality.mode == "eval":
            return self.quality.check(audio, clip_id=clip_id, unknown_labels=unknown_labels, max_samples=self.max_samples)
        duration = getattr(getattr(audio, "metadata", None), "duration_seconds", None)
        if duration is not None and duration > self.max_seconds:  # a lazy decoder: decode only the crop
            start = self._random.uniform(0.0, duration - self.max_seconds)
            return self.quality.check(
                audio, clip_id=clip_id, unknown_labels=unknown_labels, max_samples=size, start_seconds=start
            )
        wave = self.quality.check(audio, clip_id=clip_id, unknown_labels=unknown_labels)
        if wave is not None and len(wave) > size:
            start = self._random.randint(0, len(wave) - size)
            wave = wave[start : start + size]
        return wave

    def _read_clip(self, audio, clip_id, unknown_labels=()) -> np.ndarray | None:
        """One clip's waveform (None: rejected by the policy); in training with ``max_seconds``, a random crop."""
        if isinstance(audio, dict) and audio.get("checked"):  # AudioQualityPolicy.filter_dataset did it
            wave = audio["array"]
            if self.quality.mode == "train" and self._crop_samples and len(wave) > self._crop_samples:
                start = self._random.randint(0, len(wave) - self._crop_samples)
                wave = wave[start : start + self._crop_samples]
            return wave
        return self._check(audio, clip_id, unknown_labels)

    def _decode_rows(self, rows: list) -> list:
        """``(row, clip_id, waveform)`` of each row the quality policy keeps (``_read_clip`` once per row); raises
        when a row has no audio column or when every clip of the batch is rejected."""
        if not rows:
            raise ValueError(f"{type(self).__name__} got an empty list of rows.")
        kept = []
        for position, row in enumerate(rows):
            if self.audio_column not in row:
                raise KeyError(
                    f"row {position} has no {self.audio_column!r} column (columns: {sorted(row)}); with Trainer "
                    "set remove_unused_columns=False so the audio reaches the collator."
                )
            clip_id = self._clip_id(row, position)
            wave = self._read_clip(row[self.audio_column], clip_id, row.get("unknown_labels") or ())
            if wave is not None:
                kept.append((row, clip_id, wave))
        if not kept:
            raise BadAudioError(
                f"every clip of this batch was rejected ({[self._clip_id(r, i) for i, r in enumerate(rows)]}); "
                f"counts so far: {self.quality.counts()}. Use a larger batch or drop bad rows before batching "
                "with AudioQualityPolicy.filter_dataset."
            )
        return kept

    def _extract_in_chunks(self, waves: list, rate: int, chunk: int = 16) -> dict:
        """Features of many evaluation windows, ``chunk`` at a time (the STFT's intermediates stay small), then
        right-padded with zeros to the longest -- what the extractor's own padding gives (padded frames are 0,
        ``attention_mask`` 0)."""
        parts = [
            dict(self.feature_extractor(waves[i : i + chunk], sampling_rate=rate, return_tensors="pt",
                                        **self.feature_extractor_kwargs))
            for i in range(0, len(waves), chunk)
        ]
        batch = {}
        for name in parts[0]:
            values = [part[name] for part in parts]
            if values[0].ndim >= 2:
                frames = max(v.shape[1] for v in values)
                values = [torch.nn.functional.pad(v, (0, 0) * (v.ndim - 2) + (0, frames - v.shape[1])) for v in values]
            batch[name] = torch.cat(values)
        return batch

    def _windows(self, wave: np.ndarray) -> list:
        """Evaluation: ``max_seconds`` windows every ``window_hop_seconds``, the last ending at the clip's end."""
        # the layout the HEAR pipeline scores long audio with (one definition; imported here, not at module level,
        # so the data package does not load the model families until it windows)
        from ..models.hear.feature_extraction_hear import window_starts

        size = self._crop_samples
        if size is None or len(wave) <= size:
            return [wave]
        hop = max(1, int(round(self.window_hop_seconds * self.quality.sampling_rate)))
        return [wave[start : start + size] for start in window_starts(len(wave), size, hop)]

    def __call__(self, rows: list) -> dict:
        if rows and self._reads_stored_fbank(rows):  # prepare_audioset.py --store_fbank: nothing to decode
            return self._from_stored_fbank(rows, self._label_column(rows))
        kept = self._decode_rows(rows)
        label_column = self._label_column(rows)
        waves, clip_ids = [wave for _, _, wave in kept], [clip_id for _, clip_id, _ in kept]
        labels = [row[label_column] for row, _, _ in kept] if label_column is not None else []
        rate = self.quality.sampling_rate
        window_to_clip = None
        if self.quality.mode == "eval" and self._crop_samples and any(len(w) > self._crop_samples for w in waves):
            windows = [self._windows(w) for w in waves]
            window_to_clip = torch.tensor([clip for clip, parts in enumerate(windows) for _ in parts])
            waves = [part for parts in windows for part in parts]
        if self.device is not None:
            waves = [torch.from_numpy(np.ascontiguousarray(w)).to(self.device, non_blocking=True) for w in waves]
        if window_to_clip is None:
            batch = dict(self.feature_extractor(waves, sampling_rate=rate, return_tensors="pt", **self.feature_extractor_kwargs))
        else:
            batch = self._extract_in_chunks(waves, rate)
        if window_to_clip is not None:
            batch["window_to_clip"] = window_to_clip if self.device is None else window_to_clip.to(self.device)
        return self._finish(batch, labels, clip_ids)

    def _label_column(self, rows: list):
        return self.label_column or next((c for c in ("labels", "label") if c in rows[0]), None)

    def _reads_stored_fbank(self, rows: list) -> bool:
        """Rows of a prepared set with stored fbanks, an extractor that computes the same ones, one crop per clip."""
        fe = self.feature_extractor
        return (all(row.get(STORED_FBANK_COLUMN) for row in rows) and hasattr(fe, "from_log_mel")
                and self.max_seconds is None and self.feature_extractor_kwargs.get("long_audio", getattr(fe, "long_audio", None)) == "truncate"
                and all(getattr(fe, k, None) == v for k, v in STORED_FBANK_SETTINGS.items()))

    def _from_stored_fbank(self, rows: list, label_column) -> dict:
        """The batch from stored float16 log-Mel frames: no decoding, resampling or fbank (the clips were checked
        by the training quality policy when they were prepared)."""
        bins = STORED_FBANK_SETTINGS["num_mel_bins"]
        frames = [np.frombuffer(row[STORED_FBANK_COLUMN], dtype=np.float16).reshape(-1, bins) for row in rows]
        batch = dict(self.feature_extractor.from_log_mel(frames))
        if self.device is not None:
            batch["input_values"] = batch["input_values"].to(self.device)
        labels = [row[label_column] for row in rows] if label_column is not None else []
        return self._finish(batch, labels, [self._clip_id(row, i) for i, row in enumerate(rows)])

    def _finish(self, batch: dict, labels: list, clip_ids: list) -> dict:
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


class HEARPretrainingCollator(AudioClassificationCollator):
    """Rows with audio -> ``input_values`` / ``attention_mask`` log-Mel frames for HEAR's tokenizer and MAM stages.

    Clips go through the data package's quality policy (skip-and-count while training) and are cut to
    ``max_seconds`` (the paper's 6 s blocks; a random crop starting on a token boundary, or the first
    ``max_seconds`` with ``random_crop=False``). With a ``teacher`` (a ``hf_audio_cr.training.HEARTeacher``) the
    batch also carries the teacher's inputs (``teacher_*`` keys) and ``num_samples``; with precomputed
    ``teacher_features`` / ``teacher_mask`` columns (``add_teacher_features``) those are cropped like the audio and
    padded to the batch's token count.
    """

    def __init__(
        self,
        feature_extractor,
        teacher=None,
        max_seconds: float | None = 6.0,
        random_crop: bool = True,
        seed: int | None = None,
        **kwargs,
    ):
        kwargs.setdefault("return_power_spectrum", False)  # stages 1-2 read only the log-Mel frames
        super().__init__(feature_extractor, **kwargs)
        # only the teacher's input features travel with the collator (into workers), never its weights
        self.teacher_inputs = teacher.input_processor() if teacher is not None else None
        self.max_seconds = max_seconds
        self.random_crop = random_crop
        # no seed: the global `random` module, which Trainer seeds per run and per DataLoader worker
        self._random = random.Random(seed) if seed is not None else random
        hop = getattr(feature_extractor, "hop_length", 160)
        self.token_samples = 2 * hop  # crops start on token boundaries so precomputed features stay aligned

    def _read_clip(self, audio, clip_id, unknown_labels=()) -> np.ndarray | None:
        # the whole clip (pre-training has no labels to check): __call__ crops it on a token boundary
        if isinstance(audio, dict) and audio.get("checked"):
            return audio["array"]
        return self.quality.check(audio, clip_id=clip_id)

    def _crop(self, wave: np.ndarray) -> tuple:
        """-> (crop, first token index)."""
        if self.max_seconds is None:
            return wave, 0
        size = int(self.max_seconds * self.quality.sampling_rate)
        if len(wave) <= size:
            return wave, 0
        start_token = self._random.randint(0, (len(wave) - size) // self.token_samples) if self.random_crop else 0
        start = start_token * self.token_samples
        return wave[start : start + size], start_token

    def __call__(self, rows: list) -> dict:
        kept = self._decode_rows(rows)
        crops = [self._crop(np.asarray(wave, dtype=np.float32)) for _, _, wave in kept]
        waves, offsets = [wave for wave, _ in crops], [offset for _, offset in crops]
        rate = self.quality.sampling_rate
        kwargs = dict(self.feature_extractor_kwargs)
        if hasattr(self.feature_extractor, "window_samples"):  # HEAR: the (cropped) clips whole, never windowed
            kwargs.setdefault("max_seconds", None)
        features = self.feature_extractor(waves, sampling_rate=rate, return_tensors="pt", **kwargs)
        batch = {"input_values": features["input_values"], "attention_mask": features["attention_mask"]}
        if self.teacher_inputs is not None:
            batch.update({f"teacher_{k}": v for k, v in self.teacher_inputs(waves).items()})
            batch["num_samples"] = torch.tensor([len(w) for w in waves])
        elif "teacher_features" in kept[0][0]:
            batch.update(self._precomputed([row for row, _, _ in kept], offsets, features["input_values"].shape[1] // 2))
        return batch

    @staticmethod
    def _precomputed(rows: list, offsets: list, num_tokens: int) -> dict:
        first = np.asarray(rows[0]["teacher_features"], dtype=np.float32)
        features = torch.zeros(len(rows), num_tokens, first.shape[-1])
        mask = torch.zeros(len(rows), num_tokens, dtype=torch.bool)
        for i, (row, offset) in enumerate(zip(rows, offsets)):
            values = np.asarray(row["teacher_features"], dtype=np.float32)[offset : offset + num_tokens]
            valid = np.asarray(row.get("teacher_mask", np.ones(len(values), bool)), dtype=bool)[offset : offset + num_tokens]
            features[i, : len(values)] = torch.from_numpy(values)
            mask[i, : len(valid)] = torch.from_numpy(valid)
        return {"teacher_features": features, "teacher_mask": mask}
