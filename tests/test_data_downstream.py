"""Downstream loaders on small local copies, in the Hub schemas and the original layouts, of real audio."""
import shutil

import datasets
import numpy as np
import pytest
import soundfile as sf
from datasets import Audio, ClassLabel

from hf_audio_cr.data import (
    ESC50_CLASSES,
    SPEECH_COMMANDS_12_CLASSES,
    esc50_cross_validation,
    load_audiofolder,
    load_esc50,
    load_speech_commands,
    load_voxceleb1,
)

DRUMS = "/usr/share/hydrogen/data/drumkits/GMRockKit"
DIGITS = "/usr/share/asterisk/sounds/en/digits"  # one human speaker, 8 kHz
ALSA = "/usr/share/sounds/alsa"

# (file, ESC-50 target): real drum hits and recordings standing in for ten clips, two per fold.
ESC_CLIPS = [
    (f"{DRUMS}/Kick-Hard.wav", 30), (f"{DRUMS}/Snare-Hard.wav", 30), (f"{DRUMS}/HandClap.wav", 22),
    (f"{DRUMS}/Cowbell-Hard.wav", 46), (f"{DRUMS}/Crash-Hard.wav", 39), (f"{DRUMS}/HatClosed-Hard.wav", 38),
    (f"{DRUMS}/Bell-Hard.wav", 46), (f"{DRUMS}/24Ride-1.wav", 46), (f"{ALSA}/Noise.wav", 16), (f"{ALSA}/Side_Left.wav", 22),
]


def esc_table():
    return {
        "filename": [f"{i // 2 + 1}-{100 + i}-A-{target}.wav" for i, (_, target) in enumerate(ESC_CLIPS)],
        "fold": [i // 2 + 1 for i in range(len(ESC_CLIPS))],
        "target": [target for _, target in ESC_CLIPS],
        "category": [ESC50_CLASSES[target] for _, target in ESC_CLIPS],
    }


def check_esc50(dataset_dict):
    train = dataset_dict["train"]
    assert isinstance(train.features["label"], ClassLabel) and train.features["label"].names == list(ESC50_CLASSES)
    assert train.features["audio"].sampling_rate == 16000
    row = train[0]
    assert row["label"] == 30 and train.features["label"].int2str(row["label"]) == "door_wood_knock"
    assert row["audio"]["sampling_rate"] == 16000
    kick, rate = sf.read(ESC_CLIPS[0][0], dtype="float32")
    assert len(row["audio"]["array"]) == pytest.approx(len(kick) * 16000 / rate, abs=2)
    splits = esc50_cross_validation(dataset_dict)
    assert [fold for fold, _ in splits] == [1, 2, 3, 4, 5]
    for fold, split in splits:
        assert set(split["test"]["fold"]) == {fold} and fold not in set(split["train"]["fold"])
        assert len(split["train"]) + len(split["test"]) == len(ESC_CLIPS)


def test_esc50_hub_schema_parquet(tmp_path):
    table = esc_table()
    table.update(esc10=[False] * len(ESC_CLIPS), src_file=list(range(len(ESC_CLIPS))), take=["A"] * len(ESC_CLIPS))
    table["audio"] = [file for file, _ in ESC_CLIPS]
    features = datasets.Features(
        filename=datasets.Value("string"), fold=datasets.Value("int64"), target=datasets.Value("int64"),
        category=datasets.Value("string"), esc10=datasets.Value("bool"), src_file=datasets.Value("int64"),
        take=datasets.Value("string"), audio=Audio(),
    )
    (tmp_path / "data").mkdir()
    datasets.Dataset.from_dict(table, features=features).to_parquet(tmp_path / "data" / "train-00000-of-00001.parquet")
    check_esc50(load_esc50(tmp_path))


def test_esc50_original_layout_and_class_check(tmp_path):
    table = esc_table()
    (tmp_path / "meta").mkdir()
    (tmp_path / "audio").mkdir()
    for (file, _), name in zip(ESC_CLIPS, table["filename"]):
        shutil.copy(file, tmp_path / "audio" / name)
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    lines += [f"{n},{f},{t},{c},False,{i},A" for i, (n, f, t, c) in enumerate(zip(*table.values()))]
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    check_esc50(load_esc50(tmp_path))
    # A category that does not belong to its target is refused.
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join([lines[0], lines[1].replace("door_wood_knock", "dog")]) + "\n")
    with pytest.raises(ValueError, match="do not match ESC-50's class list"):
        load_esc50(tmp_path)


@pytest.fixture(scope="module")
def speech_commands_archive(tmp_path_factory):
    """Archive layout: word folders of real spoken digits, split lists and background noise."""
    root = tmp_path_factory.mktemp("speech_commands")
    words = {"yes": "1", "no": "2", "zero": "0", "bird": "3", "learn": "4"}  # learn: a v2-only word
    listing = {"validation": [], "testing": []}
    for word, digit in words.items():
        (root / word).mkdir()
        for speaker in ("0a7c2a8d", "0b09edd3", "0c2ca723"):
            name = f"{speaker}_nohash_0.wav"
            shutil.copy(f"{DIGITS}/{digit}.wav", root / word / name)
        listing["validation"].append(f"{word}/0b09edd3_nohash_0.wav")
        listing["testing"].append(f"{word}/0c2ca723_nohash_0.wav")
    for kind, names in listing.items():
        (root / f"{kind}_list.txt").write_text("\n".join(names) + "\n")
    noise = root / "_background_noise_"
    noise.mkdir()
    long_noise, rate = sf.read(f"{ALSA}/Noise.wav", dtype="float32")
    sf.write(noise / "alsa_noise.wav", np.tile(long_noise, 8), rate)  # ~11 s -> 11 one-second clips
    return root


