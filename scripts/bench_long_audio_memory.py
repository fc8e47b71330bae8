#!/usr/bin/env python
"""Peak memory and time of tagging long recordings with ``pipeline("audio-classification")``.

Each (model, duration) runs in a fresh process (peak RSS = ``ru_maxrss`` of that process, so runs do not mask
each other) on real speech (tests/fixtures/audio/speech_female.ogg, tiled) written as 16 kHz FLAC, with small
random-weight models saved as folders (the memory of interest is audio + features + windows, not weights) and
loaded by the stock pipeline, as remote code with ``--remote_code``. ``--input path`` hands the pipeline the
file (the package's pipeline reads a lossless file in 30 s chunks and resamples span by span: no full-length
decoded copy); ``--input array`` reads it with soundfile (float32) first and passes ``{"array", "sampling_rate"}``
(the array is the caller's memory: 220 MB per audio-hour).
The table gives the decoded audio's size next to the peak, so what the pipeline holds and what the model
side adds can be told apart. Timings on a shared machine are noisy; the load average is reported.

    python scripts/bench_long_audio_memory.py [--models cr_audiomae hear] [--minutes 1 10 60] \
        [--input path|array] [--remote_code] [--output outputs/bench_long_audio_memory.json]
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
SPEECH = ROOT / "tests" / "fixtures" / "audio" / "speech_female.ogg"


def write_long_flac(path: Path, minutes: float) -> None:
    import numpy as np
    import soundfile as sf

    from hf_audio_cr.data.audio_files import load_audio_file

    speech = load_audio_file(SPEECH, 16000)
    total = int(minutes * 60 * 16000)
    with sf.SoundFile(path, "w", 16000, 1, format="FLAC") as f:
        for start in range(0, total, speech.size):  # written piece by piece: the writer stays small
            f.write(speech[: min(speech.size, total - start)].astype(np.float32))


def save_small_model(model_name: str, folder: Path) -> None:
    import torch

    import hf_audio_cr

    torch.manual_seed(0)
    if model_name == "cr_audiomae":
        config = hf_audio_cr.CRAudioMAEConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                              intermediate_size=128)
        hf_audio_cr.CRAudioMAEForAudioClassification(config).save_pretrained(folder)
        hf_audio_cr.AudioMAEFeatureExtractor().save_pretrained(folder)
    else:
        config = hf_audio_cr.HEARConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, task_hidden_size=64, task_intermediate_size=128,
                                        task_num_attention_heads=4, spectrum_hidden_size=32,
                                        classifier_hidden_size=32, num_labels=10)
        hf_audio_cr.HEARForAudioClassification(config).eval().save_pretrained(folder)
        hf_audio_cr.HEARFeatureExtractor().save_pretrained(folder)


def measure(path: str, folder: str, remote_code: bool, input_kind: str) -> dict:
    """In the child process: load the folder with the stock pipeline, tag the file, report peak RSS."""
    import torch
    from transformers import pipeline

    extra = {}
    if not remote_code:
        import hf_audio_cr  # registers the Auto classes

        extra["pipeline_class"] = hf_audio_cr.AudioFileClassificationPipeline  # the package's copy of the folder's

    classifier = pipeline("audio-classification", model=folder, trust_remote_code=remote_code, **extra)
    if remote_code:
        assert type(classifier.model).__module__.startswith("transformers_modules"), type(classifier.model).__module__
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    if input_kind == "array":
        import soundfile as sf

        samples, rate = sf.read(path, dtype="float32")
        tags = classifier({"array": samples, "sampling_rate": rate}, top_k=3)
    else:
        tags = classifier(path, top_k=3)
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_mb": before,
            "seconds": time.perf_counter() - started, "top_tag": tags[0]["label"], "top_score": tags[0]["score"],
            "torch_threads": torch.get_num_threads()}


@dataclass
class BenchArguments:
    models: list[str] = field(default_factory=lambda: ["cr_audiomae", "hear"], metadata={
        "choices": ["cr_audiomae", "hear"], "help": "model families to measure"})
    minutes: list[float] = field(default_factory=lambda: [1, 10, 60], metadata={
        "help": "lengths of the test files, in minutes"})
    input: str = field(default="path", metadata={"choices": ["path", "array"],
                                                 "help": "give the pipeline the file path or a decoded array"})
    remote_code: bool = field(default=False, metadata={"help": "load the folders with trust_remote_code=True"})
    threads: int = field(default=1, metadata={"help": "torch intra-op threads"})
    output: str = field(default="outputs/bench_long_audio_memory.json", metadata={"help": "JSON file for the results"})
    child: list[str] | None = field(default=None, metadata={"help": argparse.SUPPRESS})  # FILE FOLDER


def main(argv=None):
    (args,) = parse_script_args(BenchArguments, argv, description=__doc__)
    if args.child:
        print(json.dumps(measure(*args.child, args.remote_code, args.input)))
        return None
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            path = Path(tmp) / f"{minutes:g}min.flac"
            write_long_flac(path, minutes)
            for model_name in args.models:
                folder = Path(tmp) / model_name
                if not folder.exists():
                    save_small_model(model_name, folder)
                env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(args.threads),
                           PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
                command = [sys.executable, __file__, "--child", str(path), str(folder), "--input", args.input]
                out = subprocess.run(command + (["--remote_code"] if args.remote_code else []), capture_output=True,
                                     text=True, env=env)
                if out.returncode != 0:
                    raise RuntimeError(f"{model_name} {minutes:g} min failed:\n{out.stderr[-3000:]}")
                row = {"model": model_name, "minutes": minutes, "file_mb": path.stat().st_size / 2**20,
                       "audio_float32_mb": minutes * 60 * 16000 * 4 / 2**20,
                       **json.loads(out.stdout.strip().splitlines()[-1])}
                row["seconds_per_audio_hour"] = row["seconds"] * 60 / minutes
                rows.append(row)
                print(f"[bench] {model_name} {minutes:g} min: peak {row['peak_rss_mb']:.0f} MB", file=sys.stderr)
    for row in rows:
        first = next(r for r in rows if r["model"] == row["model"])
        row["peak_over_first"] = row["peak_rss_mb"] / first["peak_rss_mb"]
        row["peak_minus_audio_over_first"] = (row["peak_rss_mb"] - row["audio_float32_mb"]) / (
            first["peak_rss_mb"] - first["audio_float32_mb"])
    print(f"input: {args.input}, loading: {'remote code' if args.remote_code else 'hf_audio_cr'}, "
          f"{args.threads} thread(s), load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}\n")
    print("| model | audio | FLAC MB | float32 audio MB | peak RSS MB | x first | (peak - audio) x first "
          "| RSS before MB | tagging s | s per audio-hour |\n|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['minutes']:g} min | {r['file_mb']:.0f} | {r['audio_float32_mb']:.0f} "
              f"| {r['peak_rss_mb']:.0f} | {r['peak_over_first']:.2f} | {r['peak_minus_audio_over_first']:.2f} "
              f"| {r['rss_before_mb']:.0f} | {r['seconds']:.1f} | {r['seconds_per_audio_hour']:.0f} |")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"rows": rows, "arguments": vars(args), "load_average_before": load_before,
                                             "load_average_after": os.getloadavg()}, indent=1))
    return rows


if __name__ == "__main__":
    main()
