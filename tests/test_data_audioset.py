"""AudioSet label sets and the loader, on local parquet / CSV layouts made from real recordings."""
import csv
import logging

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from datasets.distributed import split_dataset_by_node

from hf_audio_cr.data import AudioSetTargets, audioset_id2label, audioset_label_set, load_audioset
from hf_audio_cr.data.audioset import RESOURCES, write_audioset_parquet

ALSA = "/usr/share/sounds/alsa"
DRUMS = "/usr/share/hydrogen/data/drumkits/GMRockKit"
SPEECH, MALE_SPEECH, BIRD, BICYCLE, DRUM, WIND_NOISE = (
    "/m/09x0r", "/m/05zppz", "/m/015p6", "/m/0199g", "/m/026t6", "/t/dd00092",
)


def read(path):
    wave, rate = sf.read(path, dtype="float32")
    return wave, rate


@pytest.fixture(scope="module")
def clips(audio_dir):
    """Real recordings at their native rates (48 kHz speech, 44.1 kHz drums, 22.05 kHz birdsong)."""
    return [
        {"video_id": "alsa_front_center", "audio": read(f"{ALSA}/Front_Center.wav"), "labels": [SPEECH, MALE_SPEECH]},
        {"video_id": "robin", "audio": read(audio_dir / "robin.ogg"), "labels": [BIRD]},
        {"video_id": "snare", "audio": read(f"{DRUMS}/Snare-Hard.wav"), "labels": [DRUM]},
        {"video_id": "alsa_noise", "audio": read(f"{ALSA}/Noise.wav"), "labels": [WIND_NOISE]},
        {"video_id": "female", "audio": read(audio_dir / "speech_female.ogg"), "labels": [SPEECH]},
        {"video_id": "alsa_rear_left", "audio": read(f"{ALSA}/Rear_Left.wav"), "labels": [SPEECH, BICYCLE]},
    ]


@pytest.fixture(scope="module")
def parquet_file(clips, tmp_path_factory):
    return write_audioset_parquet(clips, tmp_path_factory.mktemp("audioset") / "bal_train.parquet", row_group_size=2)


# ----- label sets --------------------------------------------------------------------------------------------
def test_label_set_sizes_and_standard_order():
    with open(RESOURCES / "class_labels_indices.csv", newline="") as f:
        standard = [row["mid"] for row in csv.DictReader(f)]
    sets = {name: audioset_label_set(name) for name in ("527", "556", "557")}
    assert {name: len(mids) for name, mids in sets.items()} == {"527": 527, "556": 556, "557": 557}
    for mids in sets.values():
        assert mids[:527] == standard and len(set(mids)) == len(mids)
    # The paper's 556 is the ontology's 30 added ancestors minus "Microphone", same order otherwise.
    assert "/m/0hg7b" in sets["557"] and "/m/0hg7b" not in sets["556"]
    assert [m for m in sets["557"] if m != "/m/0hg7b"] == sets["556"]
    names = audioset_id2label("556")
    assert names[0] == "Speech" and names[527] == "Human sounds" and "Sounds of things" in names.values()


def test_targets_switch_on_added_ancestors_only():
    names = audioset_id2label("557")

    def on(label_set, mids):
        target, unknown = AudioSetTargets(label_set).encode(mids)
        assert target.dtype == np.float32 and set(np.unique(target)) <= {0.0, 1.0}
        return {names[i] for i in np.flatnonzero(target)}, unknown

    # Male speech -> Speech -> Human voice -> Human sounds: Speech is a standard class and stays off.
    assert on("556", [MALE_SPEECH]) == ({"Male speech, man speaking", "Human voice", "Human sounds"}, [])
    # Bicycle -> Non-motorized land vehicle -> Vehicle (standard) -> Sounds of things.
    assert on("556", [BICYCLE])[0] == {"Bicycle", "Non-motorized land vehicle", "Sounds of things"}
    # Bird's ancestors (Wild animals, Animal) are all standard classes: nothing is added.
    assert on("556", [BIRD])[0] == {"Bird"}
    # Wind noise (microphone) has two parents: Wind (Natural sounds) and Microphone (Sound equipment).
    wind_556 = {"Wind noise (microphone)", "Natural sounds", "Sounds of things", "Miscellaneous sources", "Sound equipment"}
    assert on("556", [WIND_NOISE])[0] == wind_556
    assert on("557", [WIND_NOISE])[0] == wind_556 | {"Microphone"}
    # 527: the original labels only; unknown MIDs are reported, not silently dropped.
    assert on("527", [MALE_SPEECH, "/m/not_a_class"]) == ({"Male speech, man speaking"}, ["/m/not_a_class"])
    assert on("556", [SPEECH, MALE_SPEECH])[0] == {"Speech", "Male speech, man speaking", "Human voice", "Human sounds"}


