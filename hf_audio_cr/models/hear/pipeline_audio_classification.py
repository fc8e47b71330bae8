"""``pipeline("audio-classification")`` that reads files the way the training data path does.

transformers' own audio pipeline decodes a file path with the ffmpeg binary, which also resamples; training
decodes with torchcodec (what ``datasets.Audio`` uses) and resamples with ``torchaudio.functional.resample``.
On 8 kHz files the two give model inputs that differ by up to 1.5 (normalised fbank), and ffmpeg scores the
bytes that exist of a truncated file without a word. This pipeline decodes a file at its own rate with
torchcodec, downmixes to mono (as the data path's quality policy does), and hands the samples to the same
``torchaudio`` resampling an array input gets, so a file and its samples give the same scores. Every error
names the file; a truncated file is refused (``truncated="warn"`` scores what exists, with a warning).

This file is self-contained (saved next to the model as remote code through ``config.json``'s
``custom_pipelines`` entry), so it imports nothing from ``hf_audio_cr``. The same file ships in each model
family's folder; tests/test_remote_code_copies.py keeps the copies identical.
"""
import itertools
import math
import os
import struct
import warnings

import numpy as np
import torch
import torchaudio
from transformers import AudioClassificationPipeline

# The `custom_pipelines` entry save_pretrained writes into config.json: transformers' pipeline() then loads this
# class (trust_remote_code=True) for the task instead of its own.
CUSTOM_PIPELINES = {
    "audio-classification": {
        "impl": "pipeline_audio_classification.AudioFileClassificationPipeline",
        "pt": ["AutoModelForAudioClassification"],
        "type": "audio",
    }
}
TRUNCATED_POLICIES = ("raise", "warn")
# Decoded audio this much shorter than its header says is a truncated file (codec priming costs a few ms).
_TRUNCATION_TOLERANCE_SECONDS = 0.05


class AudioFileError(ValueError):
    """A file the pipeline cannot score; the message names the file, what is wrong and the fix."""


