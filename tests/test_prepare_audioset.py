"""scripts/prepare_audioset.py: AudioSet-schema parquet (48 kHz FLAC) -> 16 kHz mono FLAC parquet, bad clips left
out and counted, resumable, read back by load_audioset without resampling. (Throughput: scripts/bench_data.py.)"""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import soundfile as sf

from hf_audio_cr.data import load_audioset
from hf_audio_cr.data.audioset import write_audioset_parquet

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    return subprocess.run([sys.executable, "scripts/prepare_audioset.py", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})


@pytest.mark.slow  # scripts/prepare_audioset.py in a subprocess
def test_prepared_parquet_holds_16k_mono_flac_and_counts_bad_clips(tmp_path, audio_dir):
    clips = [
        {"video_id": "robin", "audio": sf.read(audio_dir / "robin.ogg"), "labels": ["/m/015p6"]},
        {"video_id": "speech", "audio": sf.read(audio_dir / "speech_female.ogg"), "labels": ["/m/02zsn"]},
        {"video_id": "broken", "audio": b"not a flac file", "labels": ["/m/09x0r"]},
    ]
    write_audioset_parquet(clips, tmp_path / "in" / "bal_train00.parquet")
    out = tmp_path / "out"
    result = run("--data_files", str(tmp_path / "in" / "*.parquet"), "--output_dir", str(out), "--num_proc", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "prepare_report.json").read_text())
    assert report["total"] == {"clips": 3, "kept": 2, "skipped": {"unreadable": 1}}
    table = pq.read_table(out / "bal_train00.parquet").to_pylist()
    assert [row["video_id"] for row in table] == ["robin", "speech"]
    for row in table:
        info = sf.info(io.BytesIO(row["audio"]["bytes"]))
        assert (info.format, info.samplerate, info.channels, info.subtype) == ("FLAC", 16000, 1, "PCM_16")
    rows = list(load_audioset(data_files=str(out / "bal_train00.parquet")))
    assert [r["audio"]["sampling_rate"] for r in rows] == [16000, 16000] and rows[1]["label_mids"] == ["/m/02zsn"]
    # resume: the finished file is not prepared again
    again = run("--data_files", str(tmp_path / "in" / "*.parquet"), "--output_dir", str(out))
    assert again.returncode == 0 and "exists, skipped (resume)" in again.stdout


@pytest.mark.slow  # scripts/prepare_audioset.py in a subprocess
def test_missing_input_is_a_clear_error(tmp_path):
    result = run("--data_files", str(tmp_path / "none.parquet"), "--output_dir", str(tmp_path / "out"))
    assert result.returncode != 0 and "no such parquet file" in result.stderr


@pytest.mark.slow  # scripts/prepare_audioset.py in subprocesses
def test_stored_fp16_fbanks_are_read_instead_of_the_audio(tmp_path, audio_dir):
    import numpy as np
    import torch

    from hf_audio_cr import AudioMAEFeatureExtractor
    from hf_audio_cr.data import AudioClassificationCollator
    from hf_audio_cr.data.quality import AudioQualityPolicy

    clips = [{"video_id": name, "audio": sf.read(audio_dir / f"{name}.ogg"), "labels": ["/m/09x0r"]}
             for name in ("robin", "speech_female", "trumpet")]
    write_audioset_parquet(clips, tmp_path / "in" / "bal_train00.parquet")
    for store in ("none", "fp16"):
        result = run("--data_files", str(tmp_path / "in" / "*.parquet"), "--output_dir", str(tmp_path / store),
                     "--store_fbank", store)
        assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "fp16" / "prepare_report.json").read_text())["stored_fbank"]["dtype"] == "float16"
    fe = AudioMAEFeatureExtractor(max_length=1024)
    batches = {}
    for store in ("none", "fp16"):
        policy = AudioQualityPolicy(mode="eval")
        rows = list(load_audioset(data_files=str(tmp_path / store / "bal_train00.parquet")))
        assert ("fbank_fp16" in rows[0]) == (store == "fp16")
        batches[store] = AudioClassificationCollator(fe, quality=policy, long_audio="truncate")(rows)
        # the stored path decodes nothing: the quality policy never sees a clip
        assert policy.counts()["clips_seen"] == (3 if store == "none" else 0)
    exact, stored = batches["none"]["input_values"], batches["fp16"]["input_values"]
    assert stored.shape == exact.shape == (3, 1024, 128) and torch.equal(batches["none"]["labels"], batches["fp16"]["labels"])
    # float16 rounding of log energies (|x| < 20: steps <= 2**-6), after the /(2 std) normalisation
    assert 0 < (stored - exact).abs().max() <= 2**-6 / (2 * fe.std)
    # what is stored: the extractor's log-Mel frames of the prepared 16 kHz clip, rounded to float16
    wave, rate = sf.read(io.BytesIO(pq.read_table(tmp_path / "none" / "bal_train00.parquet").to_pylist()[0]["audio"]["bytes"]),
                         dtype="float32")
    frames = np.frombuffer(rows[0]["fbank_fp16"], dtype=np.float16).reshape(-1, 128)
    assert rate == 16000 and np.array_equal(frames, fe.log_mel(wave).to(torch.float16).numpy())
