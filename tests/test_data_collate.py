"""The collator: rows -> one batched feature-extractor call -> model inputs."""
import numpy as np
import pytest
import soundfile as sf
import torch

from hf_audio_cr.data import AudioClassificationCollator, AudioQualityPolicy, BadAudioError, load_audioset
from hf_audio_cr.data.audioset import write_audioset_parquet
from hf_audio_cr.models.cr_audiomae import (
    AudioMAEFeatureExtractor,
    CRAudioMAEConfig,
    CRAudioMAEForAudioClassification,
)

DRUMS = "/usr/share/hydrogen/data/drumkits/GMRockKit"


class CountingFeatureExtractor:
    """The real feature extractor, recording how often it is called and with how many clips."""

    def __init__(self, feature_extractor):
        self.inner, self.calls = feature_extractor, []
        self.sampling_rate = feature_extractor.sampling_rate

    def __call__(self, waves, **kwargs):
        self.calls.append(len(waves))
        return self.inner(waves, **kwargs)


@pytest.fixture(scope="module")
def rows(audio_dir, tmp_path_factory):
    clips = [
        {"video_id": "robin", "audio": sf.read(audio_dir / "robin.ogg", dtype="float32"), "labels": ["/m/015p6"]},
        {"video_id": "trumpet", "audio": sf.read(audio_dir / "trumpet.ogg", dtype="float32"), "labels": ["/m/07gql"]},
        {"video_id": "kick", "audio": sf.read(f"{DRUMS}/Kick-Hard.wav", dtype="float32"), "labels": ["/m/026t6"]},
        {"video_id": "female", "audio": sf.read(audio_dir / "speech_female.ogg", dtype="float32"), "labels": ["/m/02zsn"]},
    ]
    path = write_audioset_parquet(clips, tmp_path_factory.mktemp("collate") / "clips.parquet")
    return list(load_audioset(data_files=str(path)))


@pytest.fixture(scope="module")
def feature_extractor():
    return AudioMAEFeatureExtractor(max_length=128, long_audio="truncate")


def test_one_batched_call_matches_per_clip_features(rows, feature_extractor):
    counting = CountingFeatureExtractor(feature_extractor)
    batch = AudioClassificationCollator(counting, decode_only_kept=False)(rows)
    assert counting.calls == [4]
    assert batch["input_values"].shape == (4, 128, 128) and batch["input_values"].dtype == torch.float32
    assert batch["labels"].shape == (4, 556) and batch["labels"].dtype == torch.float32
    assert batch["labels"][:, :527].sum(1).tolist() == [1, 1, 1, 1]
    for i, row in enumerate(rows):
        single = feature_extractor(row["audio"]["array"], sampling_rate=16000, return_tensors="pt")["input_values"]
        torch.testing.assert_close(batch["input_values"][i], single[0], atol=1e-5, rtol=1e-5)


def test_truncating_extractor_decodes_only_the_kept_samples(rows, feature_extractor):
    collator = AudioClassificationCollator(feature_extractor)
    assert collator.max_samples == 127 * 160 + 400  # 128 frames of 25 ms windows every 10 ms at 16 kHz
    assert AudioClassificationCollator(AudioMAEFeatureExtractor(max_length=128)).max_samples is None  # windows
    wave = AudioQualityPolicy().check(rows[0]["audio"], clip_id="robin", max_samples=collator.max_samples)
    assert len(wave) == collator.max_samples < len(rows[0]["audio"]["array"])
    batch = collator(rows)
    for i, row in enumerate(rows):
        kept = row["audio"]["array"][: collator.max_samples]
        single = feature_extractor(kept, sampling_rate=16000, return_tensors="pt")["input_values"]
        torch.testing.assert_close(batch["input_values"][i], single[0], atol=1e-5, rtol=1e-5)


def test_batch_feeds_the_model(rows, feature_extractor):
    config = CRAudioMAEConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_length=128,
        num_mel_bins=128, num_labels=556,
    )
    model = CRAudioMAEForAudioClassification(config).eval()
    batch = AudioClassificationCollator(feature_extractor, device="cpu")(rows[:2])
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape == (2, 556) and torch.isfinite(out.loss)


def test_long_clips_are_windowed_without_truncate(rows):
    fe = AudioMAEFeatureExtractor(max_length=128)  # 1.28 s windows; the real clips are longer
    batch = AudioClassificationCollator(fe, return_clip_ids=True)(rows)
    assert batch["input_values"].ndim == 4 and batch["window_mask"].shape[0] == 4
    assert batch["clip_ids"] == ["robin", "trumpet", "kick", "female"]


def test_single_label_rows_give_class_ids(real_clips, feature_extractor):
    rows = [{"audio": {"array": wave, "sampling_rate": 16000}, "label": i} for i, wave in enumerate(real_clips.values())]
    batch = AudioClassificationCollator(feature_extractor)(rows)
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [0, 1, 2]


def test_bad_clip_shrinks_the_batch_and_all_bad_raises(rows, feature_extractor):
    policy = AudioQualityPolicy()
    collator = AudioClassificationCollator(feature_extractor, quality=policy)
    silent = {"video_id": "silent", "audio": {"array": np.zeros(16000, np.float32), "sampling_rate": 16000}, "labels": rows[0]["labels"]}
    assert collator([rows[0], silent])["input_values"].shape[0] == 1
    with pytest.raises(BadAudioError, match=r"every clip of this batch was rejected \(\['silent'\]\)"):
        collator([silent])
    assert policy.counts()["silent"] == 2


def test_missing_audio_column_explains_remove_unused_columns(feature_extractor):
    with pytest.raises(KeyError, match="remove_unused_columns=False"):
        AudioClassificationCollator(feature_extractor)([{"input_ids": [1], "labels": [0.0]}])
    with pytest.raises(ValueError, match="sampling_rate=16000"):
        AudioClassificationCollator(feature_extractor, quality=AudioQualityPolicy(sampling_rate=8000))
