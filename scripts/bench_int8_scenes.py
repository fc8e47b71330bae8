#!/usr/bin/env python
"""mAP of int8 CR-AudioMAE against fp32 on the embedded test scenes (the CR study's data and models).

Trains (or reuses, from ``--output_dir``'s ``runs.jsonl``) small CR-AudioMAE models of the CR study
(``hf_audio_cr.experiments.cr_study``: the settings given, one run per seed, checkpoint chosen on validation),
then per run exports the selected model to ONNX, quantises it dynamically to int8
(``hf_audio_cr.export.quantize_onnx``) and scores the 480 test scenes one by one with PyTorch fp32,
onnxruntime fp32 and onnxruntime int8 (1 thread). Reports mAP per backend (the study's metric: the standard
527 columns with a positive), the int8 - fp32 delta per run and its mean ± std over seeds, argmax agreement and
logits correlation; prints a table and writes JSON.

    python scripts/bench_int8_scenes.py [--settings "pretrained λ=0"] [--seeds 3] \\
        [--output_dir outputs/int8_scenes] [--output outputs/bench_int8_scenes.json] [--quick]
"""
import dataclasses
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hf_audio_cr.cli import parse_script_args


@dataclass
class Int8ScenesArguments:
    settings: list[str] = field(default_factory=lambda: ["pretrained λ=0"], metadata={
        "help": "CR study scene settings to train and quantise (the default is the study's best on validation)"})
    seeds: int = field(default=3, metadata={"help": "seeds per setting (one run each)"})
    output_dir: str = field(default="outputs/int8_scenes", metadata={"help": "study folder: scenes, runs (reused)"})
    threads: int = field(default=1, metadata={"help": "torch intra-op threads"})
    quick: bool = field(default=False, metadata={"help": "the CR study's tiny pass (seconds; checks the script runs)"})
    output: str = field(default="outputs/bench_int8_scenes.json", metadata={"help": "JSON file for the results"})


def score(rows: list, backends: dict) -> dict:
    """Logits of every scene, one scene per call (as on a device), for each backend."""
    logits = {name: [] for name in backends}
    for row in rows:
        features = {"input_values": row["input_values"][None]}
        for name, run in backends.items():
            logits[name].append(np.asarray(run(features)).reshape(-1))
    return {name: np.stack(values) for name, values in logits.items()}


def measure(model_dir: str, test: list, workdir: Path) -> dict:
    from transformers import EvalPrediction

    from hf_audio_cr import CRAudioMAEForAudioClassification
    from hf_audio_cr.export import export_onnx, int8_comparison_backends, logits_agreement, quantize_onnx
    from hf_audio_cr.training import audioset_compute_metrics

    model = CRAudioMAEForAudioClassification.from_pretrained(model_dir).eval()
    fp32 = export_onnx(model, {"input_values": test[0]["input_values"][None]}, workdir / "cr_scenes.onnx")
    int8 = quantize_onnx(fp32)
    backends = int8_comparison_backends(model, fp32, int8, num_threads=1)
    logits = score(test, backends)
    labels = np.stack([r["labels"].numpy() for r in test])
    metric = audioset_compute_metrics()  # the study's test metric (standard 527 columns with a positive)
    return {"scenes": len(test), "size_mb_fp32": fp32.stat().st_size / 2**20, "size_mb_int8": int8.stat().st_size / 2**20,
            "mAP": {name: float(metric(EvalPrediction(predictions=v, label_ids=labels))["mAP"]) for name, v in logits.items()},
            "int8_vs_fp32_onnx": logits_agreement(logits["onnxruntime fp32"], logits["onnxruntime int8"]),
            "onnx_fp32_vs_torch_max_abs": float(np.abs(logits["onnxruntime fp32"] - logits["torch fp32"]).max())}


def main(argv=None):
    (args,) = parse_script_args(Int8ScenesArguments, argv, description=__doc__)
    import torch

    from hf_audio_cr.experiments.cr_study import PRETRAIN, StudyArguments, run_study, scene_features

    torch.set_num_threads(args.threads)
    load_before, started = os.getloadavg(), time.time()
    study = StudyArguments(output_dir=args.output_dir, tasks=["scenes"], settings=args.settings, seeds=args.seeds,
                           num_threads=args.threads, quick=args.quick)
    report = run_study(study)
    test = scene_features(study, Path(args.output_dir) / "scenes_data")["test"]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in report["runs"]:
            if run["setting"] != PRETRAIN:
                runs.append({"setting": run["setting"], "seed": run["seed"], "study_test_mAP": run["test"],
                             **measure(run["model_dir"], test, Path(tmp))})
    summary = {}
    for setting in args.settings:
        deltas = [r["mAP"]["onnxruntime int8"] - r["mAP"]["onnxruntime fp32"] for r in runs if r["setting"] == setting]
        summary[setting] = {
            "runs": len(deltas), "delta_mAP_mean": statistics.mean(deltas),
            "delta_mAP_std": statistics.stdev(deltas) if len(deltas) > 1 else 0.0,
            "delta_mAP_stderr": statistics.stdev(deltas) / len(deltas) ** 0.5 if len(deltas) > 1 else 0.0,
            **{f"mAP_{name}": statistics.mean(r["mAP"][name] for r in runs if r["setting"] == setting)
               for name in runs[0]["mAP"]}}
    print(f"\nEmbedded test scenes ({len(test)}), small CR-AudioMAE of the CR study; "
          f"load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}\n")
    print("| setting | seed | torch fp32 mAP | ORT fp32 mAP | ORT int8 mAP | int8 - fp32 | argmax agreement "
          "| logits corr | MB fp32 / int8 |\n|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        m, q = r["mAP"], r["int8_vs_fp32_onnx"]
        print(f"| {r['setting']} | {r['seed']} | {m['torch fp32']:.4f} | {m['onnxruntime fp32']:.4f} "
              f"| {m['onnxruntime int8']:.4f} | {m['onnxruntime int8'] - m['onnxruntime fp32']:+.4f} "
              f"| {q['argmax_agreement']:.4f} | {q['correlation']:.4f} | {r['size_mb_fp32']:.2f} / {r['size_mb_int8']:.2f} |")
    for setting, s in summary.items():
        print(f"\n{setting}: int8 - fp32 mAP {s['delta_mAP_mean']:+.4f} ± {s['delta_mAP_std']:.4f} (std over "
              f"{s['runs']} seeds; standard error {s['delta_mAP_stderr']:.4f})")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"runs": runs, "summary": summary, "arguments": dataclasses.asdict(args),
                                             "load_average_before": load_before, "load_average_after": os.getloadavg(),
                                             "wall_s": time.time() - started}, indent=1))
    return summary


if __name__ == "__main__":
    main()
