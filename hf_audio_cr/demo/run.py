"""The end-to-end demo: embedded real-audio AudioSet-style data -> a pretrained encoder -> baseline and CR
fine-tuning with ``CRTrainer`` over several seeds -> test mAP table (mean ± std, paired difference ± its
standard error), plots and JSON -> Hub-ready folder -> tagging in a fresh process.

The default is the setting the CR study (``hf_audio_cr.experiments.cr_study``, README "Consistency
regularisation, measured") supports on validation: its "pretrained λ=0" vs "pretrained λ=2" rows, same data,
model and budget (pretraining was the one change that moved the score; no CR variant beat λ = 0 on
validation, so λ keeps the paper's 2 without ramp-up). Baseline and CR differ only in the consistency weight:
both train ``num_views`` augmented views per clip with the same seed, data order and step budget, so the table
isolates the λ·L_CR term of Eq. 6.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..experiments.cr_study import paired_difference, scored_columns

logger = logging.getLogger(__name__)

# `--quick`: a smoke check of every stage (pretraining, 2 seeds for the standard error, tagging), not a measurement.
QUICK = dict(seeds=2, train_scenes=8, pretrain_scenes=8, validation_scenes=6, test_scenes=6, max_steps=4,
             eval_steps=2, batch_size=4, scene_seconds=1.28, time_mask=12, hidden_size=32, num_hidden_layers=1,
             num_attention_heads=2)
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
    seeds: int = field(default=3, metadata={"help": "Train each method with seeds seed..seed+N-1; report mean ± std "
                                                  "and the paired difference ± its standard error (>= 2 for one)."})
    seed: int = field(default=0, metadata={"help": "First training seed (model init, augmentation, data order)."})
    data_seed: int = field(default=0, metadata={"help": "Seed of the embedded scenes and of the source split."})
    sounds_root: str = field(default="/", metadata={
        "help": "Root under which the Debian packages' recordings are found (usr/share/hydrogen/..., "
                "usr/share/asterisk/...): / for the installed packages, or a folder made with `dpkg -x`."})
    # Data and budget of the CR study (cr_study.StudyArguments), so the demo's table is the study's setting.
    scene_seconds: float = field(default=2.56, metadata={"help": "Length of a scene (256 fbank frames; AudioSet: 10 s)."})
    extended_classes: bool = field(default=True, metadata={
        "help": "Add the study's six hand-percussion / drum-machine classes (more scored classes)."})
    train_scenes: int = field(default=64, metadata={"help": "Labeled training scenes baseline and CR fine-tune on."})
    pretrain_scenes: int = field(default=256, metadata={
        "help": "Other training scenes (same training recordings, other mixtures) a λ=0 model is trained on first "
                "(with the first seed); baseline and CR start from it. 0: both from scratch."})
    validation_scenes: int = field(default=128, metadata={"help": "Validation scenes (checkpoint and model choice)."})
    test_scenes: int = field(default=480, metadata={"help": "Test scenes (the table), scored once per run."})
    max_steps: int = field(default=200, metadata={"help": "Optimizer steps per run (same budget for both methods)."})
    eval_steps: int = field(default=50, metadata={"help": "Validate and checkpoint every N steps."})
    batch_size: int = field(default=8, metadata={"help": "Clips per step (each seen num_views times)."})
    learning_rate: float = field(default=3e-3, metadata={"help": "Peak AdamW lr (warmup then cosine; the study's, chosen on validation)."})
    layer_decay: float = field(default=0.75, metadata={
        "help": "Layer-wise lr decay when fine-tuning from the pretrained encoder (AudioMAE's recipe; 1 from scratch)."})
    cr_weight: float = field(default=2.0, metadata={"help": "λ of Eq. 6 for the CR run (paper AS-20k: 2)."})
    cr_rampup_ratio: float = field(default=0.0, metadata={
        "help": "Ramp λ up from 0 over this share of the steps (0: the paper's constant λ; the study found no gain)."})
    num_views: int = field(default=2, metadata={"help": "Augmented views per clip, for both runs."})
    # View augmentations. The paper's AS-20k strength (mixup 0.5, SpecAugment 48/192, erasing 0.25) keeps a
    # small model trained from scratch for a few hundred steps at chance level (measured: val mAUC 0.52
    # after 300 steps), so the demo keeps SpecAugment (smaller masks) and patch drop as what makes the views
    # differ and turns mixup and erasing off (settings of the paper's own ablations, Table 1 b-c).
    mixup_prob: float = field(default=0.0, metadata={"help": "Mixup probability (paper AS-20k: 0.5)."})
    erase_prob: float = field(default=0.0, metadata={"help": "Random erasing probability (paper AS-20k: 0.25)."})
    freq_mask: int = field(default=24, metadata={"help": "SpecAugment frequency mask, Mel bins (paper: 48)."})
    time_mask: int = field(default=24, metadata={"help": "SpecAugment time mask, frames (paper: 192 of 1024 frames)."})
    hidden_size: int = field(default=64, metadata={"help": "Width of the small encoder."})
    num_hidden_layers: int = field(default=2, metadata={"help": "Transformer blocks."})
    num_attention_heads: int = field(default=4, metadata={"help": "Attention heads."})
    initializer_range: float = field(default=0.2, metadata={
        "help": "Init std. From scratch, 0.02 (ViT's) leaves patch content ~10x below the fixed sin-cos positions "
                "and a tiny model barely moves in a few hundred steps; 0.2 learns within the demo budget."})
    label_set: str = field(default="556", metadata={"help": "Training label set (evaluation uses the standard 527)."})
    tag_audio: list[str] = field(default_factory=list, metadata={
        "help": "Recordings to tag with the saved model (default: a held-out LibriSpeech clip and a held-out drum hit)."})
    num_threads: int = field(default=1, metadata={
        "help": "torch CPU threads (the study's 1: on a shared 2-core machine 2 threads measured 4x slower per step)."})

    def __post_init__(self):
        if self.quick:
            for key, value in QUICK.items():
                setattr(self, key, value)
        for name in ("seeds", "train_scenes", "validation_scenes", "test_scenes", "max_steps", "eval_steps",
                     "batch_size", "num_views", "num_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}.")
        if self.pretrain_scenes < 0:
            raise ValueError(f"--pretrain_scenes must be >= 0 (0: from scratch), got {self.pretrain_scenes}.")
        if self.cr_weight <= 0:
            raise ValueError(f"--cr_weight must be > 0 for the CR run (the baseline uses 0), got {self.cr_weight}.")
        if self.num_views < 2:
            raise ValueError(f"--num_views must be >= 2: consistency compares views, got {self.num_views}.")


def frames(args: DemoArguments) -> int:
    """fbank frames per scene (10 ms hop): the model's and the feature extractor's ``max_length``."""
    return int(round(args.scene_seconds * 100))


def feature_extractor(args: DemoArguments):
    """The extractor saved with the model: windows of the training length, 50 % overlap, for longer files."""
    from ..models.cr_audiomae import AudioMAEFeatureExtractor

    return AudioMAEFeatureExtractor(max_length=frames(args), window_hop=frames(args) // 2)


def build_data(args: DemoArguments, data_dir: Path) -> dict[str, str]:
    """The embedded set (the pretraining pool is the end of the train split), rebuilt only when the requested
    scenes, length or seed changed."""
    from .embedded import SoundDirs, build_embedded_audioset

    counts = {"train": args.train_scenes + args.pretrain_scenes, "validation": args.validation_scenes,
              "test": args.test_scenes}
    meta_path = data_dir / "metadata.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if (meta["seed"] == args.data_seed and meta["scene_seconds"] == args.scene_seconds
                and meta.get("extended", False) == args.extended_classes
                and {k: v["num_scenes"] for k, v in meta["splits"].items()} == counts):
            return {split: str(data_dir / f"{split}.parquet") for split in counts}
    return build_embedded_audioset(data_dir, num_scenes=counts, seed=args.data_seed, progress=True,
                                   scene_seconds=args.scene_seconds, extended=args.extended_classes,
                                   sound_dirs=SoundDirs.debian(args.sounds_root))


def compute_features(args: DemoArguments, data: dict[str, str]) -> dict[str, list]:
    """Each split read back through ``load_audioset`` and turned into fbanks by the package's collator, once;
    the train split is cut into the labeled scenes and the pretraining pool.

    The fbank has no randomness (every augmentation acts on features inside ``CRTrainer``), so computing it
    once per clip instead of once per epoch changes nothing but the time. Evaluation policy: a bad clip
    raises with its id rather than silently shrinking a split.
    """
    from tqdm.auto import tqdm

    from ..data.audioset import load_audioset
    from ..data.collate import AudioClassificationCollator
    from ..data.quality import AudioQualityPolicy

    collator = AudioClassificationCollator(feature_extractor(args), quality=AudioQualityPolicy(mode="eval"),
                                           long_audio="truncate")
    features = {}
    for split, path in data.items():
        rows, pending = [], []
        stream = load_audioset(data_files={split: path}, split=split, streaming=True, label_set=args.label_set)
        total = args.train_scenes + args.pretrain_scenes if split == "train" else getattr(args, f"{split}_scenes")
        for row in tqdm(stream, desc=f"fbank {split}", total=total):
            pending.append(row)
            if len(pending) == 32:
                batch = collator(pending)
                rows += [{"input_values": x, "labels": y} for x, y in zip(batch["input_values"], batch["labels"])]
                pending = []
        if pending:
            batch = collator(pending)
            rows += [{"input_values": x, "labels": y} for x, y in zip(batch["input_values"], batch["labels"])]
        features[split] = rows
    # the study's split: the first train_scenes are the labeled set, the rest the pretraining pool
    features["pool"] = features["train"][args.train_scenes:]
    features["train"] = features["train"][: args.train_scenes]
    return features


def train_one(args: DemoArguments, method: str, seed: int, features: dict[str, list], run_dir: Path,
              init_from: Path | None = None) -> dict:
    """Train one model with ``CRTrainer`` (from ``init_from``, a saved model folder, when given); return its
    history and validation/test metrics. ``method="pretrain"``: λ = 0 on the pool."""
    import torch
    from transformers import set_seed

    from ..data.audioset import audioset_id2label
    from ..models.cr_audiomae import CRAudioMAEConfig, CRAudioMAEForAudioClassification
    from ..training.cr_trainer import CRTrainer, CRTrainingArguments
    from ..training.metrics import audioset_compute_metrics

    torch.set_num_threads(args.num_threads)
    set_seed(seed)
    if init_from is not None:
        model = CRAudioMAEForAudioClassification.from_pretrained(str(init_from))
    else:
        id2label = audioset_id2label(args.label_set)
        config = CRAudioMAEConfig(
            hidden_size=args.hidden_size, num_hidden_layers=args.num_hidden_layers,
            num_attention_heads=args.num_attention_heads, intermediate_size=4 * args.hidden_size,
            initializer_range=args.initializer_range, max_length=frames(args),
            num_labels=len(id2label), id2label=id2label, label2id={v: k for k, v in id2label.items()})
        model = CRAudioMAEForAudioClassification(config)

    training_args = CRTrainingArguments(
        output_dir=str(run_dir), seed=seed, max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=64, learning_rate=args.learning_rate, warmup_steps=0.1,
        # AudioMAE's fine-tuning recipe from the pretrained encoder; from scratch no lower layers to protect
        layer_decay=args.layer_decay if init_from is not None else 1.0,
        cr_weight=args.cr_weight if method == "cr" else 0.0,
        cr_rampup_ratio=args.cr_rampup_ratio if method == "cr" else 0.0, num_views=args.num_views,
        mixup_prob=args.mixup_prob, erase_prob=args.erase_prob, freq_mask=args.freq_mask, time_mask=args.time_mask,
        eval_strategy="steps", eval_steps=args.eval_steps, save_strategy="steps", save_steps=args.eval_steps,
        save_total_limit=1, load_best_model_at_end=True, metric_for_best_model="mAP", greater_is_better=True,
        logging_steps=max(1, args.eval_steps // 3), report_to="none", use_cpu=True, dataloader_num_workers=0)
    trainer = CRTrainer(
        model=model, args=training_args, train_dataset=features["pool" if method == "pretrain" else "train"],
        eval_dataset=features["validation"], processing_class=feature_extractor(args),
        compute_metrics=audioset_compute_metrics())
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
            "init": str(init_from) if init_from is not None else "scratch", "model_dir": str(best_dir),
            "log_history": trainer.state.log_history}


def summarize(runs: list[dict]) -> dict[str, dict]:
    """Per method: mean ± sample std over seeds of test and best-validation mAP; ``"cr - baseline"``: the
    paired difference (same seed) ± its standard error, std(d, ddof=1) / sqrt(n), as in the CR study."""

    summary = {}
    for method in METHODS:
        group = [r for r in runs if r["method"] == method]
        row = {"seeds": len(group)}
        for key, name in (("test_mAP", "test_mAP"), ("best_val_mAP", "val_mAP")):
            values = np.array([r[key] for r in group])
            row[f"{name}_mean"] = float(values.mean())
            row[f"{name}_std"] = float(values.std(ddof=1)) if values.size > 1 else None
        summary[method] = row
    paired = [{"setting": r["method"], "seed": r["seed"], "test": r["test_mAP"], "best_val": r["best_val_mAP"]}
              for r in runs if r["method"] in METHODS]
    summary["cr - baseline"] = {"test": paired_difference(paired, "cr", "baseline", "test"),
                                "validation": paired_difference(paired, "cr", "baseline", "best_val")}
    return summary


def _pm(mean: float, error: float | None, sign: str = "") -> str:
    return f"{mean:{sign}.4f}" + (f" ± {error:.4f}" if error is not None else "")


def format_table(summary: dict[str, dict], args: DemoArguments, pretrain: dict | None = None) -> str:
    start = "pretrained" if pretrain else "scratch"
    names = {"baseline": f"baseline (λ=0, {start})",
             "cr": f"CR (λ={args.cr_weight:g}, {args.num_views} views, {start})"}
    lines = ["| method | seeds | test mAP (mean ± std) | best val mAP (mean ± std) |", "|---|---|---|---|"]
    if pretrain:
        lines.append(f"| pretrained encoder (λ=0 on {args.pretrain_scenes} other scenes) | 1 | "
                     f"{pretrain['test_mAP']:.4f} | {pretrain['best_val_mAP']:.4f} |")
    for method in METHODS:
        s = summary[method]
        lines.append(f"| {names[method]} | {s['seeds']} | {_pm(s['test_mAP_mean'], s['test_mAP_std'])} | "
                     f"{_pm(s['val_mAP_mean'], s['val_mAP_std'])} |")
    d, v = summary["cr - baseline"]["test"], summary["cr - baseline"]["validation"]
    lines.append(f"| CR − baseline (paired by seed, ± SE) | {d['seeds']} | {_pm(d['mean'], d['se_paired'], '+')} | "
                 f"{_pm(v['mean'], v['se_paired'], '+')} |")
    return "\n".join(lines)


def verdict(summary: dict[str, dict], args: DemoArguments, pretrain: dict | None = None) -> list[str]:
    """What this run shows and what it does not, in words, from its own numbers (2 SE as the threshold)."""
    d = summary["cr - baseline"]["test"]
    n, delta, se = d["seeds"], d["mean"], d["se_paired"]
    if not se:
        shows = (f"CR − baseline = {delta:+.4f} test mAP on {n} seed(s), with no standard error: this run cannot "
                 "tell the methods apart (use --seeds 3 or more).")
    elif delta <= -2 * se:
        shows = (f"CR does not beat the BCE baseline here: it scores {-delta:.4f} ± {se:.4f} test mAP lower "
                 f"({abs(delta) / se:.1f} standard errors, {n} seeds paired).")
    elif delta >= 2 * se:
        shows = (f"CR scores {delta:.4f} ± {se:.4f} test mAP above the BCE baseline ({delta / se:.1f} standard "
                 f"errors, {n} seeds paired).")
    else:
        shows = (f"CR and the BCE baseline are not separated: CR − baseline = {delta:+.4f} ± {se:.4f} test mAP "
                 f"({abs(delta) / se:.1f} standard errors, {n} seeds paired); CR does not beat BCE in this run.")
    start = (f"fine-tuned from an encoder trained (λ = 0, supervised) on {args.pretrain_scenes} other scenes of "
             "the same training recordings" if pretrain else "trained from scratch")
    return [
        f"Shows: {shows}",
        f"Setting: the CR study's {'pretrained' if pretrain else 'from-scratch'} setting at toy scale — a "
        f"{args.num_hidden_layers}-block, width-{args.hidden_size} CR-AudioMAE {start}, {args.train_scenes} labeled "
        f"{args.scene_seconds:g} s scenes, {args.max_steps} steps; checkpoint and published model chosen on "
        "validation, test scored once per run.",
        "Does not show: the paper's setting (ViT-B pretrained by AudioMAE on AudioSet-2M, fine-tuned on AS-20k/2M), "
        "or that CR helps or hurts there; nor anything beyond these recordings. The full comparison (λ, views, "
        "ramp-up, semi-supervised, FSDD) is the CR study: `make cr-study`, README \"Consistency regularisation, "
        "measured\".",
    ]


def default_tag_audio(data_dir: Path) -> list[str]:
    """A real recording no model saw (LibriSpeech, outside every split) and a test-split drum hit."""
    meta = json.loads((data_dir / "metadata.json").read_text())
    hits = [p for p in meta["splits"]["test"]["source_recordings"] if "/hydrogen/" in p]
    drums = [p for p in hits if "/GMRockKit/" in p] or hits  # the demo's own kit before the extended classes' kits
    return [str(HELD_OUT_SPEECH)] + [str(p) for p in drums[:1]]


def write_hub_folder(run: dict, output: Path) -> Path:
    """The selected model as a self-contained Hub folder (weights, remote code, auto_map, card)."""
    from .. import hub

    # The card names the data the numbers were measured on (a local set, so no Hub dataset id), not AudioSet.
    return hub.build_hub_folder(hub.PushToHubArguments(
        model_dir=run["model_dir"], repo_id=f"local/cr-audiomae-demo-{run['method']}", output_dir=str(output),
        eval_file=str(Path(run["model_dir"]) / "eval_results.json"), dataset=DEMO_DATASET, dry_run=True))


def tag_in_fresh_process(model_dir: Path, audio: list[str], top_k: int = 5) -> list[dict]:
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
    pretrain, init_from = None, None
    if args.pretrain_scenes:
        # one pretrained encoder (first seed) for every seed, like the paper's single AudioMAE checkpoint
        print(f"\n=== pretraining (λ=0, seed {args.seed}): {args.max_steps} steps on {args.pretrain_scenes} other scenes")
        pretrain = train_one(args, "pretrain", args.seed, features, output / "runs" / f"pretrain-seed{args.seed}")
        init_from = Path(pretrain["model_dir"])
    runs = []
    for seed in range(args.seed, args.seed + args.seeds):
        for method in METHODS:
            print(f"\n=== {method} (seed {seed}): {args.max_steps} steps of {args.batch_size} clips x {args.num_views} views")
            runs.append(train_one(args, method, seed, features, output / "runs" / f"{method}-seed{seed}", init_from))
    summary = summarize(runs)
    table = format_table(summary, args, pretrain)
    conclusion = verdict(summary, args, pretrain)
    histories = {f"{r['method']}/seed{r['seed']}": r["log_history"] for r in runs}
    if pretrain:
        histories["pretrain/seed" + str(args.seed)] = pretrain["log_history"]
    plots = {
        "training_curves": str(plot_training_curves(histories, output / "training_curves.png")),
        "comparison": str(plot_comparison({m: [r["test_mAP"] for r in runs if r["method"] == m] for m in METHODS},
                                          output / "comparison.png")),
    }
    best = max(runs, key=lambda r: r["best_val_mAP"])  # chosen on validation, never on test
    hub_dir = write_hub_folder(best, output / "model")
    tags = tag_in_fresh_process(hub_dir, args.tag_audio or default_tag_audio(output / "data"))
    report = {"arguments": asdict(args), "table": table, "conclusion": conclusion, "summary": summary,
              "plots": plots,
              "selected_model": {"method": best["method"], "seed": best["seed"], "best_val_mAP": best["best_val_mAP"],
                                 "folder": str(hub_dir)},
              "tagging": tags,
              "pretrain": {k: v for k, v in pretrain.items() if k != "log_history"} if pretrain else None,
              "runs": [{k: v for k, v in r.items() if k != "log_history"} for r in runs],
              "wall_seconds": round(time.perf_counter() - started, 1)}
    (output / "metrics.json").write_text(json.dumps(report, indent=1))
    scored = len(scored_columns(features["test"]))
    print(f"\nTest mAP on the embedded set ({len(features['test'])} test scenes, standard 527 columns with a positive: "
          f"{scored} classes):\n" + table + "\n\n" + "\n".join(conclusion))
    print(f"\nSelected by validation mAP: {best['method']} (seed {best['seed']}) -> {hub_dir}")
    for result in tags:
        top = ", ".join(f"{t['label']} {t['score']:.2f}" for t in result["tags"])
        print(f"Top tags for {Path(result['audio']).name} (fresh process, {result['model_class']} from remote code): {top}")
    print(f"Plots: {plots['training_curves']}, {plots['comparison']}; metrics: {output / 'metrics.json'}; "
          f"wall time {report['wall_seconds']:.0f} s")
    return report
