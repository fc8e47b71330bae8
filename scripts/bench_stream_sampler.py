#!/usr/bin/env python
"""Memory of AudioMAE's weighted sampler on a stream as the set grows: peak RSS against the number of rows.

For each size a fresh process reads a local AudioSet-schema parquet set (files of ``--rows_per_shard`` rows of
real audio, as the Hub's AS-2M is many files of similar size: the same 0.2 s fixture recording as FLAC bytes in every row, labels drawn with a Zipf-like imbalance
over 50 AudioSet classes), then runs the streaming path of scripts/train_cr_audiomae.py: one pass over the labels
column (``load_audioset_labels`` + ``stream_class_weights``), then one epoch of ``AudiosetWeightedStream`` over
``load_audioset(streaming=True, shuffle_buffer_size=...)`` with ``epoch_length`` = the number of rows. Reported:
resident set after imports, peak RSS (``ru_maxrss``) and their difference, rows/s, draws. The map-style sampler
(``audioset_sample_weights`` + ``AudiosetWeightedSampler`` on ``load_audioset(streaming=False)``) is measured next
to it for reference (``--map_style``), and so is the plain stream without any sampler (``plain``: what streaming
the set through ``load_audioset`` costs by itself), so the sampler's own share shows. Prints a table and writes JSON.

    python scripts/bench_stream_sampler.py --sizes 2000 8000 32000 --output_json runs/bench_stream_sampler.json

``--class_shares`` instead measures what tests/test_training_stream_sampling.py checks: on 165 real clips in 4
shards (Speech 76 %, Trumpet 18 %, Bird 9 %), each class's share of the stream sampler's draws against the
map-style sampler's target ``sum_{i has c} w_i / sum_i w_i``, in standard errors ``sqrt(p (1 - p) / n)``.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hf_audio_cr.cli import parse_script_args

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class StreamSamplerArguments:
    sizes: list[int] = field(default_factory=lambda: [2000, 8000, 32000], metadata={"help": "Numbers of rows to measure."})
    rows_per_shard: int = field(default=1000, metadata={"help": "Rows per parquet file (more files as it grows)."})
    buffer_size: int = field(default=1000, metadata={"help": "Shuffle buffers (stream and sampler copies)."})
    map_style: bool = field(default=False, metadata={"help": "Also measure the map-style sampler per size."})
    output_json: str = field(default="runs/bench_stream_sampler.json", metadata={"help": "Where the JSON goes."})
    class_shares: bool = field(default=False, metadata={"help": "Measure drawn class shares vs the target instead."})
    epoch_length: int = field(default=3000, metadata={"help": "--class_shares: draws per epoch."})
    seed: int = field(default=0, metadata={"help": "--class_shares: sampler and shuffle seed."})
    # internal: `--child MODE FILE...`, one measurement per process (the benchmark spawns itself with it)
    child: list[str] | None = field(default=None, metadata={"help": argparse.SUPPRESS})


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def write_set(folder: Path, rows: int, shards: int) -> list:
    import numpy as np
    import soundfile as sf

    from hf_audio_cr.data.audioset import audioset_label_set, encode_flac, write_audioset_parquet

    wave, rate = sf.read(ROOT / "tests" / "fixtures" / "audio" / "robin.ogg")
    flac = encode_flac((wave[: rate // 5], rate), 16000, "PCM_16")
    classes = audioset_label_set("527")[:50]
    rng = np.random.default_rng(0)
    shares = 1.0 / np.arange(1, len(classes) + 1) ** 1.2
    picks = rng.choice(len(classes), size=rows, p=shares / shares.sum())
    files = []
    for shard in range(shards):
        clips = ({"video_id": f"r{i}", "audio": flac, "labels": [classes[picks[i]]]} for i in range(shard, rows, shards))
        files.append(str(write_audioset_parquet(clips, folder / f"train-{shard:03d}.parquet", 16000)))
    return files


def child(files: list, mode: str, buffer_size: int) -> dict:
    from hf_audio_cr.data import load_audioset, load_audioset_labels
    from hf_audio_cr.training import (
        AudiosetWeightedSampler,
        AudiosetWeightedStream,
        audioset_sample_weights,
        stream_class_weights,
    )

    start_rss, start = rss_mb(), time.perf_counter()
    if mode == "plain":  # the stream alone, no sampler: what datasets' streaming itself costs
        drawn = rows = sum(1 for _ in load_audioset(data_files=files, streaming=True, shuffle_buffer_size=buffer_size))
        labels_peak = None
    elif mode == "map":
        dataset = load_audioset(data_files=files, streaming=False)
        sampler = AudiosetWeightedSampler(audioset_sample_weights(dataset))
        drawn = sum(1 for index in sampler if dataset[index]["video_id"])
        rows = len(dataset)
        labels_peak = None
    else:
        weights = stream_class_weights(load_audioset_labels(data_files=files).iter(batch_size=10_000))
        labels_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - start_rss
        stream = AudiosetWeightedStream(load_audioset(data_files=files, streaming=True, shuffle_buffer_size=buffer_size),
                                        weights, epoch_length=weights.num_clips, buffer_size=buffer_size)
        drawn = sum(1 for _ in stream)
        rows = weights.num_clips
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows": rows, "drawn": drawn, "rss_after_imports_mb": round(start_rss, 1), "peak_rss_mb": round(peak, 1),
            "peak_minus_start_mb": round(peak - start_rss, 1),
            "labels_pass_peak_minus_start_mb": None if labels_peak is None else round(labels_peak, 1),
            "rows_per_s": round(rows / seconds, 1)}


def class_shares(epoch_length: int, seed: int) -> list:
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    import test_training_stream_sampling as spec  # the test's set and target, so both measure the same thing
    from hf_audio_cr.data import load_audioset, load_audioset_labels
    from hf_audio_cr.training import AudiosetWeightedStream, stream_class_weights

    with tempfile.TemporaryDirectory() as tmp:
        files = spec.write_shards(Path(tmp))
        rows = []
        for with_ancestors in (False, True):
            weights = stream_class_weights(load_audioset_labels(data_files=files).iter(batch_size=50), with_ancestors)
            stream = AudiosetWeightedStream(load_audioset(data_files=files, streaming=True, shuffle_buffer_size=32,
                                                          seed=seed), weights, epoch_length, seed, buffer_size=200)
            drawn = [row["label_mids"] for row in stream]
            target, mids = spec.target_class_shares(files, with_ancestors)
            for mid, share in target.items():
                got = float(np.mean([mid in m for m in drawn]))
                se = float(np.sqrt(share * (1 - share) / len(drawn)))
                rows.append({"with_ancestors": with_ancestors, "class": mid, "draws": len(drawn),
                             "unweighted_share": round(float(np.mean([mid in m for m in mids])), 4),
                             "target_share": round(float(share), 4), "drawn_share": round(got, 4),
                             "z": round((got - share) / se, 2)})
    return rows


def main(argv=None):
    (args,) = parse_script_args(StreamSamplerArguments, argv, description=__doc__)
    if args.class_shares:
        rows = class_shares(args.epoch_length, args.seed)
        print(" | ".join(rows[0]))
        for row in rows:
            print(" | ".join(str(v) for v in row.values()))
        Path(args.output_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output_json).write_text(json.dumps(rows, indent=2))
        return
    if args.child:
        mode, *files = args.child
        print(json.dumps(child(files, mode, args.buffer_size)))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            folder = Path(tmp) / str(size)
            folder.mkdir()
            files = write_set(folder, size, -(-size // args.rows_per_shard))
            for mode in ["stream", "plain"] + (["map"] if args.map_style else []):
                out = subprocess.run([sys.executable, __file__, "--buffer_size", str(args.buffer_size), "--child", mode,
                                      *files], capture_output=True, text=True, check=True, cwd=ROOT)
                results.append({"sampler": mode, **json.loads(out.stdout.strip().splitlines()[-1])})
                print(results[-1], file=sys.stderr)
    header = ("sampler", "rows", "drawn", "rss_after_imports_mb", "peak_rss_mb", "peak_minus_start_mb",
              "labels_pass_peak_minus_start_mb", "rows_per_s")
    print(" | ".join(header))
    for row in results:
        print(" | ".join(str(row[key]) for key in header))
    Path(args.output_json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output_json).write_text(json.dumps({"buffer_size": args.buffer_size, "rows_per_shard": args.rows_per_shard,
                                                  "results": results}, indent=2))


if __name__ == "__main__":
    main()
