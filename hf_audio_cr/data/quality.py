"""The bad-audio policy: what happens to a clip that cannot be used as it is.

Kinds of bad audio (``BAD_AUDIO_KINDS``) fall into two groups:

* unusable -- ``unreadable`` (corrupt / truncated / not audio), ``empty``, ``non_finite`` (NaN or inf samples),
  ``too_short``, ``silent`` (digital silence);
* repairable -- ``multi_channel`` (downmixed to mono), ``sample_rate`` (resampled to the target rate),
  ``unknown_label`` (a MID outside the label set: left out of the target).

``mode="train"`` (training default) skips unusable clips and repairs the others; ``mode="eval"`` raises
:class:`BadAudioError` naming the clip for unusable clips (a metric over a silently smaller eval set is not
comparable) and repairs the others; ``strict=True`` raises for every kind in both modes. Every skip and every
repair is counted, and the first of each kind is logged once. The counters live in shared memory, so clips
rejected inside ``DataLoader`` worker processes are counted in the main process too: read them with
:meth:`AudioQualityPolicy.counts` / :meth:`AudioQualityPolicy.as_metrics` and put them in the logs and the
metrics JSON (or let :class:`AudioQualityCallback` add them to every ``Trainer`` log line).
"""
from __future__ import annotations

import logging
import multiprocessing
from typing import Any, Optional

import numpy as np
import torch
import torchaudio
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

