"""Efficiency benchmark: parameters, compute and real-time factor of audio classifiers side by side.

HEAR (Kawano & Sasaki, Table III) reports GFLOPs and RTF for 10 s of audio at batch size 1 on a single
thread; its "GFLOPs" (9.47 for HEAR, 42.4 for ViT-B/AudioMAE) are multiply-accumulates. We count with
``torch.utils.flop_counter.FlopCounterMode`` (which counts a multiply-add as 2 FLOPs) and report both
``flops`` and ``macs = flops / 2`` so the numbers compare with the paper's column.

RTF = wall time / audio duration, the median of ``repeats`` runs after ``warmup`` runs, measured at one
thread and at all threads, with and without feature extraction, for each input duration. Optionally the
same forward runs through onnxruntime (``onnx=True``) after ``hf_audio_cr.export.export_onnx``.

Run it as ``python scripts/benchmark_efficiency.py`` or ``python -m hf_audio_cr.benchmark``.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from .model_zoo import (  # noqa: F401  re-exported: the zoo is the benchmark's subjects
    BUILDERS,
    BUILTIN_MODELS,
    HEAR_TINY_CONFIG,
    SAMPLING_RATE,
    BenchmarkSubject,
    benchmark_waveform,
    build_ast,
    build_cr_audiomae,
    build_hear,
    load_model_dir,
)

# HEAR Table III (10 s, 1 thread, ARM CPU): the speed claim we re-measure side by side.
PAPER_RTF = {"hear": 0.095, "cr_audiomae": 0.244}


@dataclass
class BenchmarkArguments:
    """Command-line arguments of ``scripts/benchmark_efficiency.py``."""

    models: list[str] = field(
        default_factory=lambda: list(BUILTIN_MODELS),
        metadata={"help": f"Built-in models to run, any of {BUILTIN_MODELS} (random weights, paper configs)."},
    )
    model_dirs: list[str] = field(
        default_factory=list,
        metadata={"help": "Extra saved model folders (save_pretrained output) to benchmark as well."},
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow remote code for --model_dirs."})
    durations: list[float] = field(default_factory=lambda: [10.0, 60.0], metadata={"help": "Input lengths in s."})
    threads: list[str] = field(
        default_factory=lambda: ["1", "all"], metadata={"help": "Intra-op thread counts; 'all' = usable cores."}
    )
    repeats: int = field(default=5, metadata={"help": "Timed runs per setting (the median is reported)."})
    warmup: int = field(default=1, metadata={"help": "Untimed runs before timing each setting."})
    device: str = field(default="cpu", metadata={"help": "'cpu' or 'cuda'."})
    onnx: bool = field(default=False, metadata={"help": "Also export each model to ONNX and time onnxruntime."})
    quantize: str | None = field(default=None, metadata={
        "help": "'int8': with --onnx, also time the dynamically quantised graph (backend onnxruntime-int8) and its "
                "RTF ratio to fp32 at 1 thread, timed interleaved."})
    quantize_preprocess: bool = field(default=False, metadata={
        "help": "With --quantize: optimise the graph (quant_pre_process) before quantising (faster HEAR, larger file)."})
    audio: str | None = field(
        default=None, metadata={"help": "A recording to tile to each duration (default: seeded noise)."}
    )
    output_dir: str = field(default="outputs/benchmark", metadata={"help": "Where results.json/.md/.png go."})
    quick: bool = field(
        default=False, metadata={"help": "Tiny configs, 1 repeat, no warm-up: checks the harness in seconds."}
    )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# torch's table covers the CUDA attention kernels only; on CPU SDPA dispatches to this op, which would
# otherwise count 0 FLOPs for every attention map.
_EXTRA_FLOP_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flop}


def count_flops(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> int:
    """FLOPs of one forward pass (a multiply-add counts 2), counted by ``FlopCounterMode``."""
    with torch.inference_mode(), FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS) as counter:
        model(**inputs)
    return int(counter.get_total_flops())


@contextlib.contextmanager
def intra_op_threads(num_threads: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def median_seconds(run: Callable[[], Any], repeats: int, warmup: int, sync: Callable[[], None]) -> float:
    """Median wall time of ``run`` over ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        run()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _setting_key(backend: str, seconds: float, threads: int | str, with_features: bool) -> str:
    return f"{backend}/{seconds:g}s/{threads}thr/{'fe+model' if with_features else 'model'}"


