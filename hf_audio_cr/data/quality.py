"""The bad-audio policy: what happens to a clip that cannot be used as it is.

Kinds of bad audio (``BAD_AUDIO_KINDS``) fall into two groups:

* unusable -- ``unreadable`` (corrupt / truncated / not audio), ``empty``, ``non_finite`` (NaN or inf samples),
  ``too_short``, ``silent`` (digital silence);
* repairable -- ``multi_channel`` (downmixed to mono), ``sample_rate`` (resampled to the target rate),
  ``unknown_label`` (a MID outside the label set: left out of the target).

``mode="train"`` (training default) skips unusable clips and repairs the others; ``mode="eval"`` raises
:class:`BadAudioError` naming the clip for unusable clips (a metric over a silently smaller eval set is not
comparable) and repairs the others; ``strict=True`` raises for every kind but ``sample_rate`` in both modes
(resampling is what the loaders ask for: it is counted, never refused). Every skip and every
repair is counted, and the first of each kind is logged once. The counters live in shared memory, so clips
rejected inside ``DataLoader`` worker processes are counted in the main process too: read them with
:meth:`AudioQualityPolicy.counts` / :meth:`AudioQualityPolicy.as_metrics` and put them in the logs and the
metrics JSON (or let :class:`AudioQualityCallback` add them to every ``Trainer`` log line).
"""
from __future__ import annotations

import logging
import math
import multiprocessing
import os
from typing import Any

import numpy as np
import torch
import torchaudio
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

UNUSABLE_KINDS = ("unreadable", "empty", "non_finite", "too_short", "silent")
REPAIRABLE_KINDS = ("multi_channel", "sample_rate", "unknown_label")
BAD_AUDIO_KINDS = UNUSABLE_KINDS + REPAIRABLE_KINDS
_COUNTERS = ("clips_seen", "clips_skipped") + BAD_AUDIO_KINDS
# The shortest clip a model here can use: one 25 ms analysis window at 16 kHz (the Kaldi fbank's frame).
# A collator raises the floor to its feature extractor's own minimum (HEAR's centred STFT: 513 samples).
DEFAULT_MIN_SAMPLES = 400

_REPAIRS = {
    "multi_channel": "downmixed to mono",
    "sample_rate": "resampled",
    "unknown_label": "left the unknown MIDs out of the target",
}


class BadAudioError(ValueError):
    """A clip the policy rejects; the message names the clip, what is wrong with it and how to proceed."""


class UnreadableAudio(dict):
    """Stands in for the decoded audio of a clip that could not be opened, so one bad file does not end the
    stream: the quality policy counts it, and any direct use of it raises :class:`BadAudioError`."""

    def __init__(self, clip_id: Any, error: str, kind: str = "unreadable"):
        super().__init__(clip_id=clip_id, error=error, kind=kind)

    def __getitem__(self, key):
        if key in ("clip_id", "error", "kind"):
            return super().__getitem__(key)
        raise BadAudioError(
            f"clip {self['clip_id']!r} could not be decoded ({self['error']}); "
            "re-encode or remove it, or let AudioQualityPolicy skip and count it."
        )


