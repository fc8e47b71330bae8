#!/usr/bin/env python
"""Accuracy of int8 HEAR against fp32 on the FSDD digit task (the Free Spoken Digit Dataset shipped in the package).

Per seed: fine-tune a small HEAR from scratch on FSDD's training split for a fixed number of epochs
(HEARFineTuningTrainer; nothing chosen on test), export it to ONNX, quantise it dynamically to int8
(``hf_audio_cr.export.quantize_onnx``), then score the 300 test clips (and the validation clips) one by one
with PyTorch fp32, onnxruntime fp32 and onnxruntime int8. Reports accuracy per backend, the int8 - fp32 delta
(mean ± std over seeds), argmax agreement and logits correlation; prints a table and writes JSON.
Or pass ``--model_dir`` (a fine-tuned FSDD folder) to measure that model instead of training one.

    python scripts/bench_int8_fsdd.py [--seeds 0 1 2] [--epochs 4] [--output outputs/bench_int8_fsdd.json]
"""
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hf_audio_cr.cli import parse_script_args  # numpy, torch, onnx and the models are imported after parsing

if TYPE_CHECKING:
    from hf_audio_cr.models.hear import HEARForAudioClassification

# a small HEAR (the 15 M model needs far more than a CPU minute to train); 2 s windows
SMALL = dict(hidden_size=96, intermediate_size=192, num_attention_heads=4, num_hidden_layers=2, window_length=100,
             window_overlap=25, spectrum_hidden_size=32, task_hidden_size=96, task_intermediate_size=192,
             task_num_attention_heads=4, classifier_hidden_size=64)


def fine_tune(splits, seed: int, epochs: int, output_dir: str) -> "HEARForAudioClassification":
    import torch

    from hf_audio_cr.data import AudioClassificationCollator
    from hf_audio_cr.models.hear import HEARFeatureExtractor
    from hf_audio_cr.training import HEARFineTuningArguments, HEARFineTuningTrainer, build_hear_classifier

    labels = splits["train"].features["label"].names
    torch.manual_seed(seed)
    model = build_hear_classifier("scratch", id2label=dict(enumerate(labels)), config_overrides=SMALL)
    args = HEARFineTuningArguments(
        output_dir=output_dir, variant="scratch", learning_rate=1e-3, per_device_train_batch_size=32,
        num_train_epochs=epochs, warmup_steps=0.05, seed=seed, use_cpu=True, report_to=[], save_strategy="no",
        eval_strategy="no", logging_steps=25, dataloader_num_workers=0, disable_tqdm=True)
    collator = AudioClassificationCollator(HEARFeatureExtractor(), label_column="label")
    HEARFineTuningTrainer(model=model, args=args, train_dataset=splits["train"], data_collator=collator).train()
    return model.eval()


def score(split, fe, backends: dict) -> dict:
    """Logits of every clip, one clip per call (as on a device), for each backend."""
    import numpy as np

    logits = {name: [] for name in backends}
    for row in split:
        features = fe(row["audio"]["array"].astype(np.float32), sampling_rate=16000)
        for name, run in backends.items():
            logits[name].append(np.asarray(run(features)).reshape(-1))
    return {name: np.stack(values) for name, values in logits.items()}


def measure(model, splits, workdir: Path) -> dict:
    import numpy as np

    from hf_audio_cr.export import export_onnx, int8_comparison_backends, logits_agreement, quantize_onnx
    from hf_audio_cr.models.hear import HEARFeatureExtractor

    fe = HEARFeatureExtractor()
    example = fe(splits["train"][0]["audio"]["array"].astype(np.float32), sampling_rate=16000)
    fp32 = export_onnx(model, dict(example), workdir / "hear_fsdd.onnx")
    int8 = quantize_onnx(fp32)
    backends = int8_comparison_backends(model, fp32, int8, num_threads=1)
    result = {"size_mb_fp32": fp32.stat().st_size / 2**20, "size_mb_int8": int8.stat().st_size / 2**20}
    for split_name in ("validation", "test"):
        split = splits[split_name]
        logits = score(split, fe, backends)
        target = np.asarray(split["label"])
        result[split_name] = {
            "clips": len(target),
            "accuracy": {name: float((values.argmax(-1) == target).mean()) for name, values in logits.items()},
            "int8_vs_fp32_onnx": logits_agreement(logits["onnxruntime fp32"], logits["onnxruntime int8"]),
            "onnx_fp32_vs_torch_max_abs": float(np.abs(logits["onnxruntime fp32"] - logits["torch fp32"]).max()),
        }
    return result