UNUSABLE_KINDS = ("unreadable", "empty", "non_finite", "too_short", "silent")
REPAIRABLE_KINDS = ("multi_channel", "sample_rate", "unknown_label")
BAD_AUDIO_KINDS = UNUSABLE_KINDS + REPAIRABLE_KINDS
_COUNTERS = ("clips_seen", "clips_skipped") + BAD_AUDIO_KINDS

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
    try:
        return audio_feature.decode_example(value)
    except Exception as err:  # torchcodec raises RuntimeError for corrupt containers, others for missing files
        return UnreadableAudio(clip_id, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")


class AudioQualityPolicy:
    """Checks, repairs or rejects clips and counts every decision.

    Args:
        mode: ``"train"`` (skip unusable clips) or ``"eval"`` (raise on unusable clips).
        strict: raise :class:`BadAudioError` for every kind of bad audio, repairable ones included.
        sampling_rate: the rate waveforms must have (the feature extractor's); other rates are resampled.
        min_seconds: clips shorter than this are ``too_short`` (the Kaldi fbank needs at least one 25 ms window;
            0.1 s keeps every real AudioSet / ESC-50 / Speech Commands clip).
        silence_threshold: peak absolute amplitude below which a clip is ``silent``. The default 1e-5 is below
            one 16-bit step (3e-5), so only digital silence is rejected, never a quiet recording.
    """

    def __init__(
        self,
        mode: str = "train",
        strict: bool = False,
        sampling_rate: int = 16000,
        min_seconds: float = 0.1,
        silence_threshold: float = 1e-5,
    ):
        if mode not in ("train", "eval"):
            raise ValueError(f"AudioQualityPolicy(mode={mode!r}): mode must be 'train' or 'eval'.")
        self.mode = mode
        self.strict = strict
        self.sampling_rate = int(sampling_rate)
        self.min_seconds = float(min_seconds)
        self.silence_threshold = float(silence_threshold)
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

    def counts(self) -> dict:
        """``{"clips_seen", "clips_skipped", <kind>: n, ...}`` summed over every process that used this policy."""
        with self._counts.get_lock():
            return dict(zip(_COUNTERS, (int(v) for v in self._counts)))

    def as_metrics(self, prefix: str = "bad_audio/") -> dict:
        """The counts as flat metrics for ``Trainer.log`` / ``save_metrics`` (``bad_audio/silent`` ...)."""
        return {f"{prefix}{name}": value for name, value in self.counts().items()}

    def reset(self):
        with self._counts.get_lock():
            for index in range(len(_COUNTERS)):
                self._counts[index] = 0

    def _bad(self, kind: str, clip_id: Any, detail: str) -> None:
        repairable = kind in REPAIRABLE_KINDS
        if self.strict or (self.mode == "eval" and not repairable):
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
    def _to_channels_first(self, audio: Any, sampling_rate: Optional[int], clip_id: Any, max_samples: Optional[int]):
        """-> (float32 array [channels, samples], rate) or None when the clip cannot be decoded."""
        if isinstance(audio, UnreadableAudio):
            self._bad(audio["kind"], clip_id, audio["error"])
            return None
        if hasattr(audio, "get_all_samples"):  # torchcodec AudioDecoder from datasets: decode now
            try:
                if max_samples is None:
                    samples = audio.get_all_samples()
                else:  # only the part the feature extractor keeps: decoding dominates the data path
                    samples = audio.get_samples_played_in_range(0.0, max_samples / self.sampling_rate)
            except Exception as err:
                message = str(err).splitlines()[0]
                kind = "empty" if "No audio frames were decoded" in message else "unreadable"  # a valid header, 0 frames
                self._bad(kind, clip_id, f"{type(err).__name__}: {message[:200]}")
                return None
            return samples.data.numpy(), int(samples.sample_rate)
        if isinstance(audio, dict):
            if "array" not in audio:
                raise TypeError(
                    f"clip {clip_id!r}: audio is an undecoded {{'bytes', 'path'}} dict; cast the column with "
                    "datasets.Audio(sampling_rate=16000) (decode=True) or use hf_audio_cr.data.safe_decode."
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
        return wave.astype(np.float32, copy=False), int(sampling_rate)

    def check(
        self,
        audio: Any,
        clip_id: Any = None,
        sampling_rate: Optional[int] = None,
        unknown_labels=(),
        max_samples: Optional[int] = None,
    ) -> Optional[np.ndarray]:
        """Return the clip as a mono float32 waveform at ``self.sampling_rate``, or ``None`` if it is skipped.

        ``audio`` may be a datasets ``AudioDecoder``, an :class:`UnreadableAudio` marker, a
        ``{"array", "sampling_rate"}`` dict, or a numpy / torch waveform (then pass ``sampling_rate``).
        ``unknown_labels`` are the clip's MIDs that were not in the label set (counted, never silently dropped).
        ``max_samples`` (at ``self.sampling_rate``): keep, and decode, only the start of the clip -- what a
        truncating feature extractor uses; the checks then apply to that part.
        """
        self._increment("clips_seen")
        decoded = self._to_channels_first(audio, sampling_rate, clip_id, max_samples)
        wave = self._vet(decoded, clip_id, max_samples)
        if wave is None:
            self._increment("clips_skipped")
            return None
        if len(unknown_labels):
            self._bad("unknown_label", clip_id, f"MIDs not in the label set: {list(unknown_labels)}")
        return wave

    def _vet(self, decoded, clip_id: Any, max_samples: Optional[int] = None) -> Optional[np.ndarray]:
        if decoded is None:
            return None
        wave, rate = decoded
        if wave.size == 0:
            self._bad("empty", clip_id, "0 samples")
            return None
        if not np.isfinite(wave).all():
            self._bad("non_finite", clip_id, f"{int((~np.isfinite(wave)).sum())} NaN/inf samples")
            return None
        if wave.shape[0] > 1:
            self._bad("multi_channel", clip_id, f"{wave.shape[0]} channels")
        wave = wave.mean(axis=0)
        if rate != self.sampling_rate:
            self._bad("sample_rate", clip_id, f"{rate} Hz instead of {self.sampling_rate} Hz")
            wave = torchaudio.functional.resample(torch.from_numpy(wave), rate, self.sampling_rate).numpy()
        if max_samples is not None:
            wave = wave[:max_samples]
        if wave.shape[0] < self.min_seconds * self.sampling_rate:
            self._bad("too_short", clip_id, f"{wave.shape[0] / self.sampling_rate:.3f} s < {self.min_seconds} s")
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
    """Adds the policy's counts to every ``Trainer`` log entry (console, ``log_history``, trackers)."""

    def __init__(self, policy: AudioQualityPolicy, prefix: str = "bad_audio/"):
        self.policy, self.prefix = policy, prefix

    def on_log(self, args, state, control, logs=None, **kwargs):
        metrics = self.policy.as_metrics(self.prefix)
        if logs is not None:
            logs.update(metrics)
        if state.log_history:  # Trainer.log appended a copy of ``logs`` before calling on_log
            state.log_history[-1].update(metrics)