def _wav_shortfall(path: str):
    """(declared data bytes, bytes present) of a RIFF/WAVE file whose data chunk is cut short, else None.

    Decoders size a WAV's audio by the file's length, so a cut WAV looks like a shorter, valid one: the data
    chunk's declared size is the only record of what is missing.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        position = 12
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                present = size - position - 8
                # 0 / 0xFFFFFFFF: a streamed WAV that never learned its size
                return (length, present) if 0 < length < 0xFFFFFFFF and present < length else None
            position += 8 + length + (length & 1)
            handle.seek(position)


TRUNCATED_FIX = ". Re-export the file, or pass truncated='warn' to score what exists."
# Lossless codecs decode a time range to exactly the samples of one pass (tests/test_long_audio_streaming.py);
# lossy ones do not after a seek (MDCT overlap, encoder priming shift the first frame), so they decode whole.
SPAN_DECODABLE_CODECS = ("flac", "alac", "wavpack", "tta")
_CHUNK_SECONDS = 30  # decoded at once from a long lossless file: bounds memory whatever the length


def _truncated_message(path: str, problems: list) -> str:
    return f"audio file {path!r} is truncated: {'; '.join(problems)}"


def _open_audio_file(path: str, truncated: str):
    """The checks before decoding -> (torchcodec decoder, problems found so far)."""
    if truncated not in TRUNCATED_POLICIES:
        raise ValueError(f"truncated={truncated!r}: use one of {TRUNCATED_POLICIES}.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"audio file {path!r} does not exist.")
    if os.path.getsize(path) == 0:
        raise AudioFileError(f"audio file {path!r} is empty (0 bytes); re-export or remove it.")
    try:
        from torchcodec.decoders import AudioDecoder
    except ImportError as err:
        raise ImportError(
            f"reading {path!r} needs torchcodec (the decoder datasets and training use): pip install torchcodec, "
            "or pass the samples as {'raw': array, 'sampling_rate': rate}."
        ) from err
    problems = []
    shortfall = _wav_shortfall(path)
    if shortfall is not None:
        problems.append(f"its data chunk declares {shortfall[0]} bytes but only {shortfall[1]} are present")
        if truncated == "raise":  # known from the header alone: refuse before decoding
            raise AudioFileError(_truncated_message(path, problems) + TRUNCATED_FIX)
    try:
        return AudioDecoder(path), problems
    except Exception as err:
        raise _undecodable(path, err, problems) from None


def _undecodable(path: str, err: Exception, problems: list) -> AudioFileError:
    # torchcodec raises RuntimeError with a C++ location for corrupt / cut containers
    message = str(err).strip().splitlines()[-1][:200] if str(err).strip() else type(err).__name__
    known = f" ({_truncated_message(path, problems).split(': ', 1)[1]})" if problems else ""
    return AudioFileError(
        f"audio file {path!r} could not be decoded ({type(err).__name__}: {message}); it is corrupt, truncated"
        f"{known} or not audio. Re-encode it (e.g. ffmpeg -i in -ar 16000 out.flac) or remove it."
    )


def _check_decoded(path: str, num_samples: int, rate: int, header_seconds, problems: list, truncated: str):
    """Refuse (or warn about) a file that decoded to nothing or to less than its header says."""
    if num_samples == 0:
        raise AudioFileError(f"audio file {path!r} holds no audio frames; re-export or remove it.")
    decoded_seconds = num_samples / rate
    if header_seconds and decoded_seconds < header_seconds - _TRUNCATION_TOLERANCE_SECONDS:
        problems.append(f"its header says {header_seconds:.3f} s but only {decoded_seconds:.3f} s decode")
    if problems:
        detail = _truncated_message(path, problems)
        if truncated == "raise":
            raise AudioFileError(detail + TRUNCATED_FIX)
        warnings.warn(f"{detail}; scoring the {decoded_seconds:.3f} s that exist (truncated='warn').", stacklevel=4)


def _mono(data) -> np.ndarray:
    """(channels, samples) float32 -> mono, downmixed as the training data path does."""
    wave = data.numpy() if hasattr(data, "numpy") else data
    return wave[0] if wave.shape[0] == 1 else wave.mean(axis=0).astype(np.float32, copy=False)


def _finite(path: str, wave: np.ndarray) -> np.ndarray:
    if not np.isfinite(wave.sum()) and not np.isfinite(wave).all():  # one cheap reduction first
        raise AudioFileError(f"audio file {path!r} contains NaN or inf samples; re-export or remove it.")
    return wave


def decode_audio_file(path, truncated: str = "raise"):
    """Decode ``path`` whole with torchcodec at its own rate -> (mono float32 samples, rate). Raises
    :class:`AudioFileError` (``FileNotFoundError`` for a missing file) naming the file."""
    path = os.fspath(path)
    decoder, problems = _open_audio_file(path, truncated)
    try:
        samples = decoder.get_all_samples()
    except Exception as err:
        raise _undecodable(path, err, problems) from None
    rate = int(samples.sample_rate)
    _check_decoded(path, samples.data.shape[-1], rate, decoder.metadata.duration_seconds_from_header, problems,
                   truncated)
    return _finite(path, _mono(samples.data)), rate


class ResampledAudio:
    """A mono recording at ``sampling_rate`` read a span at a time: ``audio[a:b]`` (a float32 tensor) equals
    ``torchaudio.functional.resample`` of the whole recording sliced (the pipeline's array path), computed from
    the native samples the span needs plus the resampling kernel's reach, so neither the decoded file nor a
    resampled copy exists at full length. ``len()``, ``numel()`` and ``mean()`` as for a tensor.

    This project's feature extractors take it as a clip (``AudioMAEFeatureExtractor`` streams its windows from
    it). ``read_native(start, stop)`` gives native-rate mono float32 samples.
    """

    def __init__(self, read_native, native_length: int, native_rate: int, sampling_rate: int):
        self._read_native = read_native
        self.native_length, self.native_rate, self.sampling_rate = native_length, native_rate, sampling_rate
        gcd = math.gcd(native_rate, sampling_rate)
        self._orig, self._new = native_rate // gcd, sampling_rate // gcd
        # torchaudio's sinc kernel reaches `width` native samples past each stride of `orig` (functional.py,
        # _get_sinc_resample_kernel, lowpass_filter_width=6, rolloff=0.99): strides of context beyond that on
        # each side make a span's outputs see the same inputs as in one pass, never a span's zero padding.
        width = math.ceil(6 * self._orig / (min(self._orig, self._new) * 0.99))
        self._context = width // self._orig + 2
        # the length torchaudio gives: the ratio rounded to float32 before the ceiling (as functional.py does)
        self.length = native_length if native_rate == sampling_rate else int(
            torch.ceil(torch.as_tensor(self._new * native_length / self._orig)))
        self._mean = None
        self.device = torch.device("cpu")
        self.finite = True  # a file's samples are checked while it is counted; an array's in `from_array`

    @classmethod
    def from_array(cls, wave: np.ndarray, rate: int, sampling_rate: int) -> "ResampledAudio":
        """Resample a (mono) array span by span, cast to float32 a span at a time (no full-length copy)."""
        audio = cls(lambda a, b: torch.as_tensor(wave[a:b], dtype=torch.float32), len(wave), rate, sampling_rate)
        audio.finite = bool(np.isfinite(wave.sum()) or np.isfinite(wave).all())
        return audio

    def __len__(self) -> int:
        return self.length

    def numel(self) -> int:
        return self.length

    def __getitem__(self, index: slice) -> torch.Tensor:
        start, stop, step = index.indices(self.length)
        if step != 1:
            raise ValueError("ResampledAudio reads contiguous spans only.")
        stop = max(start, stop)
        if self.native_rate == self.sampling_rate:
            return self._read_native(start, stop)
        first, last = start // self._new, -(-stop // self._new)  # strides: `orig` inputs -> `new` outputs each
        low = max(0, first - self._context)
        native = self._read_native(low * self._orig, min((last + self._context) * self._orig, self.native_length))
        resampled = torchaudio.functional.resample(native, self.native_rate, self.sampling_rate)
        return resampled[start - low * self._new : stop - low * self._new]

    def spans(self, seconds: float = _CHUNK_SECONDS):
        """Consecutive spans covering the recording."""
        step = int(seconds * self.sampling_rate)
        for start in range(0, self.length, step):
            yield self[start : start + step]

    def mean(self) -> torch.Tensor:
        """float32 mean of the samples (summed in float64 over spans)."""
        if self._mean is None:
            self._mean = torch.tensor(sum(span.sum(dtype=torch.float64).item() for span in self.spans()) / self.length,
                                      dtype=torch.float32)
        return self._mean

    def materialize(self) -> torch.Tensor:
        """All samples at once (for consumers that need the whole clip)."""
        out = torch.empty(self.length)
        step = _CHUNK_SECONDS * self.sampling_rate
        for start in range(0, self.length, step):
            out[start : start + step] = self[start : start + step]
        return out

    def __repr__(self) -> str:
        return (f"ResampledAudio({self.length} samples at {self.sampling_rate} Hz from {self.native_length} at "
                f"{self.native_rate} Hz)")


def read_audio_file(path, sampling_rate: int, truncated: str = "raise") -> ResampledAudio:
    """``path`` as a :class:`ResampledAudio` at ``sampling_rate``, with the checks of :func:`decode_audio_file`.

    Lossless files (PCM WAV, FLAC, ...) are decoded twice in chunks of ``_CHUNK_SECONDS``: once to count and
    check the samples, then the spans the model reads; lossy ones are decoded whole at their own rate (see
    ``SPAN_DECODABLE_CODECS``) and resampled span by span.
    """
    path = os.fspath(path)
    decoder, problems = _open_audio_file(path, truncated)
    codec = str(decoder.metadata.codec or "")
    if not (codec.startswith("pcm_") or codec in SPAN_DECODABLE_CODECS):
        wave, rate = decode_audio_file(path, truncated)
        return ResampledAudio.from_array(wave, rate, sampling_rate)
    rate = int(decoder.metadata.sample_rate)
    chunk = _CHUNK_SECONDS * rate

    def decode_chunk(k: int) -> np.ndarray:
        # each range starts one sample early so that a range past the last sample is never asked for (torchcodec
        # raises there): a chunk shorter than `chunk` is the last one
        samples = decoder.get_samples_played_in_range(0 if k == 0 else (k * chunk - 1) / rate, (k + 1) * _CHUNK_SECONDS)
        return _mono(samples.data if k == 0 else samples.data[:, 1:])

    length, total = 0, 0.0
    for k in itertools.count():  # pass 1: count and check every sample, holding one chunk
        try:
            wave = _finite(path, decode_chunk(k))
        except AudioFileError:
            raise
        except Exception as err:
            raise _undecodable(path, err, problems) from None
        length += wave.size
        total += float(wave.sum(dtype=np.float64))
        if wave.size < chunk:
            break
    _check_decoded(path, length, rate, decoder.metadata.duration_seconds_from_header, problems, truncated)
    cache = {}  # the chunks of the last span: consecutive spans (windows overlap) decode each chunk about once

    def read_native(start: int, stop: int) -> torch.Tensor:
        needed = range(start // chunk, (max(stop, start + 1) - 1) // chunk + 1)
        for k in [k for k in cache if k not in needed]:
            del cache[k]
        for k in needed:
            if k not in cache:
                cache[k] = decode_chunk(k)
        joined = np.concatenate([cache[k] for k in needed]) if len(needed) > 1 else cache[needed[0]]
        offset = needed[0] * chunk
        return torch.from_numpy(np.ascontiguousarray(joined[start - offset : stop - offset]))

    audio = ResampledAudio(read_native, length, rate, sampling_rate)
    if rate == sampling_rate:  # the mean needs no third pass when nothing is resampled
        audio._mean = torch.tensor(total / length, dtype=torch.float32)
    return audio


class AudioFileClassificationPipeline(AudioClassificationPipeline):
    """``AudioClassificationPipeline`` whose file inputs are decoded as in training (see the module docstring).

    Arrays, ``{"raw"/"array", "sampling_rate"}`` dicts and torchcodec decoders go through transformers' own
    path unchanged (``torchaudio`` resampling). ``truncated``: ``"raise"`` (default) refuses a truncated file
    naming it; ``"warn"`` scores the audio that exists and warns. Set it in ``pipeline(..., truncated="warn")``
    or per call.
    """

    def __init__(self, *args, truncated: str = "raise", **kwargs):
        if truncated not in TRUNCATED_POLICIES:
            raise ValueError(f"truncated={truncated!r}: use one of {TRUNCATED_POLICIES}.")
        self.truncated = truncated
        super().__init__(*args, **kwargs)

    def _sanitize_parameters(self, top_k=None, function_to_apply=None, truncated=None, **kwargs):
        preprocess, forward, postprocess = super()._sanitize_parameters(top_k, function_to_apply, **kwargs)
        if truncated is not None:
            if truncated not in TRUNCATED_POLICIES:
                raise ValueError(f"truncated={truncated!r}: use one of {TRUNCATED_POLICIES}.")
            preprocess["truncated"] = truncated
        return preprocess, forward, postprocess

    def preprocess(self, inputs, truncated=None):
        # Our feature extractors take a ResampledAudio as a clip: a file (or an array at another rate or in
        # float64) is then decoded / resampled / cast a span at a time instead of as full-length copies.
        spans = getattr(self.feature_extractor, "reads_resampled_audio", False)
        rate = self.feature_extractor.sampling_rate
        if isinstance(inputs, os.PathLike) or isinstance(inputs, str) and not inputs.startswith(("http://", "https://")):
            path = os.fspath(inputs)
            audio = read_audio_file(path, rate, truncated or self.truncated)
            try:
                if spans:
                    return self._features(audio)
                return super().preprocess({"raw": audio.materialize().numpy(), "sampling_rate": rate})
            except ValueError as err:  # the feature extractor's own checks (too short, ...): say which file
                raise AudioFileError(f"audio file {path!r}: {err}") from err
        if isinstance(inputs, bytes):
            raise TypeError(
                "AudioFileClassificationPipeline takes a file path, not file bytes: write them to a file, or pass "
                "the decoded samples as {'raw': array, 'sampling_rate': rate}."
            )
        if spans and isinstance(inputs, dict) and "sampling_rate" in inputs:
            wave = inputs.get("raw", inputs.get("array"))
            if (isinstance(wave, np.ndarray) and wave.ndim == 1 and np.issubdtype(wave.dtype, np.floating)
                    and (inputs["sampling_rate"] != rate or wave.dtype != np.float32)):
                return self._features(ResampledAudio.from_array(wave, int(inputs["sampling_rate"]), rate))
        return super().preprocess(inputs)

    def _features(self, audio: ResampledAudio):
        processed = self.feature_extractor(audio, sampling_rate=audio.sampling_rate, return_tensors="pt")
        return processed.to(dtype=self.dtype) if self.dtype is not None else processed
