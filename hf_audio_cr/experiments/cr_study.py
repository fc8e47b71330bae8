"""Where consistency regularisation helps in this package: a seeded study of CR-AudioMAE's CR (Sadhu & Wang).

Two real-audio tasks, every setting trained with seeds ``seed .. seed + seeds - 1`` (a seed fixes the initial
weights, the data order and the augmentation draws, and is shared by all settings, so differences are paired):

* ``scenes`` -- the embedded AudioSet-style multi-label scenes (``hf_audio_cr.demo.embedded``, with the six
  extra percussion / drum-machine classes), sigmoid CR (Eq. 2-5). A small labeled set (``labeled_scenes``), a
  disjoint pool of training scenes (``pool_scenes``, same training recordings, other mixtures) that is the
  unlabeled stream of Eq. 7 and the pretraining set of the "pretrained" settings, and validation / test scenes
  built only from recordings no training scene contains.
* ``fsdd`` -- the Free Spoken Digit Dataset shipped in the package (``load_fsdd``: validation = repetitions 5-9,
  test = 0-4), single-label, CR in its softmax form (CR-CTC's KL, chosen from ``problem_type``).

Protocol: every run keeps the checkpoint with the best validation score (evaluated every ``eval_steps``); the
setting the README recommends is chosen on validation means only; the test split is scored once per run with
that checkpoint. Every run is written to ``runs.jsonl`` (resumable: rerunning the same command reuses finished
runs) and ``results.json``; ``results.md`` holds the table (mean +- std over seeds, paired difference +- its
standard error) and ``results.png`` the plot with error bars.
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

QUICK = dict(seeds=2, labeled_scenes=12, pool_scenes=16, validation_scenes=8, test_scenes=12, max_steps=2,
             eval_steps=2, batch_size=4, fsdd_max_steps=2, fsdd_eval_steps=2, fsdd_train_clips=40,
             fsdd_eval_clips=20, hidden_size=32, num_hidden_layers=1, scene_seconds=1.28, time_mask=12)

# name -> CRTrainingArguments overrides and study options ("init": "pretrained"; "semi": Eq. 7).
SCENE_SETTINGS = {
    "scratch λ=0": dict(cr_weight=0.0),
    "scratch λ=2": dict(cr_weight=2.0),
    "scratch λ=2 k=6": dict(cr_weight=2.0, num_views=6),
    "scratch λ=0.5": dict(cr_weight=0.5),
    "scratch λ=2 ramp-up": dict(cr_weight=2.0, cr_rampup_ratio=0.3),
    "pretrained λ=0": dict(cr_weight=0.0, init="pretrained"),
    "pretrained λ=2": dict(cr_weight=2.0, init="pretrained"),
    "semi Eq.7 λ1=1.5 λ2=1": dict(cr_weight=1.5, unlabeled_cr_weight=1.0, semi=True),
}
FSDD_SETTINGS = {
    "fsdd λ=0": dict(cr_weight=0.0),
    "fsdd λ=2": dict(cr_weight=2.0),
}
# (what the paper claims, setting, reference): the table's differences.
COMPARISONS = (
    ("Table 1a: λ=2 vs λ=0 (from scratch)", "scratch λ=2", "scratch λ=0"),
    ("Table 1d: k=6 vs k=2 views (λ=2)", "scratch λ=2 k=6", "scratch λ=2"),
    ("Table 4, pretrained: λ=2 vs λ=0", "pretrained λ=2", "pretrained λ=0"),
    ("Table 3/4: semi-supervised Eq. 7 vs supervised CR", "semi Eq.7 λ1=1.5 λ2=1", "scratch λ=2"),
    ("Table 3/4: semi-supervised Eq. 7 vs λ=0", "semi Eq.7 λ1=1.5 λ2=1", "scratch λ=0"),
    ("candidate: λ=0.5 vs λ=0 (from scratch)", "scratch λ=0.5", "scratch λ=0"),
    ("candidate: λ=2 with ramp-up vs λ=0", "scratch λ=2 ramp-up", "scratch λ=0"),
    ("pretraining: pretrained λ=0 vs scratch λ=0", "pretrained λ=0", "scratch λ=0"),
    ("FSDD, softmax CR: λ=2 vs λ=0", "fsdd λ=2", "fsdd λ=0"),
)
PRETRAIN = "pretraining (λ=0 on the pool)"


@dataclass
class StudyArguments:
    """Command-line arguments of ``scripts/reproduce_cr.py``."""

    output_dir: str = field(default="outputs/cr_study", metadata={"help": "Data, runs, results.json/.md/.png."})
    data_dir: str | None = field(default=None, metadata={
        "help": "Where the embedded scenes are written (default: OUTPUT_DIR/scenes_data); reused when they match."})
    quick: bool = field(default=False, metadata={"help": f"A tiny end-to-end pass (seconds per run): {QUICK}."})
    tasks: list[str] = field(default_factory=lambda: ["scenes", "fsdd"], metadata={"help": "scenes and/or fsdd."})
    settings: list[str] = field(default_factory=list, metadata={"help": "Only these settings (default: all)."})
    seeds: int = field(default=3, metadata={"help": "Seeds per setting (>= 2 for a standard error)."})
    seed: int = field(default=0, metadata={"help": "First seed."})
    data_seed: int = field(default=0, metadata={"help": "Seed of the embedded scenes and their source split."})
    scene_seconds: float = field(default=2.56, metadata={"help": "Length of a scene (256 fbank frames; AudioSet: 10 s)."})
    labeled_scenes: int = field(default=64, metadata={"help": "Labeled training scenes (the small set)."})
    pool_scenes: int = field(default=256, metadata={
        "help": "Further training scenes: unlabeled stream of Eq. 7 and pretraining set of the pretrained settings."})
    validation_scenes: int = field(default=128, metadata={"help": "Validation scenes (checkpoint and setting choice)."})
    test_scenes: int = field(default=480, metadata={"help": "Test scenes (scored once per run)."})
    max_steps: int = field(default=200, metadata={"help": "Optimizer steps per scenes run (pretraining too)."})
    eval_steps: int = field(default=50, metadata={"help": "Validate every N steps; the best checkpoint is kept."})
    batch_size: int = field(default=8, metadata={"help": "Labeled clips per step (each seen num_views times)."})
    learning_rate: float = field(default=3e-3, metadata={
        "help": "Peak AdamW lr (paper AS-20k: 1e-3; 3e-3 chosen on validation for this small model, see README)."})
    unlabeled_ratio: int = field(default=1, metadata={
        "help": "Unlabeled clips per labeled clip in Eq. 7 (paper: 4; 1 here to fit the CPU budget: 2x the cost of a k=2 run, not 5x)."})
    # View augmentation of the demo (measured there: the AS-20k strength keeps a from-scratch toy model at
    # chance), masks scaled to the 512-frame scenes.
    mixup_prob: float = field(default=0.0, metadata={"help": "Mixup probability (paper AS-20k: 0.5)."})
    erase_prob: float = field(default=0.0, metadata={"help": "Random erasing probability (paper AS-20k: 0.25)."})
    freq_mask: int = field(default=24, metadata={"help": "SpecAugment frequency mask, Mel bins (paper: 48)."})
    time_mask: int = field(default=24, metadata={"help": "SpecAugment time mask, frames (paper: 192 of 1024; demo 96)."})
    hidden_size: int = field(default=64, metadata={"help": "Width of the small CR-AudioMAE encoder."})
    num_hidden_layers: int = field(default=2, metadata={"help": "Transformer blocks."})
    num_attention_heads: int = field(default=4, metadata={"help": "Attention heads."})
    initializer_range: float = field(default=0.2, metadata={"help": "Init std (the demo's from-scratch choice)."})
    fsdd_max_steps: int = field(default=250, metadata={"help": "Optimizer steps per FSDD run."})
    fsdd_eval_steps: int = field(default=50, metadata={"help": "FSDD validation interval."})
    fsdd_batch_size: int = field(default=16, metadata={"help": "FSDD clips per step."})
    fsdd_train_clips: int = field(default=0, metadata={"help": "Use only the first N training clips (0: all 2,400)."})
    fsdd_eval_clips: int = field(default=0, metadata={"help": "Use only N validation/test clips (0: all 300 each)."})
    fsdd_max_length: int = field(default=128, metadata={"help": "FSDD fbank frames (1.28 s; clips average 0.44 s)."})
    fsdd_time_mask: int = field(default=24, metadata={"help": "FSDD SpecAugment time mask, frames."})
    num_threads: int = field(default=1, metadata={
        "help": "torch CPU threads (1: on a shared 2-core machine 2 threads measured 4x slower per step)."})

    def __post_init__(self):
        if self.quick:
            for key, value in QUICK.items():
                setattr(self, key, value)
        unknown = set(self.tasks) - {"scenes", "fsdd"}
        if unknown:
            raise ValueError(f"--tasks has unknown entries {sorted(unknown)}; choose from scenes, fsdd.")
        known = set(SCENE_SETTINGS) | set(FSDD_SETTINGS)
        if set(self.settings) - known:
            raise ValueError(f"--settings has unknown entries {sorted(set(self.settings) - known)}; choose from {sorted(known)}.")
        for name in ("seeds", "labeled_scenes", "pool_scenes", "validation_scenes", "test_scenes", "max_steps",
                     "eval_steps", "batch_size", "fsdd_max_steps", "fsdd_eval_steps", "fsdd_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}.")

    def wanted(self, name: str) -> bool:
        return not self.settings or name in self.settings


# ------------------------------------------------------------------------------------------------ data

def scene_features(args: StudyArguments, data_dir: Path) -> dict[str, list]:
    """Embedded scenes (extended classes) -> fbank rows ``{"input_values", "labels"}`` per split, computed once:
    every augmentation acts on features inside the trainer."""
    from tqdm.auto import tqdm

    from ..data.audioset import load_audioset
    from ..data.collate import AudioClassificationCollator
    from ..data.quality import AudioQualityPolicy
    from ..demo.embedded import build_embedded_audioset
    from ..models.cr_audiomae import AudioMAEFeatureExtractor

    counts = {"train": args.labeled_scenes + args.pool_scenes, "validation": args.validation_scenes,
              "test": args.test_scenes}
    meta_path = data_dir / "metadata.json"
    fresh = True
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        fresh = not (meta["seed"] == args.data_seed and meta["scene_seconds"] == args.scene_seconds
                     and {k: v["num_scenes"] for k, v in meta["splits"].items()} == counts)
    if fresh:
        build_embedded_audioset(data_dir, num_scenes=counts, seed=args.data_seed, scene_seconds=args.scene_seconds,
                                extended=True, progress=True)
    frames = int(round(args.scene_seconds * 100))
    extractor = AudioMAEFeatureExtractor(max_length=frames)
    collator = AudioClassificationCollator(extractor, quality=AudioQualityPolicy(mode="eval"), long_audio="truncate")
    out = {}
    for split, count in counts.items():
        rows, pending = [], []
        stream = load_audioset(data_files={split: str(data_dir / f"{split}.parquet")}, split=split, streaming=True)
        for row in tqdm(stream, desc=f"fbank {split}", total=count):
            pending.append(row)
            if len(pending) == 32:
                rows += _collate_rows(collator, pending)
                pending = []
        if pending:
            rows += _collate_rows(collator, pending)
        out[split] = rows
    return {"labeled": out["train"][: args.labeled_scenes], "pool": out["train"][args.labeled_scenes:],
            "validation": out["validation"], "test": out["test"]}


def _collate_rows(collator, rows) -> list:
    batch = collator(rows)
    return [{"input_values": x, "labels": y} for x, y in zip(batch["input_values"], batch["labels"])]


def fsdd_features(args: StudyArguments) -> dict[str, list]:
    """The shipped FSDD (digit task) -> fbank rows ``{"input_values", "labels"}`` (class ids)."""
    from ..data.collate import AudioClassificationCollator
    from ..data.downstream import load_fsdd
    from ..data.quality import AudioQualityPolicy
    from ..models.cr_audiomae import AudioMAEFeatureExtractor

    splits = load_fsdd(task="digit")
    limits = {"train": args.fsdd_train_clips, "validation": args.fsdd_eval_clips, "test": args.fsdd_eval_clips}
    extractor = AudioMAEFeatureExtractor(max_length=args.fsdd_max_length)
    collator = AudioClassificationCollator(extractor, quality=AudioQualityPolicy(mode="eval"), label_column="label",
                                           long_audio="truncate")
    out = {}
    for split in ("train", "validation", "test"):
        dataset = splits[split]
        if limits[split]:  # a spread-out subset (every speaker and digit), not the first files
            dataset = dataset.shuffle(seed=0).select(range(min(limits[split], len(dataset))))
        rows = []
        for start in range(0, len(dataset), 64):
            batch = collator([dataset[i] for i in range(start, min(start + 64, len(dataset)))])
            rows += [{"input_values": x, "labels": y} for x, y in zip(batch["input_values"], batch["labels"])]
        out[split] = rows
    return out


# ------------------------------------------------------------------------------------------------ runs

def _config(args: StudyArguments, task: str, frames: int):
    from ..data.audioset import audioset_id2label
    from ..models.cr_audiomae import CRAudioMAEConfig

    if task == "fsdd":
        id2label = {i: str(i) for i in range(10)}
        problem, frames = "single_label_classification", args.fsdd_max_length
    else:
        id2label, problem = audioset_id2label("556"), "multi_label_classification"
    return CRAudioMAEConfig(
        hidden_size=args.hidden_size, num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=args.num_attention_heads, intermediate_size=4 * args.hidden_size,
        initializer_range=args.initializer_range, max_length=frames, num_labels=len(id2label), id2label=id2label,
        label2id={v: k for k, v in id2label.items()}, problem_type=problem)


def scored_columns(rows: list) -> np.ndarray:
    """The standard-527 columns with a positive in ``rows`` (the classes mAP is averaged over)."""
    from ..data.audioset import NUM_STANDARD_CLASSES

    labels = np.stack([r["labels"].numpy() for r in rows])[:, :NUM_STANDARD_CLASSES]
    return np.flatnonzero(labels.max(axis=0) > 0)


def prediction_spread(logits: np.ndarray, task: str, columns: np.ndarray | None = None) -> dict:
    """Collapse diagnostics on clean inputs: per-class std across clips of probabilities and logits, mean over
    the scored classes (FSDD: all 10). Near 0: the model answers the same whatever the clip."""
    if task == "fsdd":
        z = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    else:
        logits = logits[:, columns]
        probs = 1.0 / (1.0 + np.exp(-logits))
    return {"prob_std": float(probs.std(axis=0).mean()), "logit_std": float(logits.std(axis=0).mean())}


def train_run(args: StudyArguments, task: str, name: str, spec: dict, seed: int, data: dict[str, list],
              run_dir: Path) -> dict:
    """One training run with ``CRTrainer`` (``SemiSupervisedCRTrainer`` for Eq. 7); validation picks the
    checkpoint, then the test split is scored once."""
    import torch
    from transformers import set_seed

    from ..models.cr_audiomae import CRAudioMAEForAudioClassification
    from ..training.cr_config import CRTrainingArguments
    from ..training.cr_trainer import CRTrainer, SemiSupervisedCRTrainer
    from ..training.metrics import audioset_compute_metrics, compute_accuracy

    torch.set_num_threads(args.num_threads)
    set_seed(seed)
    spec = dict(spec)
    init, semi = spec.pop("init", None), spec.pop("semi", False)
    fsdd = task == "fsdd"
    frames = data["validation"][0]["input_values"].shape[0]
    config = _config(args, task, frames)
    if init == "pretrained":
        # one pretrained encoder (first seed) for every seed, like the paper's single AudioMAE checkpoint
        model = CRAudioMAEForAudioClassification.from_pretrained(str(run_dir.parent / f"pretrain-seed{args.seed}" / "best"))
    else:
        model = CRAudioMAEForAudioClassification(config)
    metric = "accuracy" if fsdd else "mAP"
    steps = args.fsdd_max_steps if fsdd else args.max_steps
    eval_steps = args.fsdd_eval_steps if fsdd else args.eval_steps
    batch = args.fsdd_batch_size if fsdd else args.batch_size
    training_args = CRTrainingArguments(
        output_dir=str(run_dir), seed=seed, max_steps=steps, per_device_train_batch_size=batch,
        per_device_eval_batch_size=64, learning_rate=args.learning_rate, warmup_steps=0.1,
        layer_decay=0.75 if init == "pretrained" else 1.0,  # AudioMAE's fine-tuning recipe; from scratch: none
        num_views=spec.pop("num_views", 2), mixup_prob=args.mixup_prob, erase_prob=args.erase_prob,
        freq_mask=args.freq_mask, time_mask=args.fsdd_time_mask if fsdd else args.time_mask,
        unlabeled_ratio=args.unlabeled_ratio, eval_strategy="steps", eval_steps=eval_steps, save_strategy="steps",
        save_steps=eval_steps, save_total_limit=1, load_best_model_at_end=True, metric_for_best_model=metric,
        greater_is_better=True, logging_steps=max(1, eval_steps // 3), report_to="none", use_cpu=True,
        dataloader_num_workers=0, disable_tqdm=True, **spec)
    train_set = data["train"] if fsdd else (data["pool"] if name == PRETRAIN else data["labeled"])
    from ..models.cr_audiomae import AudioMAEFeatureExtractor

    kwargs = dict(model=model, args=training_args, train_dataset=train_set, eval_dataset=data["validation"],
                  processing_class=AudioMAEFeatureExtractor(),  # its mean/std give SpecAugment's raw-zero fill
                  compute_metrics=compute_accuracy if fsdd else audioset_compute_metrics())
    if semi:
        trainer = SemiSupervisedCRTrainer(**kwargs, unlabeled_dataset=[{"input_values": r["input_values"]}
                                                                       for r in data["pool"]])
    else:
        trainer = CRTrainer(**kwargs)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    best_val = float(trainer.state.best_metric)
    test = trainer.predict(data["test"], metric_key_prefix="test")
    train_eval = trainer.evaluate(train_set, metric_key_prefix="train")
    logits = test.predictions[0] if isinstance(test.predictions, tuple) else test.predictions
    spread = prediction_spread(np.asarray(logits), task, None if fsdd else scored_columns(data["test"]))
    trainer.save_model(str(run_dir / "best"))
    for checkpoint in run_dir.glob("checkpoint-*"):  # keep the selected weights only
        shutil.rmtree(checkpoint, ignore_errors=True)
    curve_keys = ("loss", "bce_loss", "cr_loss", "unlabeled_cr_loss", "cr_weight", "pred_std", "logit_std",
                  "view_gap", "view_agreement")
    curves = [{k: h[k] for k in ("step", *curve_keys) if k in h} for h in trainer.state.log_history if "loss" in h]
    evals = [{"step": h["step"], metric: h[f"eval_{metric}"]} for h in trainer.state.log_history if f"eval_{metric}" in h]
    last = curves[-1] if curves else {}
    return {
        "task": task, "setting": name, "seed": seed, "metric": metric, "best_val": best_val,
        "test": float(test.metrics[f"test_{metric}"]), "train": float(train_eval[f"train_{metric}"]),
        "train_val_gap": float(train_eval[f"train_{metric}"]) - best_val,
        "test_prob_std": spread["prob_std"], "test_logit_std": spread["logit_std"],
        "final_bce_loss": last.get("bce_loss"), "final_cr_loss": last.get("cr_loss"),
        "final_view_agreement": last.get("view_agreement"), "final_view_gap": last.get("view_gap"),
        "train_seconds": round(seconds, 1), "global_step": trainer.state.global_step, "curves": curves,
        "validation_curve": evals, "model_dir": str(run_dir / "best"),
    }


# ------------------------------------------------------------------------------------------------ study

def _fingerprint(args: StudyArguments) -> str:
    keep = {k: v for k, v in asdict(args).items() if k not in ("output_dir", "data_dir", "tasks", "settings", "num_threads")}
    return hashlib.sha1(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]


def plan(args: StudyArguments) -> list[tuple]:
    """(task, setting, spec, seed) in run order; pretraining first so the pretrained settings can start from it."""
    runs = []
    for seed in range(args.seed, args.seed + args.seeds):
        if "scenes" in args.tasks:
            scene = {n: s for n, s in SCENE_SETTINGS.items() if args.wanted(n)}
            if seed == args.seed and any(s.get("init") == "pretrained" for s in scene.values()):
                runs.append(("scenes", PRETRAIN, dict(cr_weight=0.0), seed))
            runs += [("scenes", n, s, seed) for n, s in scene.items()]
        if "fsdd" in args.tasks:
            runs += [("fsdd", n, s, seed) for n, s in FSDD_SETTINGS.items() if args.wanted(n)]
    return runs


def summarize(runs: list[dict]) -> dict[str, dict]:
    summary = {}
    for name in dict.fromkeys(r["setting"] for r in runs):
        group = [r for r in runs if r["setting"] == name]
        row = {"task": group[0]["task"], "metric": group[0]["metric"], "seeds": len(group)}
        for key in ("best_val", "test", "train_val_gap", "test_prob_std", "test_logit_std", "final_cr_loss",
                    "final_bce_loss", "final_view_agreement", "train_seconds"):
            values = np.array([r[key] for r in group if r.get(key) is not None], dtype=float)
            row[f"{key}_mean"] = float(values.mean()) if values.size else None
            row[f"{key}_std"] = float(values.std(ddof=1)) if values.size > 1 else None
        summary[name] = row
    return summary


def paired_difference(runs: list[dict], setting: str, reference: str, key: str = "test") -> dict | None:
    """Mean over seeds of (setting - reference) on the same seed, its standard error std(d, ddof=1)/sqrt(n),
    and the unpaired (Welch) standard error for comparison."""
    a = {r["seed"]: r[key] for r in runs if r["setting"] == setting}
    b = {r["seed"]: r[key] for r in runs if r["setting"] == reference}
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    d = np.array([a[s] - b[s] for s in seeds])
    n = len(seeds)
    se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    va, vb = np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])
    welch = float(math.sqrt(va.var(ddof=1) / n + vb.var(ddof=1) / n)) if n > 1 else None
    return {"mean": float(d.mean()), "se_paired": se, "se_welch": welch, "seeds": n,
            "z": float(d.mean() / se) if se else None}


def _pm(mean, std, digits=3):
    if mean is None:
        return "–"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def format_tables(summary: dict[str, dict], differences: list[dict], selection: dict) -> str:
    lines = ["| setting | task (metric) | seeds | val (best) | test | train − val | test prob std | final L_CR | view agreement |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['task']} ({s['metric']}) | {s['seeds']} | {_pm(s['best_val_mean'], s['best_val_std'])} | "
            f"{_pm(s['test_mean'], s['test_std'])} | {_pm(s['train_val_gap_mean'], s['train_val_gap_std'])} | "
            f"{_pm(s['test_prob_std_mean'], s['test_prob_std_std'])} | {_pm(s['final_cr_loss_mean'], None, 4)} | "
            f"{_pm(s['final_view_agreement_mean'], None, 2)} |")
    lines += ["", "| comparison | Δ test (paired, ± SE) | Δ / SE | Δ validation (± SE) |", "|---|---|---|---|"]
    for d in differences:
        t, v = d["test"], d["validation"]
        z = f"{t['z']:+.1f}" if t.get("z") is not None else "–"
        lines.append(f"| {d['claim']} | {t['mean']:+.4f} ± {t['se_paired'] or float('nan'):.4f} | {z} | "
                     f"{v['mean']:+.4f} ± {v['se_paired'] or float('nan'):.4f} |")
    if selection:
        names = {"scenes": "scenes from scratch", "fsdd": "FSDD"}
        chosen = "; ".join(f"{names[task]}: **{name}**" for task, name in selection.items())
        lines += ["", f"Chosen on validation (highest mean best-validation score over seeds): {chosen}"]
    return "\n".join(lines)


def plot_results(summary: dict[str, dict], runs: list[dict], path: Path) -> Path:
    from ..extras import agg_pyplot

    plt = agg_pyplot("The CR study's plots")

    tasks = [t for t in ("scenes", "fsdd") if any(s["task"] == t for s in summary.values())]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        names = [n for n, s in summary.items() if s["task"] == task]
        x = np.arange(len(names))
        for offset, key, color, label in ((-0.18, "best_val", "tab:gray", "validation (best)"),
                                          (0.18, "test", "tab:blue", "test")):
            means = [summary[n][f"{key}_mean"] for n in names]
            stds = [summary[n][f"{key}_std"] or 0.0 for n in names]
            ax.bar(x + offset, means, 0.34, yerr=stds, capsize=3, color=color, alpha=0.75, label=label)
            for i, n in enumerate(names):
                values = [r[key] for r in runs if r["setting"] == n]
                ax.scatter(np.full(len(values), x[i] + offset), values, s=8, color="black", zorder=3)
        metric = summary[names[0]]["metric"]
        low = min(r[k] for r in runs if r["task"] == task for k in ("best_val", "test"))
        ax.set_ylim(max(0.0, low - 0.05), None)
        ax.set_xticks(x, [n.replace("fsdd ", "") for n in names], rotation=30, ha="right", fontsize=8)
        ax.set(ylabel=metric, title=f"{'embedded scenes' if task == 'scenes' else 'FSDD digits'}: mean ± std over seeds")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_diagnostics(runs: list[dict], path: Path) -> Path:
    """Training curves averaged over seeds: supervised loss, L_CR, prediction std across the batch's clips and
    view agreement, against the step, for every setting."""
    from ..extras import agg_pyplot

    plt = agg_pyplot("The CR study's plots")

    keys = (("bce_loss", "supervised loss (BCE / CE)"), ("cr_loss", "L_CR (unweighted)"),
            ("pred_std", "pred_std (batch, view 1)"), ("view_agreement", "view agreement (top class)"))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.8))
    for name in dict.fromkeys(r["setting"] for r in runs):
        group = [r for r in runs if r["setting"] == name]
        for ax, (key, _) in zip(axes, keys):
            steps = sorted({c["step"] for r in group for c in r["curves"] if key in c})
            if not steps:
                continue
            means = [np.mean([c[key] for r in group for c in r["curves"] if c["step"] == st and key in c]) for st in steps]
            ax.plot(steps, means, label=name, alpha=0.85, linestyle="--" if name.startswith("fsdd") else "-")
    for ax, (_, title) in zip(axes, keys):
        ax.set(xlabel="step", title=title)
    axes[0].set_yscale("log")
    axes[-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_study(args: StudyArguments) -> dict:
    started = time.perf_counter()
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(args)
    done_path = output / "runs.jsonl"
    finished = {}
    if done_path.is_file():
        for line in done_path.read_text().splitlines():
            record = json.loads(line)
            if record.get("fingerprint") == fingerprint:
                finished[(record["setting"], record["seed"])] = record
    data = {}  # features of a task, computed on its first unfinished run (a rerun of a finished study needs none)

    def task_data(task: str) -> dict[str, list]:
        if task not in data:
            data[task] = (scene_features(args, Path(args.data_dir) if args.data_dir else output / "scenes_data")
                          if task == "scenes" else fsdd_features(args))
        return data[task]

    runs = []
    todo = plan(args)
    for index, (task, name, spec, seed) in enumerate(todo, 1):
        if (name, seed) in finished:
            runs.append(finished[(name, seed)])
            continue
        slug = name.replace(" ", "_").replace("=", "").replace("λ", "l").replace(".", "")
        run_dir = output / "runs" / (f"pretrain-seed{seed}" if name == PRETRAIN else f"{slug}-seed{seed}")
        print(f"[{index}/{len(todo)}] {name} seed {seed}", flush=True)
        record = train_run(args, task, name, spec, seed, task_data(task), run_dir)
        record["fingerprint"] = fingerprint
        print(f"    val {record['best_val']:.4f} test {record['test']:.4f} prob std {record['test_prob_std']:.3f} "
              f"({record['train_seconds']:.0f} s)", flush=True)
        with open(done_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        runs.append(record)
    summary = summarize(runs)
    differences = []
    for claim, setting, reference in COMPARISONS:
        test = paired_difference(runs, setting, reference, "test")
        if test is not None:
            differences.append({"claim": claim, "setting": setting, "reference": reference, "test": test,
                                "validation": paired_difference(runs, setting, reference, "best_val")})
    selection = {}
    for task, prefix in (("scenes", "scratch"), ("fsdd", "fsdd")):
        names = [n for n, s in summary.items() if s["task"] == task and n.startswith(prefix)]
        if names:
            selection[task] = max(names, key=lambda n: summary[n]["best_val_mean"])
    table = format_tables(summary, differences, selection)
    plot = plot_results(summary, runs, output / "results.png")
    plot_diagnostics(runs, output / "diagnostics.png")
    report = {"arguments": asdict(args), "fingerprint": fingerprint, "summary": summary,
              "differences": differences, "selected_on_validation": selection, "table": table, "plot": str(plot),
              "runs": [{k: v for k, v in r.items() if k != "fingerprint"} for r in runs],
              "wall_seconds": round(time.perf_counter() - started, 1)}
    (output / "results.json").write_text(json.dumps(report, indent=1))
    (output / "results.md").write_text(table + "\n")
    print("\n" + table)
    print(f"\nresults: {output / 'results.json'}, {output / 'results.md'}, {plot}; wall {report['wall_seconds']:.0f} s")
    return report
