"""The bad-audio policy on real recordings damaged in the ways real datasets are damaged."""
import io
import logging

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import TrainerControl, TrainerState, TrainingArguments

from hf_audio_cr.data import (
    AudioClassificationCollator,
    AudioQualityCallback,
    AudioQualityPolicy,
    BadAudioError,
    load_audioset,
)
from hf_audio_cr.data.audioset import write_audioset_parquet
from hf_audio_cr.models.cr_audiomae import AudioMAEFeatureExtractor

ALSA = "/usr/share/sounds/alsa"
SPEECH = "/m/09x0r"


def flac_bytes(wave, rate):
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format="FLAC", subtype="PCM_24")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def damaged_clips(audio_dir):
    """Two good clips and one clip of every bad kind, all cut from real recordings."""
    speech, rate = sf.read(f"{ALSA}/Front_Center.wav", dtype="float32")  # 48 kHz
    left, _ = sf.read(f"{ALSA}/Front_Left.wav", dtype="float32")
    robin, robin_rate = sf.read(audio_dir / "robin.ogg", dtype="float32")  # 22.05 kHz
    n = min(len(speech), len(left))
    with_nan = speech.copy()
    with_nan[1000:1010] = np.nan
    good = flac_bytes(speech, rate)
    empty_wav = io.BytesIO()
    sf.write(empty_wav, speech[:0], rate, format="WAV", subtype="PCM_24")
    return [
        {"video_id": "good_speech", "audio": (speech, rate), "labels": [SPEECH]},
        {"video_id": "good_robin", "audio": (robin, robin_rate), "labels": ["/m/015p6"]},
        {"video_id": "truncated", "audio": good[: len(good) // 4], "labels": [SPEECH]},
        {"video_id": "not_audio", "audio": (audio_dir / "LICENSES.md").read_bytes(), "labels": [SPEECH]},
        {"video_id": "empty", "audio": empty_wav.getvalue(), "labels": [SPEECH]},  # a header, 0 frames
        {"video_id": "zero_bytes", "audio": b"", "labels": [SPEECH]},
        {"video_id": "too_short", "audio": (speech[:960], rate), "labels": [SPEECH]},  # 20 ms
        {"video_id": "digital_silence", "audio": (np.zeros(rate, np.float32), rate), "labels": ["/m/028v0c"]},
        {"video_id": "stereo", "audio": (np.stack([speech[:n], left[:n]], axis=1), rate), "labels": [SPEECH]},
        {"video_id": "unknown_mid", "audio": (speech, rate), "labels": [SPEECH, "/m/not_a_class"]},
        {"video_id": "nan", "audio": {"array": with_nan, "sampling_rate": rate}, "raw": True, "labels": [SPEECH]},
    ]


@pytest.fixture(scope="module")
def damaged_parquet(damaged_clips, tmp_path_factory):
    stored = [clip for clip in damaged_clips if not clip.get("raw")]  # FLAC cannot hold NaN
    return write_audioset_parquet(stored, tmp_path_factory.mktemp("bad") / "bad.parquet", row_group_size=3)


@pytest.fixture(scope="module")
def feature_extractor():
    return AudioMAEFeatureExtractor(max_length=128, long_audio="truncate")


EXPECTED_TRAIN_COUNTS = {
    "clips_seen": 10, "clips_skipped": 6, "unreadable": 2, "empty": 2, "non_finite": 0, "too_short": 1,
    "silent": 1, "multi_channel": 1, "unknown_label": 1,
    # every decodable clip is 48 kHz FLAC: datasets' decoder resamples it, and the policy counts that repair
    "sample_rate": 6,
}


def test_training_skips_and_counts_every_kind(damaged_parquet, feature_extractor, caplog):
    policy = AudioQualityPolicy(mode="train")
    collator = AudioClassificationCollator(feature_extractor, quality=policy)
    rows = list(load_audioset(data_files=str(damaged_parquet)))
    with caplog.at_level(logging.WARNING, logger="hf_audio_cr.data.quality"):
        batch = collator(rows)
    assert batch["input_values"].shape == (4, 128, 128)  # good_speech, good_robin, stereo, unknown_mid
    assert policy.counts() == EXPECTED_TRAIN_COUNTS
    # Each kind is logged once (two unreadable clips, one warning), naming the first clip.
    messages = [r.getMessage() for r in caplog.records]
    assert sum("(unreadable)" in m for m in messages) == 1 and any("'truncated'" in m for m in messages)
    assert len(messages) == 7  # unreadable, empty, too_short, silent, multi_channel, sample_rate, unknown_label
    assert policy.as_metrics()["bad_audio/unreadable"] == 2


def test_nan_and_other_rate_in_raw_waveforms(damaged_clips):
    policy = AudioQualityPolicy()
    nan_clip = next(c for c in damaged_clips if c["video_id"] == "nan")
    assert policy.check(nan_clip["audio"], clip_id="nan") is None
    robin, rate = next(c for c in damaged_clips if c["video_id"] == "good_robin")["audio"]
    wave = policy.check(torch.from_numpy(robin), clip_id="robin", sampling_rate=rate)
    assert wave.dtype == np.float32 and abs(len(wave) - len(robin) * 16000 / rate) <= 1
    assert policy.counts()["non_finite"] == 1 and policy.counts()["sample_rate"] == 1
    with pytest.raises(ValueError, match="needs its sampling_rate"):
        policy.check(robin, clip_id="robin")


def test_evaluation_raises_with_the_clip_id_and_repairs_stereo(damaged_parquet):
    rows = {row["video_id"]: row for row in load_audioset(data_files=str(damaged_parquet))}
    policy = AudioQualityPolicy(mode="eval")
    for clip_id in ("truncated", "not_audio", "empty", "zero_bytes", "too_short", "digital_silence"):
        with pytest.raises(BadAudioError, match=f"clip '{clip_id}'"):
            policy.check(rows[clip_id]["audio"], clip_id=clip_id)
    stereo = policy.check(rows["stereo"]["audio"], clip_id="stereo")
    assert stereo.ndim == 1 and policy.counts()["multi_channel"] == 1


def test_strict_mode_raises_on_repairable_kinds(damaged_parquet):
    rows = {row["video_id"]: row for row in load_audioset(data_files=str(damaged_parquet))}
    policy = AudioQualityPolicy(mode="train", strict=True)
    assert policy.check(rows["good_speech"]["audio"], clip_id="good_speech") is not None
    with pytest.raises(BadAudioError, match="clip 'stereo': multi_channel .*Strict mode"):
        policy.check(rows["stereo"]["audio"], clip_id="stereo")
    with pytest.raises(BadAudioError, match="unknown_label"):
        policy.check(rows["unknown_mid"]["audio"], clip_id="unknown_mid", unknown_labels=rows["unknown_mid"]["unknown_labels"])


def test_counts_from_dataloader_workers_reach_the_main_process(damaged_parquet, feature_extractor):
    policy = AudioQualityPolicy()
    dataset = load_audioset(data_files=str(damaged_parquet), reshard=True, quality=policy)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=2, num_workers=2, collate_fn=AudioClassificationCollator(feature_extractor, quality=policy)
    )
    sizes = [batch["input_values"].shape[0] for batch in loader]
    # Rejected clips are dropped before batching: every batch but the last is full.
    assert sum(sizes) == 4 and sizes[0] == 2
    assert policy.counts() == EXPECTED_TRAIN_COUNTS


def test_callback_puts_counts_in_trainer_logs(tmp_path):
    policy = AudioQualityPolicy()
    policy.check(np.zeros(16000, np.float32), clip_id="zeros", sampling_rate=16000)
    state = TrainerState()
    state.log_history.append({"loss": 0.5, "step": 1})
    logs = {"loss": 0.5}
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[])
    AudioQualityCallback(policy).on_log(args, state, TrainerControl(), logs=logs)
    assert logs["bad_audio/silent"] == 1 and state.log_history[-1]["bad_audio/clips_skipped"] == 1


