"""Hub publishing: a self-contained model folder (weights, remote code, ``auto_map``, feature extractor)
plus a model card rendered from the package's ``model_cards/`` templates with ``huggingface_hub.ModelCard``,
then ``HfApi`` upload.

Every fact in the card comes from the run, never typed by hand: ``eval_results`` from the run's evaluation JSON
as ``Trainer`` writes it (``eval_results.json`` / ``all_results.json`` via ``save_metrics``, or the last
evaluation in ``trainer_state.json``); sizes and parameter counts from the model and its config; the evaluation
set from ``--dataset`` or, when the labels say so, from ``config.id2label``. A card never names a set it cannot
vouch for.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

MODEL_CARDS_DIR = Path(__file__).resolve().parent / "model_cards"  # package data: works from an installed wheel
EVAL_FILES = ("eval_results.json", "all_results.json", "test_results.json")
# metric key (without the eval_/test_ prefix, lower case) -> (card metric type, display name)
CARD_METRICS = {"map": ("mAP", "mAP"), "mauc": ("roc_auc", "mAUC"), "d_prime": ("d_prime", "d-prime"),
                "accuracy": ("accuracy", "Accuracy")}


@dataclass(frozen=True)
class CardDataset:
    """The evaluation set a card names: display name, Hub dataset id (``None`` for a local set) and Hub config."""

    name: str
    hub_id: str | None = None
    config: str | None = None
    tag: str | None = None


# Evaluation sets the papers report, as `--dataset` shortcuts (the keys are finetune_hear.py's task names).
DATASETS = {
    "audioset": CardDataset("AudioSet", "agkphysics/AudioSet", tag="audioset"),
    "esc50": CardDataset("ESC-50", "ashraq/esc50", tag="esc50"),
    "speech_commands_v1": CardDataset("Speech Commands v1 (v0.01)", "google/speech_commands", "v0.01", "speech-commands"),
    "speech_commands_v2": CardDataset("Speech Commands v2 (v0.02)", "google/speech_commands", "v0.02", "speech-commands"),
    "voxceleb1": CardDataset("VoxCeleb1", "ProgramComputer/voxceleb", tag="voxceleb"),
    # shipped in the package (hf_audio_cr/data/resources); named by its source repository, release v1.0.9
    "fsdd": CardDataset("Free Spoken Digit Dataset (FSDD v1.0.9)", "Jakobovski/free-spoken-digit-dataset", tag="fsdd"),
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Per model family: card template and tags.
FAMILIES = {
    "cr_audiomae": {"template": "cr_audiomae.md", "tags": ["cr-audiomae"]},
    "hear": {"template": "hear.md", "tags": ["hear"]},
}


@dataclass
class PushToHubArguments:
    """Command-line arguments of ``scripts/push_to_hub.py``."""

    model_dir: str = field(metadata={"help": "A save_pretrained folder or a Trainer output dir (best/last checkpoint)."})
    repo_id: str = field(metadata={"help": "Hub repository, e.g. 'user/cr-audiomae-as20k'."})
    output_dir: str | None = field(default=None, metadata={"help": "Where the folder is built (default outputs/hub/<name>)."})
    eval_file: str | None = field(default=None, metadata={"help": "Evaluation JSON (default: found in the run dir)."})
    dataset: str | None = field(default=None, metadata={
        "help": f"Evaluation set the card names: a shortcut {list(DATASETS)}, any Hub dataset id ('owner/name'), or a "
                "description of a local set in words (e.g. 'our 2024 bird recordings'). Default: inferred from the "
                "model's labels (AudioSet, ESC-50, Speech Commands v2 35 words), else no set is named."})
    eval_split: str = field(default="validation", metadata={"help": "Split the run's eval_* metrics were measured on."})
    training_set: str | None = field(default=None, metadata={"help": "Training data named in the card, e.g. 'AS-20k'."})
    license: str = field(default="apache-2.0", metadata={"help": "Licence identifier for the card."})
    base_model: str | None = field(default=None, metadata={"help": "Hub id of the checkpoint fine-tuned from."})
    template: str | None = field(default=None, metadata={
        "help": "Jinja card template (default: the package's hf_audio_cr/model_cards/<family>.md)."})
    private: bool = field(default=False, metadata={"help": "Create the repository as private."})
    revision: str | None = field(default=None, metadata={"help": "Branch to upload to (created if missing)."})
    dry_run: bool = field(default=False, metadata={"help": "Build the folder and card, upload nothing."})


def find_model_folder(path: str | Path) -> Path:
    """The weights folder of ``path``: itself if it holds ``config.json``, else the Trainer's best checkpoint,
    else its latest ``checkpoint-N``."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model_dir {path}: no such folder; pass a save_pretrained folder or Trainer output dir.")
    if (path / "config.json").is_file():
        return path
    state = path / "trainer_state.json"
    if state.is_file():
        best = json.loads(state.read_text()).get("best_model_checkpoint")
        if best and (Path(best) / "config.json").is_file():
            return Path(best)
    from .training.checkpoints import list_checkpoints

    checkpoints = [p for p in list_checkpoints(path) if (p / "config.json").is_file()]
    if not checkpoints:
        raise FileNotFoundError(f"model_dir {path}: no config.json and no checkpoint-N/config.json; "
                                "save the model with trainer.save_model() or model.save_pretrained().")
    return checkpoints[-1]