def test_unknown_label_set_name_is_a_clear_error():
    with pytest.raises(ValueError, match="'527', '556'"):
        audioset_label_set("600")


# ----- loader ------------------------------------------------------------------------------------------------
def test_streaming_local_parquet_rows(parquet_file, clips):
    rows = list(load_audioset(data_files=str(parquet_file), split="train", label_set="556"))
    assert [row["video_id"] for row in rows] == [clip["video_id"] for clip in clips]
    first = rows[0]
    assert len(first["labels"]) == 556 and first["label_mids"] == [SPEECH, MALE_SPEECH]
    assert np.flatnonzero(first["labels"]).tolist() == [0, 1, 527, 528]
    # 48 kHz FLAC decoded and resampled to 16 kHz by datasets / torchcodec, matching torchaudio's resampler.
    audio = first["audio"]
    assert audio["sampling_rate"] == 16000
    wave, rate = clips[0]["audio"]
    reference = torchaudio.functional.resample(torch.from_numpy(wave), rate, 16000).numpy()
    decoded = audio["array"]
    assert abs(len(decoded) - len(reference)) <= 2
    n = min(len(decoded), len(reference))
    assert np.corrcoef(decoded[:n], reference[:n])[0, 1] > 0.99
    # Evaluation columns hold exactly the original labels.
    for row, clip in zip(rows, clips):
        standard = [audioset_label_set("527")[i] for i in np.flatnonzero(row["labels"][:527])]
        assert sorted(standard) == sorted(m for m in clip["labels"])


def test_map_style_matches_streaming(parquet_file):
    streamed = list(load_audioset(data_files=str(parquet_file), label_set="557"))
    mapped = load_audioset(data_files=str(parquet_file), label_set="557", streaming=False)
    assert len(mapped) == len(streamed)
    row = mapped[3]
    assert row["video_id"] == streamed[3]["video_id"] and row["labels"] == streamed[3]["labels"]
    assert len(row["labels"]) == 557 and row["audio"]["sampling_rate"] == 16000


def test_split_by_node_and_shuffle_cover_every_clip_once(parquet_file, clips):
    ids = {clip["video_id"] for clip in clips}
    parts = [
        [row["video_id"] for row in load_audioset(data_files=str(parquet_file), reshard=True, rank=rank, world_size=2)]
        for rank in (0, 1)
    ]
    assert not set(parts[0]) & set(parts[1]) and set(parts[0]) | set(parts[1]) == ids
    shuffled = [row["video_id"] for row in load_audioset(data_files=str(parquet_file), shuffle_buffer_size=4, seed=1)]
    assert sorted(shuffled) == sorted(ids)
    # datasets' own helper works on the loader's output as well (each node keeps every 2nd row).
    assert len(list(split_dataset_by_node(load_audioset(data_files=str(parquet_file)), rank=0, world_size=2))) == 3


def test_original_csv_layout_with_missing_clip(tmp_path, clips, caplog):
    audio_dir = tmp_path / "clips"
    audio_dir.mkdir()
    (wave_a, rate_a), (wave_b, rate_b) = clips[0]["audio"], clips[1]["audio"]
    sf.write(audio_dir / "Yabc123def45.flac", wave_a, rate_a, subtype="PCM_24")
    sf.write(audio_dir / "zyx987wvu65_30.000.flac", wave_b, rate_b, subtype="PCM_24")
    csv_path = tmp_path / "balanced_train_segments.csv"
    csv_path.write_text(
        "# Segments csv created Sun Mar  5 10:54:31 2017\n"
        "# num_ytids=3, num_segs=3, num_unique_labels=3, num_positive_labels=4\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
        f'abc123def45, 0.000, 10.000, "{SPEECH},{MALE_SPEECH}"\n'
        f'zyx987wvu65, 30.000, 40.000, "{BIRD}"\n'
        f'gone0000000, 10.000, 20.000, "{DRUM}"\n'
    )
    with caplog.at_level(logging.WARNING, logger="hf_audio_cr.data.audioset"):
        rows = list(load_audioset(str(csv_path), audio_dir=audio_dir))
    assert "1 of 3 clips have no file" in caplog.text
    assert [row["video_id"] for row in rows] == ["abc123def45", "zyx987wvu65"]
    assert rows[1]["label_mids"] == [BIRD] and rows[1]["audio"]["sampling_rate"] == 16000
    assert len(rows[1]["audio"]["array"]) == pytest.approx(len(wave_b) * 16000 / rate_b, abs=2)


def test_wrong_schema_names_the_missing_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "not_audioset.parquet"
    pq.write_table(pa.table({"id": ["a"], "sound": [b"x"]}), path)
    with pytest.raises(ValueError, match=r"columns \['video_id', 'audio', 'labels'\] are missing"):
        load_audioset(data_files=str(path))