def test_policy_arguments_are_checked():
    with pytest.raises(ValueError, match="'train' or 'eval'"):
        AudioQualityPolicy(mode="training")


def test_write_audioset_parquet_names_a_clip_with_nan(damaged_clips, tmp_path):
    nan = next(c for c in damaged_clips if c["video_id"] == "nan")
    good = damaged_clips[0]
    with pytest.raises(ValueError, match=r"clip 'nan' has 10 NaN/inf samples, which FLAC cannot store"):
        write_audioset_parquet([good, nan], tmp_path / "nan.parquet")


HIHAT = "/usr/share/hydrogen/data/drumkits/TR808EmulationKit/808_Hat_Closed.flac"  # a real 0.0895 s hi-hat


def test_too_short_floor_is_the_models_real_minimum_and_configurable():
    from hf_audio_cr.models.hear import HEARFeatureExtractor

    hat, rate = sf.read(HIHAT, dtype="float32")
    assert 0.08 < len(hat) / rate < 0.1
    policy = AudioQualityPolicy()
    assert policy.min_samples == 400  # one 25 ms fbank window at 16 kHz
    kept = policy.check(hat, clip_id="hihat", sampling_rate=rate)
    assert kept is not None and policy.counts()["too_short"] == 0
    # the collators raise the floor to their extractor's own minimum: HEAR's centred STFT needs 513 samples
    audiomae = AudioClassificationCollator(AudioMAEFeatureExtractor(max_length=128))
    hear = AudioClassificationCollator(HEARFeatureExtractor())
    assert audiomae.quality.min_samples == 400 and hear.quality.min_samples == 513
    clip = kept[:450]  # 28 ms: enough for one fbank frame, not for HEAR's STFT
    assert audiomae.quality.check(clip, clip_id="cut", sampling_rate=16000) is not None
    assert hear.quality.check(clip, clip_id="cut", sampling_rate=16000) is None
    assert hear.quality.counts()["too_short"] == 1
    assert AudioClassificationCollator(HEARFeatureExtractor())([{"audio": {"array": kept, "sampling_rate": 16000}}])
    # configurable: the old 0.1 s floor skips the hi-hat; a floor below the extractor's minimum is raised to it
    strict_floor = AudioQualityPolicy(min_seconds=0.1)
    assert strict_floor.check(hat, clip_id="hihat", sampling_rate=rate) is None
    low = AudioQualityPolicy(min_seconds=0.01)
    assert low.min_samples == 160 and AudioClassificationCollator(HEARFeatureExtractor(), quality=low).quality.min_samples == 513