def _record(result: dict, key: str, rtf: float) -> None:
    result["rtf"][key] = rtf
    print(f"[benchmark] {result['model']} {key}: RTF {rtf:.4f}", file=sys.stderr, flush=True)  # long runs: progress


def measure_subject(subject: BenchmarkSubject, args: BenchmarkArguments, workdir: Path) -> dict:
    """Params, FLOPs per duration and every RTF setting for one model."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device here; use --device cpu.")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    model = subject.model.to(device).eval()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    thread_counts = [usable_cores() if t == "all" else int(t) for t in args.threads]
    result = {"model": subject.name, "params": count_parameters(model), "flops": {}, "macs": {}, "rtf": {}}

    graphs = {}
    if args.onnx or args.quantize:
        from .export import OnnxAudioClassifier, export_onnx, quantize_onnx

        # 25 s gives every model at least two windows, so the window axis stays dynamic in the graph
        example = subject.extract(benchmark_waveform(25.0, args.audio))
        graphs["onnxruntime"] = export_onnx(subject.model, example, workdir / f"{subject.name}.onnx")
        if args.quantize == "int8":
            graphs["onnxruntime-int8"] = quantize_onnx(graphs["onnxruntime"], preprocess=args.quantize_preprocess)
        model = subject.model.to(device)

    for seconds in args.durations:
        waveform = benchmark_waveform(seconds, args.audio)
        features = {k: v.to(device) for k, v in subject.extract(waveform).items()}
        flops = count_flops(model, features)
        result["flops"][f"{seconds:g}s"] = flops
        result["macs"][f"{seconds:g}s"] = flops // 2

        def model_only():
            model(**features)

        def with_features():
            model(**{k: v.to(device) for k, v in subject.extract(waveform).items()})

        for threads in thread_counts:
            with intra_op_threads(threads), torch.inference_mode():
                for with_fe, run in ((False, model_only), (True, with_features)):
                    elapsed = median_seconds(run, args.repeats, args.warmup, sync)
                    _record(result, _setting_key("torch", seconds, threads, with_fe), elapsed / seconds)
            for backend, onnx_path in graphs.items():
                session = OnnxAudioClassifier(onnx_path, num_threads=threads)
                try:
                    session(**features)
                except ValueError as error:  # a graph with a length limit (HEAR: 30 s) cannot take this clip
                    result.setdefault("notes", {})[f"{backend}/{seconds:g}s"] = str(error)
                    continue
                runs = {False: lambda: session(**features), True: lambda: session(**subject.extract(waveform))}
                for with_fe, run in runs.items():
                    with intra_op_threads(threads):  # the feature extractor's torch ops
                        elapsed = median_seconds(run, args.repeats, args.warmup, lambda: None)
                    _record(result, _setting_key(backend, seconds, threads, with_fe), elapsed / seconds)
        if device.type == "cuda":  # weights + the largest forward so far (the longest duration last)
            result.setdefault("peak_gpu_memory_mb", {})[f"{seconds:g}s"] = torch.cuda.max_memory_allocated(device) / 2**20
        if "onnxruntime-int8" in graphs and f"onnxruntime-int8/{seconds:g}s" not in result.get("notes", {}):
            result.setdefault("int8", {})[f"{seconds:g}s"] = paired_onnx_ratio(
                graphs["onnxruntime-int8"], graphs["onnxruntime"], features, seconds, max(args.repeats, 5), args.warmup)
    return result


def paired_onnx_ratio(quantized_path, fp32_path, features: dict, seconds: float, repeats: int, warmup: int) -> dict:
    """int8 / fp32 onnxruntime time at 1 thread, interleaved (q, f, q, f, ...), plus how the int8 logits follow."""
    from .export import OnnxAudioClassifier, logits_agreement

    sessions = [OnnxAudioClassifier(quantized_path, num_threads=1), OnnxAudioClassifier(fp32_path, num_threads=1)]
    times = ([], [])
    for index in range(warmup + repeats):
        for which, session in enumerate(sessions):
            start = time.perf_counter()
            session(**features)
            if index >= warmup:
                times[which].append(time.perf_counter() - start)
    ratios = [q / f for q, f in zip(*times)]
    return {"ratio_int8_to_fp32": statistics.median(ratios), "rtf_int8": statistics.median(times[0]) / seconds,
            "rtf_fp32": statistics.median(times[1]) / seconds,
            "size_mb_int8": Path(quantized_path).stat().st_size / 2**20,
            "size_mb_fp32": Path(fp32_path).stat().st_size / 2**20,
            **logits_agreement(sessions[1](**features), sessions[0](**features))}


def paired_rtf_ratio(a: BenchmarkSubject, b: BenchmarkSubject, seconds: float, repeats: int, warmup: int,
                     with_features: bool, audio: str | None = None) -> dict:
    """RTF of ``a`` and ``b`` at one CPU thread, timed in alternation (a, b, a, b, ...) so both see the same load
    from other processes; the ratio is the median of the per-pair ratios. On a shared machine this is the
    number to compare, not two medians taken minutes apart."""
    waveform = benchmark_waveform(seconds, audio)
    runs = []
    for subject in (a, b):
        model = subject.model.cpu().eval()
        features = subject.extract(waveform)
        runs.append((lambda m=model, f=features, s=subject: m(**(s.extract(waveform) if with_features else f))))
    times = {0: [], 1: []}
    with intra_op_threads(1), torch.inference_mode():
        for index in range(warmup + repeats):
            for which, run in enumerate(runs):
                start = time.perf_counter()
                run()
                if index >= warmup:
                    times[which].append(time.perf_counter() - start)
    ratios = [ta / tb for ta, tb in zip(times[0], times[1])]
    return {"setting": _setting_key("torch", seconds, 1, with_features), "ratio": statistics.median(ratios),
            "rtf_a": statistics.median(times[0]) / seconds, "rtf_b": statistics.median(times[1]) / seconds}


def collect_subjects(args: BenchmarkArguments) -> list[BenchmarkSubject]:
    unknown = [name for name in args.models if name not in BUILDERS]
    if unknown:
        raise ValueError(f"--models {unknown}: unknown; choose from {list(BUILDERS)} or pass --model_dirs.")
    subjects = [BUILDERS[name](args.quick) for name in args.models]
    subjects += [load_model_dir(path, args.trust_remote_code) for path in args.model_dirs]
    return subjects


def format_markdown(results: list[dict], args: BenchmarkArguments, headline: list[dict] | None = None) -> str:
    """One row per model and backend: params, GFLOPs/GMACs at the first duration, then every RTF setting;
    then the headline HEAR / CR-AudioMAE ratios."""
    first = f"{args.durations[0]:g}s"
    thread_counts = [usable_cores() if t == "all" else int(t) for t in args.threads]
    settings = [_setting_key("", seconds, threads, with_fe)[1:] for seconds in args.durations
                for threads in thread_counts for with_fe in (False, True)]
    header = ["model", "backend", "params (M)", f"GFLOPs @{first}", f"GMACs @{first}"]
    header += [f"RTF {s.replace('/', ' ')}" for s in settings]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        for backend in sorted({key.split("/", 1)[0] for key in r["rtf"]}, reverse=True):
            row = [r["model"], backend, f"{r['params'] / 1e6:.2f}", f"{r['flops'][first] / 1e9:.2f}",
                   f"{r['macs'][first] / 1e9:.2f}"]
            row += [f"{r['rtf'][backend + '/' + s]:.4f}" if backend + "/" + s in r["rtf"] else "-"
                    for s in settings]
            lines.append("| " + " | ".join(row) + " |")
    for r in results:
        for setting, note in r.get("notes", {}).items():
            lines.append(f"\n{r['model']} {setting}: - ({note})")
    for r in results:
        for setting, q in r.get("int8", {}).items():
            lines.append(f"\n{r['model']} int8 / fp32 onnxruntime RTF ({setting}, 1 thread, interleaved): "
                         f"{q['ratio_int8_to_fp32']:.3f} (int8 {q['rtf_int8']:.4f}, fp32 {q['rtf_fp32']:.4f}; goal <= 0.6); "
                         f"logits correlation {q['correlation']:.4f}, {q['size_mb_int8']:.1f} MB vs {q['size_mb_fp32']:.1f} MB")
    for pair in headline or []:
        lines.append(f"\nHEAR / CR-AudioMAE RTF ratio ({pair['setting']}, runs interleaved): {pair['ratio']:.3f} "
                     f"(HEAR {pair['rtf_a']:.4f}, CR-AudioMAE {pair['rtf_b']:.4f}; paper: {PAPER_RTF['hear']} / "
                     f"{PAPER_RTF['cr_audiomae']} = {PAPER_RTF['hear'] / PAPER_RTF['cr_audiomae']:.2f}; goal <= 0.30)")
    return "\n".join(lines)


def plot_results(results: list[dict], args: BenchmarkArguments, path: Path) -> None:
    """Bar chart: RTF (model + features, first duration) per model at each thread count, and GMACs."""
    from .extras import agg_pyplot

    plt = agg_pyplot("The benchmark chart")

    first = args.durations[0]
    thread_counts = [usable_cores() if t == "all" else int(t) for t in args.threads]
    names = [r["model"] for r in results]
    x = np.arange(len(names))
    fig, (ax_rtf, ax_macs) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(thread_counts)
    for i, threads in enumerate(thread_counts):
        values = [r["rtf"][_setting_key("torch", first, threads, True)] for r in results]
        ax_rtf.bar(x + i * width, values, width, label=f"{threads} thread(s)")
    ax_rtf.set_xticks(x + width * (len(thread_counts) - 1) / 2, names)
    ax_rtf.set_ylabel(f"RTF ({first:g} s, features + model)")
    ax_rtf.legend()
    ax_macs.bar(x, [r["macs"][f"{first:g}s"] / 1e9 for r in results], color="tab:gray")
    ax_macs.set_xticks(x, names)
    ax_macs.set_ylabel(f"GMACs per {first:g} s")
    fig.suptitle(f"Efficiency on {args.device} ({platform.processor() or platform.machine()})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_benchmark(args: BenchmarkArguments) -> dict:
    """Measure every requested model; write results.json, results.md and results.png to ``output_dir``."""
    if args.quick:
        args.repeats, args.warmup = 1, 0
    if args.repeats < 1:
        raise ValueError(f"--repeats {args.repeats}: must be at least 1.")
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    subjects = collect_subjects(args)
    with tempfile.TemporaryDirectory() as workdir:
        results = [measure_subject(subject, args, Path(workdir)) for subject in subjects]
    by_name = {subject.name: subject for subject in subjects}
    headline = []
    if {"hear", "cr_audiomae"} <= set(by_name) and not args.quick:
        headline = [paired_rtf_ratio(by_name["hear"], by_name["cr_audiomae"], args.durations[0], max(args.repeats, 5),
                                     args.warmup, with_features, args.audio) for with_features in (False, True)]
    report = {
        "arguments": asdict(args),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cores": usable_cores(),
                    "torch": torch.__version__, "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "results": results,
        "headline": headline,
    }
    table = format_markdown(results, args, headline)
    report["markdown"] = table
    (output_dir / "results.json").write_text(json.dumps(report, indent=2))
    (output_dir / "results.md").write_text(table + "\n")
    plot_results(results, args, output_dir / "results.png")
    return report


def main(argv: list[str] | None = None) -> dict:
    from .cli import parse_script_args

    (args,) = parse_script_args(BenchmarkArguments, argv, description=__doc__)
    return run_and_print(args)


def run_and_print(args: BenchmarkArguments) -> dict:
    """`run_benchmark`, then the table and where the files went (`scripts/benchmark_efficiency.py`)."""
    report = run_benchmark(args)
    print(report["markdown"])
    load = report["machine"]
    print(f"\nload average before/after: {load['loadavg_before'][0]:.2f} / {load['loadavg_after'][0]:.2f} "
          f"on {load['cores']} cores; results in {args.output_dir}/results.(json|md|png)")
    return report


if __name__ == "__main__":
    main()
