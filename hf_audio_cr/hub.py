"""Hub publishing: a self-contained model folder (weights, remote code, ``auto_map``, feature extractor)
plus a model card rendered from ``model_cards/`` with ``huggingface_hub.ModelCard``, then ``HfApi`` upload.

The card's ``eval_results`` come from the run's evaluation JSON as ``Trainer`` writes it
(``eval_results.json`` / ``all_results.json`` via ``save_metrics``, or the last evaluation in
``trainer_state.json``), never typed by hand.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

MODEL_CARDS_DIR = Path(__file__).resolve().parent.parent / "model_cards"
EVAL_FILES = ("eval_results.json", "all_results.json", "test_results.json")
# metric key (without the eval_/test_ prefix, lower case) -> (card metric type, display name)
CARD_METRICS = {"map": ("mAP", "mAP"), "mauc": ("roc_auc", "mAUC"), "d_prime": ("d_prime", "d-prime"),
                "accuracy": ("accuracy", "Accuracy")}
# Evaluation sets the papers report, as `--dataset` keys: (Hub dataset id, display name).
DATASETS = {
    "audioset": ("agkphysics/AudioSet", "AudioSet"),
    "esc50": ("ashraq/esc50", "ESC-50"),
    "speech_commands": ("google/speech_commands", "Speech Commands v2"),
    "voxceleb1": ("ProgramComputer/voxceleb", "VoxCeleb1"),
}
# Per model family: card template, default dataset, tags.
FAMILIES = {
    "cr_audiomae": {"template": "cr_audiomae.md", "dataset": "audioset", "tags": ["cr-audiomae", "audioset"]},
    "hear": {"template": "hear.md", "dataset": "esc50", "tags": ["hear"]},
}


@dataclass
class PushToHubArguments:
    """Command-line arguments of ``scripts/push_to_hub.py``."""

    model_dir: str = field(metadata={"help": "A save_pretrained folder or a Trainer output dir (best/last checkpoint)."})
    repo_id: str = field(metadata={"help": "Hub repository, e.g. 'user/cr-audiomae-as20k'."})
    output_dir: str | None = field(default=None, metadata={"help": "Where the folder is built (default outputs/hub/<name>)."})
    eval_file: str | None = field(default=None, metadata={"help": "Evaluation JSON (default: found in the run dir)."})
    dataset: str | None = field(default=None, metadata={"help": f"Evaluation set for the card, one of {list(DATASETS)}."})
    eval_split: str = field(default="validation", metadata={"help": "Split the run's eval_* metrics were measured on."})
    training_set: str | None = field(default=None, metadata={"help": "Training data named in the card, e.g. 'AS-20k'."})
    license: str = field(default="apache-2.0", metadata={"help": "Licence identifier for the card."})
    base_model: str | None = field(default=None, metadata={"help": "Hub id of the checkpoint fine-tuned from."})
    template: str | None = field(default=None, metadata={"help": "Card template (default: model_cards/<family>.md)."})
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
    checkpoints = sorted((p for p in path.glob("checkpoint-*") if (p / "config.json").is_file()),
                         key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1)
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


def card_eval_results(metrics: dict[str, float], dataset: str, eval_split: str = "validation") -> list[EvalResult]:
    """``EvalResult`` entries (model-index) for the card metrics in ``metrics`` (``eval_*`` were measured on
    ``eval_split``, ``test_*`` on the test split)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset {dataset!r}: unknown; choose from {list(DATASETS)}.")
    dataset_id, dataset_name = DATASETS[dataset]
    results = []
    for key, value in metrics.items():
        split_name, _, name = key.partition("_")
        if name.lower() in CARD_METRICS:
            metric_type, metric_name = CARD_METRICS[name.lower()]
            results.append(EvalResult(task_type="audio-classification", task_name="Audio Classification",
                                      dataset_type=dataset_id, dataset_name=dataset_name,
                                      dataset_split="test" if split_name == "test" else eval_split,
                                      metric_type=metric_type, metric_name=metric_name, metric_value=round(value, 4)))
    return results


def model_family(config) -> str:
    if config.model_type not in FAMILIES:
        raise ValueError(f"model_type {config.model_type!r} has no card template; expected one of {list(FAMILIES)}.")
    return config.model_type


def build_model_card(config, args: PushToHubArguments, metrics: dict[str, float], training: dict) -> ModelCard:
    """Render the family's template with metadata and evaluation results taken from the run."""
    family = model_family(config)
    dataset = args.dataset or FAMILIES[family]["dataset"]
    model_name = args.repo_id.split("/")[-1]
    eval_results = card_eval_results(metrics, dataset, args.eval_split)
    card_data = ModelCardData(
        model_name=model_name, license=args.license, library_name="transformers",
        pipeline_tag="audio-classification", datasets=[DATASETS[dataset][0]], base_model=args.base_model,
        metrics=sorted({r.metric_type for r in eval_results}) or None, eval_results=eval_results or None,
        tags=["audio", "audio-classification", "custom_code", *FAMILIES[family]["tags"]],
    )
    template = Path(args.template) if args.template else MODEL_CARDS_DIR / FAMILIES[family]["template"]
    if not template.is_file():
        raise FileNotFoundError(f"card template {template}: not found; pass --template or restore model_cards/.")
    return ModelCard.from_template(
        card_data, template_path=str(template), repo_id=args.repo_id, model_name=model_name,
        dataset_name=DATASETS[dataset][1], eval_results=eval_results, training=training,
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

    import hf_audio_cr  # noqa: F401  registers the Auto classes, so save_pretrained writes code + auto_map

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
    card = build_model_card(model.config, args, metrics, training_summary(Path(args.model_dir)))
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
