"""The end-to-end demo: embedded real-audio AudioSet-style data -> baseline and CR training with
``CRTrainer`` -> test mAP table, plots and JSON -> Hub-ready folder -> tagging in a fresh process.

Baseline and CR differ only in the consistency weight: both train ``num_views`` augmented views per
clip (the paper's mixup, SpecAugment, random erasing and patch drop) with the same seed, data order
and step budget, so the table isolates the λ·L_CR term of Eq. 6.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

logger = logging.getLogger(__name__)

# `--quick`: a smoke check of every stage (about a minute on 2 cores), not a measurement.
QUICK = dict(train_scenes=24, validation_scenes=8, test_scenes=8, max_steps=10, eval_steps=5, batch_size=8)
METHODS = ("baseline", "cr")
# Package data (not the checkout's tests/fixtures), so the demo runs from an installed wheel too.
HELD_OUT_SPEECH = Path(__file__).resolve().parent / "audio" / "speech_female.ogg"
# What the card says the numbers were measured on (a local set, not a Hub dataset).
DEMO_DATASET = "hf_audio_cr embedded demo set (real Debian-package recordings)"


@dataclass
class DemoArguments:
    """Command-line arguments of ``scripts/demo.py`` (``--quick`` for a shorter run)."""

    output_dir: str = field(default="demo_output", metadata={"help": "Where data, runs, plots, JSON and the model go."})
    quick: bool = field(default=False, metadata={"help": f"A shorter run for a smoke check: {QUICK}."})
    seeds: int = field(default=1, metadata={"help": "Train each method with seeds seed..seed+N-1; report mean ± std."})
    seed: int = field(default=0, metadata={"help": "First training seed (model init, augmentation, data order)."})
    data_seed: int = field(default=0, metadata={"help": "Seed of the embedded scenes and of the source split."})
    sounds_root: str = field(default="/", metadata={
        "help": "Root under which the Debian packages' recordings are found (usr/share/hydrogen/..., "
                "usr/share/asterisk/...): / for the installed packages, or a folder made with `dpkg -x`."})
    train_scenes: int = field(default=320, metadata={"help": "10 s training scenes."})
    validation_scenes: int = field(default=64, metadata={"help": "Validation scenes (model selection)."})
    test_scenes: int = field(default=96, metadata={"help": "Test scenes (the table)."})
    max_steps: int = field(default=600, metadata={"help": "Optimizer steps per run (same budget for both methods)."})
    eval_steps: int = field(default=100, metadata={"help": "Validate and checkpoint every N steps."})
    batch_size: int = field(default=16, metadata={"help": "Clips per step (each seen num_views times)."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak AdamW lr (warmup then cosine)."})
    cr_weight: float = field(default=2.0, metadata={"help": "λ of Eq. 6 for the CR run (paper AS-20k: 2)."})
    num_views: int = field(default=2, metadata={"help": "Augmented views per clip, for both runs."})
    # View augmentations. The paper's AS-20k strength (mixup 0.5, SpecAugment 48/192, erasing 0.25) keeps a
    # 1M-parameter model trained from scratch for a few hundred steps at chance level (measured: val mAUC 0.52
    # after 300 steps), so the demo keeps SpecAugment (halved masks) and patch drop as what makes the views
    # differ and turns mixup and erasing off (settings of the paper's own ablations, Table 1 b-c).
    mixup_prob: float = field(default=0.0, metadata={"help": "Mixup probability (paper AS-20k: 0.5)."})
    erase_prob: float = field(default=0.0, metadata={"help": "Random erasing probability (paper AS-20k: 0.25)."})
    freq_mask: int = field(default=24, metadata={"help": "SpecAugment frequency mask, Mel bins (paper: 48)."})
    time_mask: int = field(default=96, metadata={"help": "SpecAugment time mask, frames (paper: 192)."})
    hidden_size: int = field(default=128, metadata={"help": "Width of the small from-scratch encoder."})
    num_hidden_layers: int = field(default=2, metadata={"help": "Transformer blocks."})
    num_attention_heads: int = field(default=4, metadata={"help": "Attention heads."})
    initializer_range: float = field(default=0.2, metadata={
        "help": "Init std. From scratch, 0.02 (ViT's) leaves patch content ~10x below the fixed sin-cos positions "
                "and a tiny model barely moves in a few hundred steps; 0.2 learns within the demo budget."})
    label_set: str = field(default="556", metadata={"help": "Training label set (evaluation uses the standard 527)."})
    tag_audio: List[str] = field(default_factory=list, metadata={
        "help": "Recordings to tag with the saved model (default: a held-out LibriSpeech clip and a held-out drum hit)."})
    num_threads: int = field(default=2, metadata={"help": "torch CPU threads."})

    def __post_init__(self):
        if self.quick:
            for key, value in QUICK.items():
                setattr(self, key, value)
        for name in ("seeds", "train_scenes", "validation_scenes", "test_scenes", "max_steps", "eval_steps",
                     "batch_size", "num_views", "num_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}.")
        if self.cr_weight <= 0:
            raise ValueError(f"--cr_weight must be > 0 for the CR run (the baseline uses 0), got {self.cr_weight}.")
        if self.num_views < 2:
            raise ValueError(f"--num_views must be >= 2: consistency compares views, got {self.num_views}.")


def build_data(args: DemoArguments, data_dir: Path) -> Dict[str, str]:
    """The embedded set, rebuilt only when the requested scenes or seed changed."""
    from .embedded import SoundDirs, build_embedded_audioset

    counts = {"train": args.train_scenes, "validation": args.validation_scenes, "test": args.test_scenes}
    meta_path = data_dir / "metadata.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta["seed"] == args.data_seed and {k: v["num_scenes"] for k, v in meta["splits"].items()} == counts:
            return {split: str(data_dir / f"{split}.parquet") for split in counts}
    return build_embedded_audioset(data_dir, num_scenes=counts, seed=args.data_seed, progress=True,
                                   sound_dirs=SoundDirs.debian(args.sounds_root))


def compute_features(args: DemoArguments, data: Dict[str, str]) -> Dict[str, list]:
    """Each split read back through ``load_audioset`` and turned into fbanks by the package's collator, once.

    The fbank has no randomness (every augmentation acts on features inside ``CRTrainer``), so computing it
    once per clip instead of once per epoch changes nothing but the time. Evaluation policy: a bad clip
    raises with its id rather than silently shrinking a split.
    """
    from tqdm.auto import tqdm

    from ..models.cr_audiomae import AudioMAEFeatureExtractor
    from ..data.audioset import load_audioset
    from ..data.collate import AudioClassificationCollator
    from ..data.quality import AudioQualityPolicy

    collator = AudioClassificationCollator(AudioMAEFeatureExtractor(), quality=AudioQualityPolicy(mode="eval"),
                                           long_audio="truncate")
    features = {}
    for split, path in data.items():
        rows, pending = [], []
        stream = load_audioset(data_files={split: path}, split=split, streaming=True, label_set=args.label_set)
        for row in tqdm(stream, desc=f"fbank {split}", total=getattr(args, f"{split}_scenes")):
            pending.append(row)
            if len(pending) == 32:
                batch = collator(pending)
                rows += [{"input_values": x, "labels": y} for x, y in zip(batch["input_values"], batch["labels"])]
                pending = []
        if pending:
            batch = collator(pending)
            rows += [{"input_values": x, "labels": y} for x, y in zip(batch["input_values"], batch["labels"])]
        features[split] = rows
    return features


def train_one(args: DemoArguments, method: str, seed: int, features: Dict[str, list], run_dir: Path) -> dict:
    """Train one model with ``CRTrainer``; return its history and validation/test metrics."""
    import torch
    from transformers import set_seed

    from ..models.cr_audiomae import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification
    from ..data.audioset import audioset_id2label
    from ..training.cr_trainer import CRTrainer, CRTrainingArguments
    from ..training.metrics import audioset_compute_metrics

    torch.set_num_threads(args.num_threads)
    set_seed(seed)
    id2label = audioset_id2label(args.label_set)
    config = CRAudioMAEConfig(
        hidden_size=args.hidden_size, num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=args.num_attention_heads, intermediate_size=4 * args.hidden_size,
        initializer_range=args.initializer_range,
        num_labels=len(id2label), id2label=id2label, label2id={v: k for k, v in id2label.items()})
    model = CRAudioMAEForAudioClassification(config)
    feature_extractor = AudioMAEFeatureExtractor()

    training_args = CRTrainingArguments(
        output_dir=str(run_dir), seed=seed, max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size, learning_rate=args.learning_rate, warmup_steps=0.1,
        layer_decay=1.0,  # from scratch: no pretrained lower layers to protect
        cr_weight=args.cr_weight if method == "cr" else 0.0, num_views=args.num_views, mixup_prob=args.mixup_prob,
        erase_prob=args.erase_prob, freq_mask=args.freq_mask, time_mask=args.time_mask,
        eval_strategy="steps", eval_steps=args.eval_steps, save_strategy="steps", save_steps=args.eval_steps,
        save_total_limit=1, load_best_model_at_end=True, metric_for_best_model="mAP", greater_is_better=True,
        logging_steps=max(1, args.eval_steps // 3), report_to="none", use_cpu=True, dataloader_num_workers=0)
    trainer = CRTrainer(
        model=model, args=training_args, train_dataset=features["train"], eval_dataset=features["validation"],
        processing_class=feature_extractor, compute_metrics=audioset_compute_metrics())
    started = time.perf_counter()
    train_output = trainer.train()
    train_seconds = time.perf_counter() - started
    test = trainer.evaluate(features["test"], metric_key_prefix="test")
    best_dir = run_dir / "best"
    trainer.save_model(str(best_dir))  # the best checkpoint by validation mAP (load_best_model_at_end)
    best_val = float(trainer.state.best_metric)
    metrics = {"eval_mAP": best_val, **{k: float(v) for k, v in test.items() if isinstance(v, (int, float))}}
    (best_dir / "eval_results.json").write_text(json.dumps(metrics, indent=1))
    return {"method": method, "seed": seed, "best_val_mAP": best_val, "test_mAP": float(test["test_mAP"]),
            "test_mAUC": float(test.get("test_mAUC", float("nan"))), "train_seconds": round(train_seconds, 1),
            "global_step": trainer.state.global_step, "train_loss": float(train_output.training_loss),
            "model_dir": str(best_dir),
            "log_history": trainer.state.log_history}


def summarize(runs: List[dict]) -> Dict[str, dict]:
    summary = {}
    for method in METHODS:
        values = np.array([r["test_mAP"] for r in runs if r["method"] == method])
        vals = np.array([r["best_val_mAP"] for r in runs if r["method"] == method])
        summary[method] = {"test_mAP_mean": float(values.mean()), "test_mAP_std": float(values.std()),
                           "val_mAP_mean": float(vals.mean()), "seeds": int(values.size)}
    return summary


def format_table(summary: Dict[str, dict], args: DemoArguments) -> str:
    names = {"baseline": "baseline (λ=0)", "cr": f"CR (λ={args.cr_weight:g}, {args.num_views} views)"}
    lines = ["| method | seeds | test mAP | best val mAP |", "|---|---|---|---|"]
    for method, s in summary.items():
        test = f"{s['test_mAP_mean']:.4f}" + (f" ± {s['test_mAP_std']:.4f}" if s["seeds"] > 1 else "")
        lines.append(f"| {names[method]} | {s['seeds']} | {test} | {s['val_mAP_mean']:.4f} |")
    return "\n".join(lines)


def default_tag_audio(data_dir: Path) -> List[str]:
    """A real recording no model saw (LibriSpeech, outside every split) and a test-split drum hit."""
    meta = json.loads((data_dir / "metadata.json").read_text())
    drums = [p for p in meta["splits"]["test"]["source_recordings"] if "/hydrogen/" in p]
    return [str(HELD_OUT_SPEECH)] + [str(p) for p in drums[:1]]


def write_hub_folder(run: dict, output: Path) -> Path:
    """The selected model as a self-contained Hub folder (weights, remote code, auto_map, card)."""
    from .. import hub

    # The card names the data the numbers were measured on (a local set, so no Hub dataset id), not AudioSet.
    return hub.build_hub_folder(hub.PushToHubArguments(
        model_dir=run["model_dir"], repo_id=f"local/cr-audiomae-demo-{run['method']}", output_dir=str(output),
        eval_file=str(Path(run["model_dir"]) / "eval_results.json"), dataset=DEMO_DATASET, dry_run=True))


def tag_in_fresh_process(model_dir: Path, audio: List[str], top_k: int = 5) -> List[dict]:
    """Run ``tag_audio.py`` as a plain script in a new interpreter: only transformers + the folder's code."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    # The child runs inside the model folder (so nothing of the caller's working directory is importable), so
    # every path must be absolute: a relative `demo_output/model` would be looked up under itself and then
    # taken for a Hub id.
    model_dir = Path(model_dir).resolve()
    command = [sys.executable, str(Path(__file__).with_name("tag_audio.py")), str(model_dir), str(top_k),
               *(str(Path(a).resolve()) for a in audio)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=str(model_dir), timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"tagging {', '.join(audio)} in a fresh process failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_demo(args: DemoArguments) -> dict:
    from .plots import plot_comparison, plot_training_curves

    started = time.perf_counter()
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    data = build_data(args, output / "data")
    features = compute_features(args, data)
    runs = []
    for seed in range(args.seed, args.seed + args.seeds):
        for method in METHODS:
            print(f"\n=== {method} (seed {seed}): {args.max_steps} steps of {args.batch_size} clips x {args.num_views} views")
            runs.append(train_one(args, method, seed, features, output / "runs" / f"{method}-seed{seed}"))
    summary = summarize(runs)
    table = format_table(summary, args)
    plots = {
        "training_curves": str(plot_training_curves({f"{r['method']}/seed{r['seed']}": r["log_history"] for r in runs},
                                                    output / "training_curves.png")),
        "comparison": str(plot_comparison({m: [r["test_mAP"] for r in runs if r["method"] == m] for m in METHODS},
                                          output / "comparison.png")),
    }
    best = max(runs, key=lambda r: r["best_val_mAP"])
    hub_dir = write_hub_folder(best, output / "model")
    tags = tag_in_fresh_process(hub_dir, args.tag_audio or default_tag_audio(output / "data"))
    report = {"arguments": asdict(args), "table": table, "summary": summary, "plots": plots,
              "selected_model": {"method": best["method"], "seed": best["seed"], "best_val_mAP": best["best_val_mAP"],
                                 "folder": str(hub_dir)},
              "tagging": tags, "runs": [{k: v for k, v in r.items() if k != "log_history"} for r in runs],
              "wall_seconds": round(time.perf_counter() - started, 1)}
    (output / "metrics.json").write_text(json.dumps(report, indent=1))
    print("\nTest mAP on the embedded set (standard 527 columns, classes with a positive):\n" + table)
    print(f"\nSelected by validation mAP: {best['method']} (seed {best['seed']}) -> {hub_dir}")
    for result in tags:
        top = ", ".join(f"{t['label']} {t['score']:.2f}" for t in result["tags"])
        print(f"Top tags for {Path(result['audio']).name} (fresh process, {result['model_class']} from remote code): {top}")
    print(f"Plots: {plots['training_curves']}, {plots['comparison']}; metrics: {output / 'metrics.json'}; "
          f"wall time {report['wall_seconds']:.0f} s")
    return report
