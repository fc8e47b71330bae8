#!/usr/bin/env python
"""Peak memory of tagging long recordings with ``pipeline("audio-classification")`` (windowed scoring).

Each duration runs in a fresh process (peak RSS = ``ru_maxrss`` of that process, so runs do not mask each
other) on real speech (tests/fixtures/audio/speech_female.ogg, tiled) written as 16 kHz FLAC, with a small
CR-AudioMAE (the memory of interest is audio + features + windows, not weights). Prints a table and writes
JSON. Timings on a shared machine are noisy.

    python scripts/bench_long_audio_memory.py [--minutes 1 10 60] [--output outputs/bench_long_audio_memory.json]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "tests" / "fixtures" / "audio" / "speech_female.ogg"


def write_long_flac(path: Path, minutes: float) -> None:
    import numpy as np
    import soundfile as sf
    import torch
    import torchaudio

    data, rate = sf.read(SPEECH, dtype="float32", always_2d=True)
    speech = torchaudio.functional.resample(torch.from_numpy(data.mean(axis=1)), rate, 16000).numpy()
    total = int(minutes * 60 * 16000)
    with sf.SoundFile(path, "w", 16000, 1, format="FLAC") as f:
        for start in range(0, total, speech.size):  # written piece by piece: the writer stays small
            f.write(speech[: min(speech.size, total - start)].astype(np.float32))


def measure(path: str) -> dict:
    """In the child process: load a small model, tag the file, report peak RSS before and after."""
    import torch
    from transformers import pipeline

    from hf_audio_cr import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification

    torch.manual_seed(0)
    config = CRAudioMAEConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
    classifier = pipeline("audio-classification", model=CRAudioMAEForAudioClassification(config).eval(),
                          feature_extractor=AudioMAEFeatureExtractor())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    tags = classifier(path, top_k=3)
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_mb": before,
            "seconds": time.perf_counter() - started, "top_tag": tags[0]["label"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60], help="lengths of the test files, in minutes")
    parser.add_argument("--output", default="outputs/bench_long_audio_memory.json", help="JSON file for the results")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child)))
        return None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            path = Path(tmp) / f"{minutes:g}min.flac"
            write_long_flac(path, minutes)
            env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
            out = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True,
                                 env=env, check=True)
            rows.append({"minutes": minutes, "file_mb": path.stat().st_size / 2**20,
                         **json.loads(out.stdout.strip().splitlines()[-1])})
    print("| audio | FLAC MB | peak RSS MB | RSS before tagging MB | tagging s |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['minutes']:g} min | {r['file_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['rss_before_mb']:.0f} | {r['seconds']:.1f} |")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"rows": rows, "load_average": os.getloadavg()}, indent=1))
    return rows


if __name__ == "__main__":
    main()