def safe_decode(value: Any, audio_feature, clip_id: Any = None):
    """Decode one stored audio value (``{"bytes", "path"}``) with ``datasets``' ``Audio`` feature.

    Returns the lazily decoding ``AudioDecoder`` datasets would return, or an :class:`UnreadableAudio` marker
    when the container cannot even be opened (``datasets`` would raise inside the iterator and end the epoch).
    """
    if value is None:
        return UnreadableAudio(clip_id, "no audio stored for this row", kind="empty")
    if not isinstance(value, dict) or "array" in value:
        return value  # already decoded
    if value.get("bytes") is not None and len(value["bytes"]) == 0 or not (value.get("bytes") or value.get("path")):
        return UnreadableAudio(clip_id, "0-byte audio file", kind="empty")
    path = value.get("path")
    if value.get("bytes") is None and path and os.path.isfile(path) and os.path.getsize(path) == 0:
        return UnreadableAudio(clip_id, f"0-byte audio file {path}", kind="empty")
    try:
        return audio_feature.decode_example(value)
    except Exception as err:  # torchcodec raises RuntimeError for corrupt containers, others for missing files
        return UnreadableAudio(clip_id, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")


def _stored_path(value: Any) -> str | None:
    return value.get("path") if isinstance(value, dict) and "array" not in value else None


class SafeAudioDecoding:
    """``Dataset.with_transform`` function that decodes the ``audio`` column with :func:`safe_decode`.

    ``datasets``' own ``Audio(decode=True)`` decodes inside ``__getitem__``, so one 0-byte or non-audio file
    raises inside the DataLoader (torchcodec: "This should never happen") and names no file. With this
    transform (see :func:`with_safe_audio`) a good row's ``audio`` is the usual lazy ``AudioDecoder``
    (``row["audio"]["array"]`` works) and a bad one is an :class:`UnreadableAudio` marker that the quality
    policy skips and counts in training and reports by file name in evaluation. Rows also get ``path``, the
    stored file name of their audio (unless the set has a ``path`` column), so errors can name the file.
    """

    def __init__(self, sampling_rate: int = 16000, audio_column: str = "audio", id_columns=("filename", "file", "id")):
        from datasets import Audio

        self.sampling_rate = int(sampling_rate)
        self.audio_column = audio_column
        self.id_columns = tuple(id_columns)
        self.audio = Audio(sampling_rate=self.sampling_rate)

    def __eq__(self, other):  # equal transforms keep the format through concatenate_datasets
        return isinstance(other, SafeAudioDecoding) and (self.sampling_rate, self.audio_column, self.id_columns) == (
            other.sampling_rate, other.audio_column, other.id_columns)

    __hash__ = None

    def __call__(self, batch: dict) -> dict:
        if self.audio_column not in batch:  # a column access such as dataset["label"]
            return batch
        batch = dict(batch)
        values = list(batch[self.audio_column])
        if "path" not in batch:
            batch["path"] = [_stored_path(value) for value in values]
        names = next((batch[c] for c in self.id_columns if c in batch), [None] * len(values))
        batch[self.audio_column] = [
            safe_decode(value, self.audio, clip_id=path or name)
            for value, path, name in zip(values, batch["path"], names)
        ]
        return batch


def with_safe_audio(dataset, sampling_rate: int = 16000, audio_column: str = "audio"):
    """Store ``audio`` undecoded and decode it per row with :class:`SafeAudioDecoding` (a ``Dataset`` or a
    ``DatasetDict``): every loader of the data package returns its sets this way."""
    from datasets import Audio, DatasetDict

    if isinstance(dataset, DatasetDict):
        return DatasetDict({name: with_safe_audio(ds, sampling_rate, audio_column) for name, ds in dataset.items()})
    dataset = dataset.cast_column(audio_column, Audio(sampling_rate=sampling_rate, decode=False))
    return dataset.with_transform(SafeAudioDecoding(sampling_rate, audio_column))


def _sum_over_ranks(values: list) -> list:
    """Element-wise sum over the processes of an initialised ``torch.distributed`` group (else unchanged)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return values
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    total = torch.tensor(values, dtype=torch.int64, device=device)
    dist.all_reduce(total)
    return [int(v) for v in total.tolist()]


class AudioQualityPolicy:
    """Checks, repairs or rejects clips and counts every decision.

    Args:
        mode: ``"train"`` (skip unusable clips) or ``"eval"`` (raise on unusable clips).
        strict: raise :class:`BadAudioError` for every kind of bad audio, repairable ones included (but for
            ``sample_rate``: a clip stored at another rate is resampled and counted).
        sampling_rate: the rate waveforms must have (the feature extractor's); other rates are resampled.
        min_seconds: clips shorter than this are ``too_short``. ``None`` (default): the model's real minimum,
            ``min_samples`` = one 25 ms analysis window (400 samples at 16 kHz, the Kaldi fbank's frame), raised
            by a collator to its feature extractor's own minimum (HEAR: 513 samples). A 0.09 s hi-hat is kept.
            A collator never lets the floor go below its extractor's minimum.
        silence_threshold: peak absolute amplitude below which a clip is ``silent``. The default 1e-5 is below
            one 16-bit step (3e-5), so only digital silence is rejected, never a quiet recording.
    """

    def __init__(
        self,
        mode: str = "train",
        strict: bool = False,
        sampling_rate: int = 16000,
        min_seconds: float | None = None,
        silence_threshold: float = 1e-5,
    ):
        if mode not in ("train", "eval"):
            raise ValueError(f"AudioQualityPolicy(mode={mode!r}): mode must be 'train' or 'eval'.")
        self.mode = mode
        self.strict = strict
        self.sampling_rate = int(sampling_rate)
        self.min_seconds = None if min_seconds is None else float(min_seconds)
        self.min_samples = DEFAULT_MIN_SAMPLES if min_seconds is None else math.ceil(min_seconds * self.sampling_rate)
        self.silence_threshold = float(silence_threshold)
        self._audio_feature = None  # datasets.Audio at our rate, for undecoded rows
        # Shared memory: DataLoader workers (fork or spawn) increment the same counters the trainer reads.
        self._counts = multiprocessing.Array("q", len(_COUNTERS))

    def __repr__(self):
        return f"AudioQualityPolicy(mode={self.mode!r}, strict={self.strict}, counts={self.counts()})"

    # ----- counting -------------------------------------------------------------------------------------
    def _increment(self, name: str) -> int:
        index = _COUNTERS.index(name)
        with self._counts.get_lock():
            self._counts[index] += 1
            return self._counts[index]

    def counts(self, across_processes: bool = False) -> dict:
        """``{"clips_seen", "clips_skipped", <kind>: n, ...}`` summed over every DataLoader worker that used this
        policy; with ``across_processes=True`` also summed over the ranks of a ``torch.distributed`` run (a
        collective: every rank must call it, as ``Trainer.log`` does)."""
        with self._counts.get_lock():
            values = [int(v) for v in self._counts]
        if across_processes:
            values = _sum_over_ranks(values)
        return dict(zip(_COUNTERS, values))

    def as_metrics(self, prefix: str = "bad_audio/", across_processes: bool = False) -> dict:
        """The counts as flat metrics for ``Trainer.log`` / ``save_metrics`` (``bad_audio/silent`` ...)."""
        return {f"{prefix}{name}": value for name, value in self.counts(across_processes).items()}

    def reset(self):
        with self._counts.get_lock():
            for index in range(len(_COUNTERS)):
                self._counts[index] = 0

    def _bad(self, kind: str, clip_id: Any, detail: str) -> None:
        repairable = kind in REPAIRABLE_KINDS
        # strict mode refuses every kind but the rate: the loaders resample on purpose (AudioSet is stored at 48 kHz)
        if (self.strict and kind != "sample_rate") or (self.mode == "eval" and not repairable):
            action = "repaired" if repairable else "skipped"
            raise BadAudioError(
                f"clip {clip_id!r}: {kind} ({detail}). {'Strict mode' if self.strict else 'Evaluation'} rejects "
                f"it; fix or remove the clip, or use AudioQualityPolicy(mode='train', strict=False), "
                f"where it is {action} and counted."
            )
        if self._increment(kind) == 1:
            what = _REPAIRS[kind] if repairable else "skipped"
            logger.warning(
                "bad audio (%s) in clip %r: %s; %s. Further %s clips are counted silently (AudioQualityPolicy.counts()).",
                kind, clip_id, detail, what, kind,
            )

    # ----- checking -------------------------------------------------------------------------------------
    def _to_channels_first(
        self, audio: Any, sampling_rate: int | None, clip_id: Any, max_samples: int | None, start_seconds: float = 0.0
    ):
        """-> (float32 array [channels, samples], rate, the source's rate) or None when the clip cannot be decoded."""
        if isinstance(audio, UnreadableAudio):
            self._bad(audio["kind"], clip_id, audio["error"])
            return None
        if hasattr(audio, "get_all_samples"):  # torchcodec AudioDecoder from datasets: decode now
            try:
                # the file's own rate: datasets' decoder resamples while decoding, which is still a repair to count
                source_rate = getattr(getattr(audio, "metadata", None), "sample_rate", None)
                if max_samples is None and not start_seconds:
                    samples = audio.get_all_samples()
                else:  # only the part that is used: decoding dominates the data path, and a long file stays unread
                    stop = None if max_samples is None else start_seconds + max_samples / self.sampling_rate
                    samples = audio.get_samples_played_in_range(start_seconds, stop)
            except Exception as err:
                message = str(err).splitlines()[0]
                kind = "empty" if "No audio frames were decoded" in message else "unreadable"  # a valid header, 0 frames
                self._bad(kind, clip_id, f"{type(err).__name__}: {message[:200]}")
                return None
            return samples.data.numpy(), int(samples.sample_rate), int(source_rate or samples.sample_rate)
        if isinstance(audio, dict):
            if "array" not in audio:  # undecoded {"bytes", "path"} (e.g. a set that lost its transform): decode safely
                if self._audio_feature is None:
                    from datasets import Audio

                    self._audio_feature = Audio(sampling_rate=self.sampling_rate)
                return self._to_channels_first(
                    safe_decode(audio, self._audio_feature, clip_id), sampling_rate, clip_id, max_samples, start_seconds
                )
            sampling_rate = audio.get("sampling_rate", sampling_rate)
            audio = audio["array"]
        if audio is None:
            self._bad("empty", clip_id, "no samples")
            return None
        wave = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
        if sampling_rate is None:
            raise ValueError(f"clip {clip_id!r}: a bare waveform needs its sampling_rate.")
        if wave.ndim == 1:
            wave = wave[None]
        elif wave.ndim == 2:
            if wave.shape[0] > wave.shape[1]:  # [samples, channels] (soundfile's layout)
                wave = wave.T
        else:
            raise ValueError(f"clip {clip_id!r}: waveform must be 1-D or 2-D, got shape {tuple(wave.shape)}.")
        return wave.astype(np.float32, copy=False), int(sampling_rate), int(sampling_rate)

    def check(
        self,
        audio: Any,
        clip_id: Any = None,
        sampling_rate: int | None = None,
        unknown_labels=(),
        max_samples: int | None = None,
        start_seconds: float = 0.0,
    ) -> np.ndarray | None:
        """Return the clip as a mono float32 waveform at ``self.sampling_rate``, or ``None`` if it is skipped.

        ``audio`` may be a datasets ``AudioDecoder``, an :class:`UnreadableAudio` marker, a
        ``{"array", "sampling_rate"}`` dict, or a numpy / torch waveform (then pass ``sampling_rate``).
        ``unknown_labels`` are the clip's MIDs that were not in the label set (counted, never silently dropped).
        ``max_samples`` (at ``self.sampling_rate``): keep, and decode, only the start of the clip -- what a
        truncating feature extractor uses; the checks then apply to that part. ``start_seconds``: where that
        part starts (a lazy decoder then decodes only ``[start, start + max_samples)``: a random training crop).
        """
        self._increment("clips_seen")
        decoded = self._to_channels_first(audio, sampling_rate, clip_id, max_samples, start_seconds)
        wave = self._vet(decoded, clip_id, max_samples)
        if wave is None:
            self._increment("clips_skipped")
            return None
        if len(unknown_labels):
            self._bad("unknown_label", clip_id, f"MIDs not in the label set: {list(unknown_labels)}")
        return wave

    def _vet(self, decoded, clip_id: Any, max_samples: int | None = None) -> np.ndarray | None:
        if decoded is None:
            return None
        wave, rate, source_rate = decoded
        if wave.size == 0:
            self._bad("empty", clip_id, "0 samples")
            return None
        if not np.isfinite(wave).all():
            self._bad("non_finite", clip_id, f"{int((~np.isfinite(wave)).sum())} NaN/inf samples")
            return None
        if wave.shape[0] > 1:
            self._bad("multi_channel", clip_id, f"{wave.shape[0]} channels")
        wave = wave.mean(axis=0)
        if source_rate != self.sampling_rate:
            self._bad("sample_rate", clip_id, f"{source_rate} Hz instead of {self.sampling_rate} Hz")
        if rate != self.sampling_rate:
            wave = torchaudio.functional.resample(torch.from_numpy(wave), rate, self.sampling_rate).numpy()
        if max_samples is not None:
            wave = wave[:max_samples]
        if wave.shape[0] < self.min_samples:
            self._bad(
                "too_short", clip_id, f"{wave.shape[0]} samples ({wave.shape[0] / self.sampling_rate:.3f} s) < "
                f"min_samples={self.min_samples}"
            )
            return None
        if float(np.abs(wave).max()) < self.silence_threshold:
            self._bad("silent", clip_id, f"peak amplitude below {self.silence_threshold}")
            return None
        return wave

    # ----- dataset-level filtering ----------------------------------------------------------------------
    def filter_dataset(self, dataset, audio_column: str = "audio", id_column: str = "video_id"):
        """Check clips inside a streaming ``datasets.IterableDataset`` (in the DataLoader workers) and drop the
        rejected ones before batching, so batches stay full. Rows keep ``audio`` as a checked
        ``{"array", "sampling_rate", "checked": True}`` dict that the collator takes as is (not counted twice)."""
        import datasets

        if not isinstance(dataset, datasets.IterableDataset):
            raise TypeError(
                "filter_dataset works on a streaming datasets.IterableDataset (decoding lazily in the workers); "
                "for a map-style Dataset call dataset.to_iterable_dataset() first, or let the collator check clips."
            )
        return dataset.map(_CheckRow(self, audio_column, id_column)).filter(lambda row: row[audio_column] is not None)


class _CheckRow:
    """Picklable row function for :meth:`AudioQualityPolicy.filter_dataset`."""

    def __init__(self, policy: AudioQualityPolicy, audio_column: str, id_column: str):
        self.policy, self.audio_column, self.id_column = policy, audio_column, id_column

    def __call__(self, row):
        wave = self.policy.check(
            row[self.audio_column], clip_id=row.get(self.id_column), unknown_labels=row.get("unknown_labels") or ()
        )
        row = dict(row)
        # ``checked`` tells the collator that this clip was counted already.
        checked = {"array": wave, "sampling_rate": self.policy.sampling_rate, "checked": True}
        row[self.audio_column] = None if wave is None else checked
        return row


class AudioQualityCallback(TrainerCallback):
    """Adds the policy's counts to every ``Trainer`` log entry (console, ``log_history``, trackers), summed over
    the processes of a distributed run (``Trainer.log`` runs on every rank, so the sum is a safe collective)."""

    def __init__(self, policy: AudioQualityPolicy, prefix: str = "bad_audio/"):
        self.policy, self.prefix = policy, prefix

    def on_log(self, args, state, control, logs=None, **kwargs):
        metrics = self.policy.as_metrics(self.prefix, across_processes=True)
        if logs is not None:
            logs.update(metrics)
        if state.log_history:  # Trainer.log appended a copy of ``logs`` before calling on_log
            state.log_history[-1].update(metrics)