def read_eval_metrics(run_dir: str | Path, eval_file: str | Path | None = None) -> dict[str, float]:
    """Evaluation metrics of a run: ``eval_file`` if given, else the first of ``EVAL_FILES`` in the run dir
    (or its parent, for a checkpoint), else the last evaluation logged in ``trainer_state.json``."""
    if eval_file is not None:
        if not Path(eval_file).is_file():
            raise FileNotFoundError(f"eval_file {eval_file}: no such file.")
        return _evaluation_keys(json.loads(Path(eval_file).read_text()), source=str(eval_file))
    run_dir = Path(run_dir)
    for folder in (run_dir, run_dir.parent):
        for name in EVAL_FILES:
            if (folder / name).is_file():
                metrics = _evaluation_keys(json.loads((folder / name).read_text()), source=str(folder / name))
                if metrics:
                    return metrics
        state = folder / "trainer_state.json"
        if state.is_file():
            evaluations = [e for e in json.loads(state.read_text()).get("log_history", [])
                           if any(k.startswith("eval_") for k in e)]
            if evaluations:
                return _evaluation_keys(evaluations[-1], source=str(state))
    return {}


def _evaluation_keys(record: dict, source: str) -> dict[str, float]:
    if not isinstance(record, dict):
        raise ValueError(f"{source}: expected a JSON object of metrics, got {type(record).__name__}.")
    return {k: float(v) for k, v in record.items()
            if k.startswith(("eval_", "test_")) and isinstance(v, (int, float)) and not isinstance(v, bool)}


def resolve_dataset(dataset: str | None, config=None) -> CardDataset | None:
    """What ``--dataset`` names: a shortcut of ``DATASETS``, a Hub id, an existing local path or a description in
    words. Without it, the set is inferred from ``config.id2label`` where the labels identify it; else ``None``."""
    if dataset is None:
        return _dataset_from_labels(config) if config is not None else None
    dataset = dataset.strip()
    if dataset in DATASETS:
        return DATASETS[dataset]
    if dataset == "speech_commands":
        raise ValueError("dataset 'speech_commands': say which release, speech_commands_v1 (v0.01, 12 classes in "
                         "HEAR) or speech_commands_v2 (v0.02, 35 classes).")
    if Path(dataset).expanduser().exists():
        return CardDataset(f"local data ({dataset})")
    if _HUB_ID.match(dataset):
        return CardDataset(dataset, dataset)
    if any(c.isspace() for c in dataset):
        return CardDataset(dataset)
    raise ValueError(
        f"dataset {dataset!r}: not a shortcut {list(DATASETS)}, not a Hub id 'owner/name' and no such local path; "
        "write the Hub id with its owner (e.g. 'ILSVRC/imagenet-1k') or describe a local set in words.")


