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
import os
import struct
import warnings

import numpy as np
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


def _truncated_message(path: str, problems: list) -> str:
    return f"audio file {path!r} is truncated: {'; '.join(problems)}"


def decode_audio_file(path, truncated: str = "raise"):
    """Decode ``path`` with torchcodec at its own rate -> (mono float32 samples, rate). Raises
    :class:`AudioFileError` (``FileNotFoundError`` for a missing file) naming the file."""
    path = os.fspath(path)
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
        decoder = AudioDecoder(path)
        header_seconds = decoder.metadata.duration_seconds_from_header
        samples = decoder.get_all_samples()
    except Exception as err:  # torchcodec raises RuntimeError with a C++ location for corrupt / cut containers
        message = str(err).strip().splitlines()[-1][:200] if str(err).strip() else type(err).__name__
        known = f" ({_truncated_message(path, problems).split(': ', 1)[1]})" if problems else ""
        raise AudioFileError(
            f"audio file {path!r} could not be decoded ({type(err).__name__}: {message}); it is corrupt, truncated"
            f"{known} or not audio. Re-encode it (e.g. ffmpeg -i in -ar 16000 out.flac) or remove it."
        ) from None
    wave, rate = samples.data.numpy(), int(samples.sample_rate)
    if wave.size == 0:
        raise AudioFileError(f"audio file {path!r} holds no audio frames; re-export or remove it.")
    decoded_seconds = wave.shape[-1] / rate
    if header_seconds and decoded_seconds < header_seconds - _TRUNCATION_TOLERANCE_SECONDS:
        problems.append(f"its header says {header_seconds:.3f} s but only {decoded_seconds:.3f} s decode")
    if problems:
        detail = _truncated_message(path, problems)
        if truncated == "raise":
            raise AudioFileError(detail + TRUNCATED_FIX)
        warnings.warn(f"{detail}; scoring the {decoded_seconds:.3f} s that exist (truncated='warn').", stacklevel=3)
    if not np.isfinite(wave).all():
        raise AudioFileError(f"audio file {path!r} contains NaN or inf samples; re-export or remove it.")
    return wave.mean(axis=0).astype(np.float32, copy=False), rate  # downmix as the training data path does


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
        if isinstance(inputs, os.PathLike) or isinstance(inputs, str) and not inputs.startswith(("http://", "https://")):
            path = os.fspath(inputs)
            wave, rate = decode_audio_file(path, truncated or self.truncated)
            try:
                return super().preprocess({"raw": wave, "sampling_rate": rate})
            except ValueError as err:  # the feature extractor's own checks (too short, ...): say which file
                raise AudioFileError(f"audio file {path!r}: {err}") from err
        if isinstance(inputs, bytes):
            raise TypeError(
                "AudioFileClassificationPipeline takes a file path, not file bytes: write them to a file, or pass "
                "the decoded samples as {'raw': array, 'sampling_rate': rate}."
            )
        return super().preprocess(inputs)
