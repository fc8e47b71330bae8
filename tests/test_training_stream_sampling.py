"""AudioMAE's weighted sampler on a stream: class counts from the parquet labels column alone, then weighted draws
from the streamed clips, checked against the map-style sampler's target on a local parquet set of real audio in
several shards with a known imbalance; and `streaming: true` + weighted sampling through the CR training script."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hf_audio_cr.data import load_audioset, load_audioset_labels, write_audioset_parquet
from hf_audio_cr.training import AudiosetWeightedStream, audioset_sample_weights, stream_class_weights

ROOT = Path(__file__).resolve().parents[1]
SPEECH, TRUMPET, BIRD = "/m/09x0r", "/m/07gql", "/m/015p6"
# 165 clips: Speech 125 (76 %), Trumpet 30 (18 %), Bird 15 (9 %), five clips with Speech and Bird
CLIP_LABELS = [[SPEECH]] * 120 + [[TRUMPET]] * 30 + [[BIRD]] * 10 + [[SPEECH, BIRD]] * 5
EPOCH_LENGTH = 3000


def write_shards(folder: Path) -> list:
    """Four parquet shards in AudioSet's schema; every clip a real recording (0.2 s of a fixture, 16 kHz FLAC)."""
    recordings = [sf.read(ROOT / "tests" / "fixtures" / "audio" / name) for name in ("robin.ogg", "trumpet.ogg")]
    files = []
    for shard in range(4):
        clips = []
        for i in range(shard, len(CLIP_LABELS), 4):
            wave, rate = recordings[i % 2]
            clips.append({"video_id": f"clip{i}", "audio": (wave[: rate // 5], rate), "labels": CLIP_LABELS[i]})
        files.append(str(write_audioset_parquet(clips, folder / f"train-{shard}.parquet", 16000, "PCM_16")))
    return files


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("stream_sampling"))


def target_class_shares(files, with_ancestors):
    """The map-style sampler's target: share of its draws that carry each class, sum_{i has c} w_i / sum_i w_i."""
    mapped = load_audioset(data_files=files, streaming=False)
    weights = audioset_sample_weights(mapped, with_ancestors=with_ancestors)
    mids = mapped.with_format(None)["labels"]
    return {c: weights[[c in m for m in mids]].sum() / weights.sum() for c in (SPEECH, TRUMPET, BIRD)}, mids


@pytest.mark.parametrize("with_ancestors", [False, True])
def test_stream_draws_match_the_map_style_sampler_target(shards, with_ancestors):
    weights = stream_class_weights(load_audioset_labels(data_files=shards).iter(batch_size=50),
                                   with_ancestors=with_ancestors)
    assert weights.num_clips == len(CLIP_LABELS)
    stream = AudiosetWeightedStream(load_audioset(data_files=shards, streaming=True, shuffle_buffer_size=32, seed=0),
                                    weights, epoch_length=EPOCH_LENGTH, seed=0, buffer_size=200)
    drawn = [row["label_mids"] for row in stream]
    n = len(drawn)
    # Poisson copies: the epoch's length is Poisson(EPOCH_LENGTH); 4 standard deviations
    assert abs(n - EPOCH_LENGTH) < 4 * np.sqrt(EPOCH_LENGTH)
    target, mids = target_class_shares(shards, with_ancestors)
    for mid, share in target.items():
        drawn_share = np.mean([mid in m for m in drawn])
        # Given the epoch's length n the clip counts are multinomial(n, w / W), so a class's drawn share is a
        # binomial proportion around the target: tolerance 4 standard errors sqrt(p (1 - p) / n)
        tolerance = 4 * np.sqrt(share * (1 - share) / n)
        assert abs(drawn_share - share) < tolerance, (mid, drawn_share, share, tolerance)
        # and the unweighted stream would be far off: the test sees the weighting
        assert abs(np.mean([mid in m for m in mids]) - share) > 3 * tolerance, mid


def test_stream_epochs_are_reproducible_differ_and_without_replacement_are_distinct(shards):
    weights = stream_class_weights(load_audioset_labels(data_files=shards).iter(batch_size=50))
    labels = load_audioset_labels(data_files=shards)  # the labels stream itself: no audio column needed
    stream = AudiosetWeightedStream(labels, weights, epoch_length=60, seed=3, label_column="labels")
    first = [tuple(row["labels"]) for row in stream]
    assert first == [tuple(row["labels"]) for row in stream]  # same (seed, epoch): same draws on every process
    stream.set_epoch(1)
    assert first != [tuple(row["labels"]) for row in stream]
    distinct = AudiosetWeightedStream(load_audioset(data_files=shards, streaming=True), weights, epoch_length=60,
                                      seed=3, replacement=False)
    ids = [row["video_id"] for row in distinct]
    assert len(ids) == len(set(ids)) and 0 < len(ids) <= len(CLIP_LABELS)
    rare = np.mean([CLIP_LABELS[int(i[4:])] != [SPEECH] for i in ids])
    assert rare > 0.5  # the 27 % of clips without Speech fill most of the distinct draws


@pytest.mark.slow  # the training script in a subprocess
def test_training_script_streams_with_weighted_sampling(shards, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "scripts/train_cr_audiomae.py", "configs/cr_audiomae/tiny_smoke.yaml", "--streaming", "true",
         "--weighted_sampling", "true", "--weighted_sampling_ancestors", "true", "--epoch_length", "8",
         "--train_files", *shards, "--eval_files", shards[0], "--max_steps", "3", "--save_strategy", "no",
         "--output_dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (result.stdout + result.stderr).count("'bce_loss'") == 3  # three CR steps on the weighted stream
    metrics = json.loads((out / "eval_results.json").read_text())
    assert metrics["eval_num_scored_classes"] == 3 and metrics["train_bad_audio/clips_skipped"] == 0
