"""The embedded AudioSet-style set: real Debian recordings -> 10 s scenes -> AudioSet-schema parquet."""
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

import hf_audio_cr
from hf_audio_cr.demo.embedded import (
    SPLITS,
    SoundDirs,
    SourceGroup,
    assign_sources_to_splits,
    audioset_class_names,
    build_embedded_audioset,
    discover_sources,
)

TINY = {"train": 3, "validation": 2, "test": 2}


@pytest.fixture(scope="module")
def embedded_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("embedded")
    build_embedded_audioset(out, num_scenes=TINY, seed=3)
    return out


def test_parquet_has_audioset_schema_and_48khz_flac_scenes(embedded_dir):
    names = audioset_class_names()
    for split, count in TINY.items():
        table = pq.read_table(embedded_dir / f"{split}.parquet")
        assert table.column_names == ["video_id", "audio", "labels", "human_labels"]
        rows = table.to_pylist()
        assert len(rows) == count
        for row in rows:
            wave, sr = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
            info = sf.info(io.BytesIO(row["audio"]["bytes"]))
            assert (info.format, sr, wave.ndim, wave.shape[0]) == ("FLAC", 48000, 1, 480000)
            assert np.isfinite(wave).all() and 0.01 < np.abs(wave).max() <= 1.0
            assert 1 <= len(row["labels"]) and all(m in names for m in row["labels"])
            assert row["human_labels"] == [names[m] for m in row["labels"]]


def test_same_seed_gives_identical_files_and_other_seed_differs(embedded_dir, tmp_path):
    build_embedded_audioset(tmp_path / "again", num_scenes={"test": 2}, seed=3)
    build_embedded_audioset(tmp_path / "other", num_scenes={"test": 2}, seed=4)

    def audio_digest(path):
        return hashlib.sha1(b"".join(a["bytes"] for a in pq.read_table(path).column("audio").to_pylist())).hexdigest()

    assert audio_digest(tmp_path / "again" / "test.parquet") == audio_digest(embedded_dir / "test.parquet")
    assert audio_digest(tmp_path / "other" / "test.parquet") != audio_digest(embedded_dir / "test.parquet")


def test_no_recording_is_shared_across_splits(embedded_dir):
    meta = json.loads((embedded_dir / "metadata.json").read_text())["splits"]
    assigned = {split: set(meta[split]["source_recordings"]) for split in SPLITS}
    for a in SPLITS:
        assert set(meta[a]["used_recordings"]) <= assigned[a]
        for b in SPLITS:
            if a < b:
                assert not assigned[a] & assigned[b]
    # Content, not just names: the freedesktop theme ships duplicates under other names.
    digests = {split: {hashlib.sha1(Path(p).read_bytes()).hexdigest() for p in assigned[split]} for split in SPLITS}
    assert not digests["train"] & digests["test"] and not digests["validation"] & digests["test"]


def test_every_splittable_group_reaches_every_split():
    sources = discover_sources()
    splits = assign_sources_to_splits(sources, seed=0)
    assert sum(len(v) for v in splits.values()) == len(sources)
    groups = {s.group for s in sources}
    splittable = {g for g in groups if sum(s.group == g for s in sources) >= len(SPLITS)}
    assert {"kick", "snare", "hi-hat", "cymbal", "speech", "bell", "alarm"} <= splittable
    for split in SPLITS:
        assert {s.group for s in splits[split]} >= splittable
    # The single hand-clap recording cannot be split, so it stays in train.
    assert [s.group for s in splits["test"] + splits["validation"]].count("clap") == 0


def test_missing_debian_package_is_named_with_the_fix(tmp_path):
    group = SourceGroup("kick", "hydrogen-data", ((tmp_path / "absent", "*.wav", ("/m/0bm02",)),))
    with pytest.raises(FileNotFoundError, match=r"hydrogen-data.*no such folder: .*absent.*make install"):
        discover_sources((group,))
    with pytest.raises(FileNotFoundError, match=r"asterisk-core-sounds-en-wav.*sounds_root"):
        discover_sources(sound_dirs=SoundDirs.debian(tmp_path))


def test_source_folders_are_an_argument_not_fixed_at_import(tmp_path):
    """The same layout under another root (a `dpkg -x` folder): only its recordings are used."""
    debian, local = SoundDirs.debian(), SoundDirs.debian(tmp_path)
    for name in ("hydrogen", "asterisk", "alsa", "freedesktop"):
        getattr(local, name).mkdir(parents=True)
    kicks = sorted(debian.hydrogen.glob("Kick-*.wav"))[:3]
    for kick in kicks:
        (local.hydrogen / kick.name).write_bytes(kick.read_bytes())
    found = discover_sources(sound_dirs=local)
    assert [s.path for s in found] == [local.hydrogen / k.name for k in kicks] and {s.group for s in found} == {"kick"}
    build_embedded_audioset(tmp_path / "out", num_scenes={"train": 1}, sound_dirs=local)
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert all(p.startswith(str(tmp_path)) for p in meta["splits"]["train"]["used_recordings"])


def test_demo_builder_lives_under_demo_and_is_not_exported_at_top_level():
    import importlib.util

    assert not hasattr(hf_audio_cr, "build_embedded_audioset")
    assert importlib.util.find_spec("hf_audio_cr.data.embedded") is None


def test_bad_scene_counts_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown split"):
        build_embedded_audioset(tmp_path, num_scenes={"dev": 2})
    with pytest.raises(ValueError, match="positive integer"):
        build_embedded_audioset(tmp_path, num_scenes={"train": 0})