def _dataset_from_labels(config) -> CardDataset | None:
    labels = [config.id2label[i] for i in sorted(config.id2label)] if getattr(config, "id2label", None) else []
    if not labels:
        return None
    from .data.audioset import NUM_STANDARD_CLASSES, audioset_id2label
    from .data.downstream import ESC50_CLASSES, SPEECH_COMMANDS_35_CLASSES

    if labels[:NUM_STANDARD_CLASSES] == list(audioset_id2label("527").values()):
        return DATASETS["audioset"]
    if labels == list(ESC50_CLASSES):
        return DATASETS["esc50"]
    if labels == list(SPEECH_COMMANDS_35_CLASSES):  # the 35-word task exists in v2 only; 12 classes fit both
        return DATASETS["speech_commands_v2"]
    return None


def card_eval_results(metrics: dict[str, float], dataset: CardDataset | str | None,
                      eval_split: str = "validation") -> list[EvalResult]:
    """``EvalResult`` entries (model-index) for the card metrics in ``metrics`` (``eval_*`` were measured on
    ``eval_split``, ``test_*`` on the test split). The model-index needs a Hub dataset id: for a local or unnamed
    set there are none (the card's text still lists the numbers)."""
    if isinstance(dataset, str) or dataset is None:
        dataset = resolve_dataset(dataset)
    if dataset is None or dataset.hub_id is None:
        return []
    return [EvalResult(task_type="audio-classification", task_name="Audio Classification", dataset_type=dataset.hub_id,
                       dataset_name=dataset.name, dataset_config=dataset.config, dataset_split=row["split"],
                       metric_type=row["type"], metric_name=row["name"], metric_value=row["value"])
            for row in metric_rows(metrics, eval_split)]


def metric_rows(metrics: dict[str, float], eval_split: str = "validation") -> list[dict]:
    """The card metrics of ``metrics`` as rows ``{split, type, name, value}`` for the card's table."""
    rows = []
    for key, value in metrics.items():
        split_name, _, name = key.partition("_")
        if name.lower() in CARD_METRICS:
            metric_type, metric_name = CARD_METRICS[name.lower()]
            rows.append({"split": "test" if split_name == "test" else eval_split, "type": metric_type,
                         "name": metric_name, "value": round(value, 4)})
    return rows


def model_family(config) -> str:
    if config.model_type not in FAMILIES:
        raise ValueError(f"model_type {config.model_type!r} has no card template; expected one of {list(FAMILIES)}.")
    return config.model_type


