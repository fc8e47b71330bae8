#!/usr/bin/env python
"""Clips/s of AudioMAEFeatureExtractor vs transformers' ASTFeatureExtractor on 64 real 10 s clips.

    python scripts/bench_feature_extraction.py [--threads 1] [--device cpu|cuda] [--output bench_fe.json]

Prints a markdown table and writes JSON. Both extractors compute the same Kaldi fbank; the parity column is
the max abs difference between the two on these clips.
"""
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from hf_audio_cr.cli import parse_script_args  # torch and the extractors are imported once the flags are parsed

AUDIO = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "audio"


def real_ten_second_clips(count: int) -> list:
    """Cut `count` 10 s clips at staggered offsets from the real recordings played back to back."""
    import torch

    from hf_audio_cr.data.audio_files import load_audio_file

    stream = []
    for path in sorted(AUDIO.glob("*.ogg")):
        stream.append(torch.from_numpy(load_audio_file(path, 16000)))
    stream = torch.cat(stream * 4).numpy()
    step = (len(stream) - 160000) // count
    return [stream[i * step : i * step + 160000].copy() for i in range(count)]


def interleaved_seconds(runs: dict, repeats: int) -> dict:
    """Wall times of each run, timed in rounds (a, b, a, b, ...) after one warm-up each, so that load from other
    processes on a shared machine hits every run alike."""
    for run in runs.values():
        run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


@dataclass
class BenchArguments:
    clips: int = field(default=64, metadata={"help": "real 10 s clips per timed pass"})
    threads: int = field(default=1, metadata={"help": "torch intra-op threads"})
    repeats: int = field(default=5, metadata={"help": "timed passes per extractor"})
    batch_size: int = field(default=64, metadata={"help": "clips per call of our extractor"})
    device: str = field(default="cpu", metadata={"help": "'cpu' or 'cuda' for our extractor"})
    output: str = field(default="bench_feature_extraction.json", metadata={"help": "JSON file for the results"})


def main(argv=None):
    (args,) = parse_script_args(BenchArguments, argv, description=__doc__)
    import torch
    from transformers import ASTFeatureExtractor

    from hf_audio_cr.models.cr_audiomae import AudioMAEFeatureExtractor

    torch.set_num_threads(args.threads)
    clips = real_ten_second_clips(args.clips)
    ours, ast = AudioMAEFeatureExtractor(), ASTFeatureExtractor()

    def run_ours():
        for i in range(0, len(clips), args.batch_size):
            batch = [torch.from_numpy(c).to(args.device) for c in clips[i : i + args.batch_size]]
            features = ours(batch, sampling_rate=16000)["input_values"]
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return features

    times = interleaved_seconds({"ours": run_ours, "ast": lambda: ast(clips, sampling_rate=16000)}, args.repeats)
    rows = [
        {"extractor": f"AudioMAEFeatureExtractor (batch {args.batch_size}, {args.device})",
         "clips_per_s": len(clips) / statistics.median(times["ours"])},
        {"extractor": "ASTFeatureExtractor (transformers, cpu)", "clips_per_s": len(clips) / statistics.median(times["ast"])},
    ]
    # AST subtracts no waveform mean; feed it zero-mean clips so both compute AudioMAE's recipe
    ours_all = ours(clips, sampling_rate=16000)["input_values"].cpu()
    ast_all = torch.from_numpy(ast([c - c.mean() for c in clips], sampling_rate=16000, return_tensors="np")["input_values"])
    parity = (ours_all - ast_all).abs().max().item()
    device_parity = None
    if args.device != "cpu":  # the same batched code path on the device against the CPU
        on_device = ours([torch.from_numpy(c).to(args.device) for c in clips], sampling_rate=16000)["input_values"]
        device_parity = (on_device.cpu() - ours_all).abs().max().item()
    # the ratio of each round (same load for both), then the median over rounds
    speedup = statistics.median(a / o for o, a in zip(times["ours"], times["ast"]))
    print(f"| extractor | clips/s ({args.threads} thread(s), {args.clips} real 10 s clips; load average "
          f"{os.getloadavg()[0]:.2f}) |\n|---|---|")
    for row in rows:
        print(f"| {row['extractor']} | {row['clips_per_s']:.1f} |")
    print(f"\nspeed-up (median of {args.repeats} interleaved rounds): {speedup:.2f}x (goal >= 2)   max abs diff vs AST extractor: {parity:.2e}"
          + (f"   {args.device} vs cpu: {device_parity:.2e}" if device_parity is not None else ""))
    result = {"threads": args.threads, "clips": args.clips, "rows": rows, "speedup": speedup, "max_abs_diff": parity,
              "device_vs_cpu_max_abs_diff": device_parity,
              "torch": torch.__version__, "device": args.device,
              "batch_size": args.batch_size, "round_seconds": times, "load_average": os.getloadavg()}
    Path(args.output).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