def test_speech_commands_v1_12_classes_from_archive(speech_commands_archive):
    dd = load_speech_commands(speech_commands_archive, version=1)
    assert sorted(dd) == ["test", "train", "validation"]
    names = dd["train"].features["label"].names
    assert tuple(names) == SPEECH_COMMANDS_12_CLASSES
    train_labels = [names[i] for i in dd["train"]["label"]]
    # learn is not a v1 word but is a word: it counts as _unknown_, like zero and bird.
    assert train_labels.count("yes") == 1 and train_labels.count("_unknown_") == 3
    # 11 one-second noise clips: positions 0-8 -> train, 9 -> validation, 10 -> test.
    assert train_labels.count("_silence_") == 9 and [names[i] for i in dd["test"]["label"]].count("_silence_") == 1
    assert set(dd["test"]["file"]) >= {"yes/0c2ca723_nohash_0.wav", "_background_noise_/alsa_noise.wav#10"}
    row = dd["validation"][0]
    assert row["audio"]["sampling_rate"] == 16000 and 0.4 < len(row["audio"]["array"]) / 16000 < 1.5
    silence = next(r for r in dd["train"] if names[r["label"]] == "_silence_")
    assert len(silence["audio"]["array"]) == 16000


def test_speech_commands_v2_35_classes_from_archive(speech_commands_archive):
    dd = load_speech_commands(speech_commands_archive, version=2)
    names = dd["train"].features["label"].names
    assert len(names) == 35 and "_silence_" not in names and "learn" in names
    assert sorted(names[i] for i in dd["train"]["label"]) == ["bird", "learn", "no", "yes", "zero"]


def test_speech_commands_parquet_mirror(tmp_path):
    names = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "zero", "one", "two", "three",
             "four", "five", "six", "seven", "eight", "nine", "bed", "bird", "cat", "dog", "happy", "house", "marvin",
             "sheila", "tree", "wow", "_silence_"]  # google/speech_commands v0.01 label names
    features = datasets.Features(
        file=datasets.Value("string"), audio=Audio(sampling_rate=16000), label=ClassLabel(names=names),
        is_unknown=datasets.Value("bool"), speaker_id=datasets.Value("string"), utterance_id=datasets.Value("int8"),
    )
    (tmp_path / "v0.01").mkdir()
    for split, digits in (("train", ["1", "2", "3"]), ("validation", ["1"]), ("test", ["2", "0"])):
        rows = {
            "file": [f"w/{d}.wav" for d in digits], "audio": [f"{DIGITS}/{d}.wav" for d in digits],
            "label": [names.index(w) for w in (["yes", "no", "bird"], ["yes"], ["no", "_silence_"])[("train", "validation", "test").index(split)]],
            "is_unknown": [False] * len(digits), "speaker_id": ["a"] * len(digits), "utterance_id": [0] * len(digits),
        }
        datasets.Dataset.from_dict(rows, features=features).to_parquet(tmp_path / "v0.01" / f"{split}-00000-of-00001.parquet")
    dd = load_speech_commands(tmp_path / "v0.01", version=1)
    target = dd["train"].features["label"].names
    assert [target[i] for i in dd["train"]["label"]] == ["yes", "no", "_unknown_"]
    assert [target[i] for i in dd["test"]["label"]] == ["no", "_silence_"]
    assert dd["test"][0]["audio"]["sampling_rate"] == 16000


def test_voxceleb1_identification(tmp_path):
    clips = {"id10001": [f"{DIGITS}/1.wav", f"{DIGITS}/2.wav", f"{DIGITS}/3.wav"],
             "id10002": [f"{ALSA}/Front_Left.wav", f"{ALSA}/Front_Right.wav", f"{ALSA}/Rear_Left.wav"]}
    lines = []
    for speaker, files in clips.items():
        for i, file in enumerate(files):
            relative = f"{speaker}/vid{i}/0000{i + 1}.wav"
            (tmp_path / "wav" / relative).parent.mkdir(parents=True)
            shutil.copy(file, tmp_path / "wav" / relative)
            lines.append(f"{i + 1} {relative}")
    (tmp_path / "iden_split.txt").write_text("\n".join(lines) + "\n")
    dd = load_voxceleb1(tmp_path)
    assert dd["train"].features["label"].names == ["id10001", "id10002"]
    assert dd["test"]["speaker_id"] == ["id10001", "id10002"] and dd["test"]["label"] == [0, 1]
    assert dd["validation"][1]["audio"]["sampling_rate"] == 16000
    with pytest.raises(FileNotFoundError, match="iden_split.txt"):
        load_voxceleb1(tmp_path / "wav")


def test_audiofolder(tmp_path):
    for label, files in {"kick": ["Kick-Hard.wav", "Kick-Soft.wav"], "snare": ["Snare-Hard.wav", "Snare-Soft.wav"]}.items():
        (tmp_path / "train" / label).mkdir(parents=True)
        for file in files:
            shutil.copy(f"{DRUMS}/{file}", tmp_path / "train" / label / file)
    dd = load_audiofolder(tmp_path)
    assert dd["train"].features["label"].names == ["kick", "snare"]
    assert dd["train"][0]["audio"]["sampling_rate"] == 16000
    with pytest.raises(FileNotFoundError):
        load_audiofolder(tmp_path / "nope")