def _count(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def model_facts(model, feature_extractor=None) -> dict:
    """Architecture facts for the card, read from the model and its config (never the paper's defaults)."""
    config = model.config
    facts = {"num_parameters": model.num_parameters(), "parameters": _count(model.num_parameters())}
    if config.model_type == "hear":
        hop = getattr(feature_extractor, "hop_length", 160)
        rate = getattr(feature_extractor, "sampling_rate", 16000)
        token_seconds = config.frames_per_token * hop / rate
        facts.update(window_seconds=round(config.window_length * token_seconds, 2),
                     overlap_seconds=round(config.window_overlap * token_seconds, 2),
                     # the extractor's window for long recordings (None: whole clips); older extractors: 30 s
                     clip_seconds=getattr(feature_extractor, "max_seconds", 30.0),
                     clip_hop_seconds=getattr(feature_extractor, "window_hop_seconds", 15.0))
    elif config.model_type == "cr_audiomae":
        shift_ms = getattr(feature_extractor, "frame_shift_ms", 10.0)
        facts.update(window_seconds=round(config.max_length * shift_ms / 1000, 2),
                     hop_seconds=round(getattr(feature_extractor, "window_hop", config.max_length) * shift_ms / 1000, 2),
                     long_audio=getattr(feature_extractor, "long_audio", "window"))
    return facts


def build_model_card(config, args: PushToHubArguments, metrics: dict[str, float], training: dict,
                     facts: dict | None = None) -> ModelCard:
    """Render the family's template with metadata and evaluation results taken from the run; ``facts``
    (``model_facts``) carries what the config alone does not say (parameter count, window seconds)."""
    family = model_family(config)
    dataset = resolve_dataset(args.dataset, config)
    model_name = args.repo_id.split("/")[-1]
    eval_results = card_eval_results(metrics, dataset, args.eval_split)
    rows = metric_rows(metrics, args.eval_split)
    tags = ["audio", "audio-classification", "custom_code", *FAMILIES[family]["tags"]]
    if dataset is not None and dataset.tag:
        tags.append(dataset.tag)
    card_data = ModelCardData(
        model_name=model_name, license=args.license, library_name="transformers",
        pipeline_tag="audio-classification", datasets=[dataset.hub_id] if dataset and dataset.hub_id else None,
        base_model=args.base_model, metrics=sorted({r["type"] for r in rows}) or None,
        eval_results=eval_results or None, tags=tags,
    )
    template = Path(args.template) if args.template else MODEL_CARDS_DIR / FAMILIES[family]["template"]
    if not template.is_file():
        raise FileNotFoundError(f"card template {template}: not found; pass --template FILE (a Jinja template).")
    return ModelCard.from_template(
        card_data, template_path=str(template), repo_id=args.repo_id, model_name=model_name,
        dataset_name=dataset.name if dataset else None, dataset_on_hub=bool(dataset and dataset.hub_id),
        metric_rows=rows, eval_results=eval_results, training=training, facts=facts or {},
        num_labels=config.num_labels, multi_label=config.problem_type == "multi_label_classification",
        config=config.to_dict(), training_set=args.training_set,
    )


def training_summary(run_dir: Path) -> dict:
    """Steps/epochs from ``trainer_state.json`` (the run dir or its parent), for the card's training section."""
    for folder in (run_dir, run_dir.parent):
        if (folder / "trainer_state.json").is_file():
            state = json.loads((folder / "trainer_state.json").read_text())
            return {"global_step": state.get("global_step"), "epoch": state.get("epoch")}
    return {}


def build_hub_folder(args: PushToHubArguments) -> Path:
    """Re-save the trained model so the folder is self-contained (safetensors, ``auto_map``, the model's
    code files, feature extractor) and write ``README.md``. Returns the folder."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from . import models  # noqa: F401  registers the Auto classes, so save_pretrained writes code + auto_map

    source = find_model_folder(args.model_dir)
    if not (source / "preprocessor_config.json").is_file():
        raise FileNotFoundError(f"{source}: no preprocessor_config.json; save the feature extractor with the model "
                                "(Trainer(processing_class=feature_extractor) or feature_extractor.save_pretrained).")
    model = AutoModelForAudioClassification.from_pretrained(source)
    extractor = AutoFeatureExtractor.from_pretrained(source)
    family = model_family(model.config)
    metrics = read_eval_metrics(args.model_dir, args.eval_file)
    output = Path(args.output_dir or Path("outputs/hub") / args.repo_id.split("/")[-1])
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    extractor.save_pretrained(output)
    saved = json.loads((output / "config.json").read_text())
    if "AutoModelForAudioClassification" not in saved.get("auto_map", {}):
        raise RuntimeError(f"{output}/config.json has no auto_map for AutoModelForAudioClassification; "
                           f"the {family} classes must call register_for_auto_class.")
    card = build_model_card(model.config, args, metrics, training_summary(Path(args.model_dir)),
                            facts=model_facts(model, extractor))
    card.save(output / "README.md")
    return output


def push_folder(folder: str | Path, repo_id: str, private: bool = False, revision: str | None = None) -> str:
    """Create the repository (and branch) if needed and upload the folder; returns the commit URL."""
    api = HfApi()
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision,
                               commit_message="Upload model, remote code and model card (hf_audio_cr)")
    return str(commit)


def card_code_blocks(card_text: str) -> list[str]:
    """The ```python blocks of a rendered card (the usage snippets, which the tests run)."""
    return re.findall(r"```python\n(.*?)```", card_text, flags=re.S)
