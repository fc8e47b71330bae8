"""FSDD shipped inside the package: schema, the official split + validation, leave-one-speaker-out, and the
stored audio sample-for-sample equal to the original recordings (three copied into tests/fixtures/fsdd)."""
import configparser
import fnmatch
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from datasets import ClassLabel

from hf_audio_cr.data import FSDD_SPEAKERS, fsdd_leave_one_speaker_out, load_fsdd, write_fsdd_parquet
from hf_audio_cr.data.downstream import FSDD_PARQUET

FIXTURES = Path(__file__).parent / "fixtures" / "fsdd"
REPO = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def digits():
    return load_fsdd()


def test_shipped_fsdd_official_split_and_validation(digits):
    assert {name: len(split) for name, split in digits.items()} == {"train": 2400, "validation": 300, "test": 300}
    for name, indices in (("test", range(0, 5)), ("validation", range(5, 10)), ("train", range(10, 50))):
        split = digits[name]
        assert set(split["index"]) == set(indices)
        # every speaker says every digit in every split, the same number of times
        pairs = np.asarray(split["speaker"]) * 10 + np.asarray(split["digit"])
        assert np.bincount(pairs, minlength=60).tolist() == [len(indices)] * 60
        assert split["label"] == split["digit"]
    label = digits["train"].features["label"]
    assert isinstance(label, ClassLabel) and label.names == [str(d) for d in range(10)]
    assert digits["train"].features["audio"].sampling_rate == 16000
    assert set(load_fsdd(validation_indices=None)["train"]["index"]) == set(range(5, 50))


def test_shipped_fsdd_audio_is_the_original_recordings(digits):
    test = digits["test"]
    row = test[test["file"].index("3_theo_2.wav")]
    assert test.features["speaker"].int2str(row["speaker"]) == "theo" and row["digit"] == 3 and row["index"] == 2
    original, rate = sf.read(FIXTURES / "3_theo_2.wav", dtype="int16")
    assert rate == 8000
    # decoded at 16 kHz like every downstream loader: twice the samples of the 8 kHz original
    assert row["audio"]["sampling_rate"] == 16000 and len(row["audio"]["array"]) == 2 * len(original)
    # the stored FLAC is lossless: the same 16-bit samples
    stored = load_fsdd(sampling_rate=8000)
    for file in ("3_theo_2.wav", "7_nicolas_30.wav", "0_yweweler_49.wav"):
        split = "test" if file == "3_theo_2.wav" else "train"
        clip = stored[split][stored[split]["file"].index(file)]["audio"]
        original, _ = sf.read(FIXTURES / file, dtype="float32")
        np.testing.assert_array_equal(np.asarray(clip["array"], dtype=np.float32), original)


@pytest.mark.slow  # trains one model per held-out speaker
def test_speaker_task_and_leave_one_speaker_out(digits):
    speakers = load_fsdd(task="speaker")
    assert speakers["train"].features["label"].names == list(FSDD_SPEAKERS)
    assert speakers["test"]["label"] == speakers["test"]["speaker"]
    folds = fsdd_leave_one_speaker_out(digits)
    assert [speaker for speaker, _ in folds] == list(FSDD_SPEAKERS)
    for number, (speaker, fold) in enumerate(folds):
        assert set(fold["test"]["speaker"]) == {number} and number not in set(fold["train"]["speaker"])
        assert (len(fold["train"]), len(fold["test"])) == (2500, 500)  # all 50 repetitions of the other five


def test_write_fsdd_parquet_round_trip_and_bad_names(tmp_path):
    recordings = tmp_path / "fsdd" / "recordings"
    recordings.mkdir(parents=True)
    for file in FIXTURES.glob("*.wav"):
        shutil.copy(file, recordings)
    parquet = write_fsdd_parquet(tmp_path / "fsdd", tmp_path / "fsdd.parquet")
    from_folder, from_parquet = load_fsdd(tmp_path / "fsdd", task="speaker"), load_fsdd(parquet, task="speaker")
    assert sorted(from_folder) == sorted(from_parquet) == ["test", "train"]  # no repetition 5-9 among the three
    for split in from_folder:
        a, b = from_folder[split], from_parquet[split]
        assert a["file"] == b["file"] and a["label"] == b["label"]
        np.testing.assert_allclose(a[0]["audio"]["array"], b[0]["audio"]["array"], atol=1e-6)
    shutil.copy(FIXTURES / "3_theo_2.wav", recordings / "3_alice_2.wav")
    with pytest.raises(ValueError, match="3_alice_2.wav"):
        load_fsdd(tmp_path / "fsdd")
    with pytest.raises(ValueError, match="task='words'"):
        load_fsdd(task="words")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_fsdd(tmp_path / "nowhere")


def test_fsdd_is_package_data():
    """An installed wheel carries the parquet: setup.cfg's package_data globs match it."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    globs = config["options.package_data"]["hf_audio_cr"].split()
    relative = FSDD_PARQUET.relative_to(REPO / "hf_audio_cr").as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in globs)
    assert "CC BY-SA 4.0" in (FSDD_PARQUET.parent / "LICENSES.md").read_text().split("# Free Spoken Digit Dataset")[1]