@dataclass
class BenchArguments:
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "training seeds (one run each)"})
    epochs: int = field(default=4, metadata={"help": "fine-tuning epochs per seed"})
    threads: int = field(default=1, metadata={"help": "torch intra-op threads"})
    model_dir: str | None = field(default=None, metadata={
        "help": "a fine-tuned FSDD digit HEAR folder (then no training, one run)"})
    output: str = field(default="outputs/bench_int8_fsdd.json", metadata={"help": "JSON file for the results"})


def main(argv=None):
    (args,) = parse_script_args(BenchArguments, argv, description=__doc__)
    import torch

    from hf_audio_cr.data import load_fsdd
    from hf_audio_cr.models.hear import HEARForAudioClassification

    torch.set_num_threads(args.threads)
    splits = load_fsdd(task="digit")
    load_before, started, runs = os.getloadavg(), time.time(), []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in ([None] if args.model_dir else args.seeds):
            if args.model_dir:
                model = HEARForAudioClassification.from_pretrained(args.model_dir).eval()
            else:
                model = fine_tune(splits, seed, args.epochs, f"{tmp}/run{seed}")
            runs.append({"seed": seed, **measure(model, splits, Path(tmp))})
    summary = {}
    for split_name in ("validation", "test"):
        deltas = [100 * (r[split_name]["accuracy"]["onnxruntime int8"] - r[split_name]["accuracy"]["onnxruntime fp32"])
                  for r in runs]
        summary[split_name] = {
            "delta_points_mean": statistics.mean(deltas),
            "delta_points_std": statistics.stdev(deltas) if len(deltas) > 1 else 0.0,
            "delta_points_stderr": (statistics.stdev(deltas) / len(deltas) ** 0.5) if len(deltas) > 1 else 0.0,
            **{f"accuracy_{name}": statistics.mean(r[split_name]["accuracy"][name] for r in runs)
               for name in runs[0][split_name]["accuracy"]},
        }
    print(f"FSDD digits, small HEAR ({'--model_dir ' + args.model_dir if args.model_dir else f'{args.epochs} epochs from scratch'}), "
          f"{len(runs)} run(s); load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}\n")
    print("| seed | split | torch fp32 acc | ORT fp32 acc | ORT int8 acc | int8 - fp32 (points) | argmax agreement "
          "| logits corr | MB fp32 / int8 |\n|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        for split_name in ("validation", "test"):
            s = r[split_name]
            acc = s["accuracy"]
            print(f"| {r['seed']} | {split_name} | {acc['torch fp32']:.4f} | {acc['onnxruntime fp32']:.4f} "
                  f"| {acc['onnxruntime int8']:.4f} | {100 * (acc['onnxruntime int8'] - acc['onnxruntime fp32']):+.2f} "
                  f"| {s['int8_vs_fp32_onnx']['argmax_agreement']:.4f} | {s['int8_vs_fp32_onnx']['correlation']:.4f} "
                  f"| {r['size_mb_fp32']:.1f} / {r['size_mb_int8']:.1f} |")
    for split_name, s in summary.items():
        print(f"\n{split_name}: int8 - fp32 accuracy {s['delta_points_mean']:+.2f} ± {s['delta_points_std']:.2f} points "
              f"(std over runs; standard error {s['delta_points_stderr']:.2f}; goal within 0.5)")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"runs": runs, "summary": summary, "arguments": vars(args),
                                             "small_config": SMALL, "load_average_before": load_before,
                                             "load_average_after": os.getloadavg(),
                                             "wall_s": time.time() - started}, indent=1))


if __name__ == "__main__":
    main()
