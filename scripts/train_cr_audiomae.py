"""Fine-tune CR-AudioMAE with consistency regularisation (Sadhu & Wang, Eq. 6; Eq. 7 with unlabeled data).

    accelerate launch scripts/train_cr_audiomae.py configs/cr_audiomae/as20k_cr.yaml [--max_steps 100 ...]
(the YAML gives defaults for the arguments below and CRTrainingArguments; flags override it)"""
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hf_audio_cr.cli import parse_script_args


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(default=None, metadata={"help": "Converted AudioMAE folder; unset: from scratch."})
    config_overrides: str | None = field(default=None, metadata={"help": "e.g. 'hidden_size=32,num_hidden_layers=2'."})


@dataclass
class DataArguments:
    dataset_name: str = field(default="agkphysics/AudioSet", metadata={"help": "Hub id, parquet path or segments CSV."})
    dataset_config: str = field(default="balanced", metadata={"help": "balanced (AS-20k) or unbalanced (AS-2M)."})
    train_split: str = field(default="train", metadata={"help": "Training split of dataset_name."})
    eval_split: str | None = field(default="test", metadata={"help": "Empty: no evaluation."})
    train_files: list[str] | None = field(default=None, metadata={"help": "Local parquet files in AudioSet's schema."})
    eval_files: list[str] | None = field(default=None, metadata={"help": "Local parquet files for evaluation."})
    audio_dir: str | None = field(default=None, metadata={"help": "Clip folder for a segments CSV."})
    label_set: str = field(default="556", metadata={"help": "527, 556 (paper) or 557 training labels."})
    streaming: bool = field(default=True, metadata={"help": "Stream the sets instead of downloading them first."})
    shuffle_buffer_size: int | None = field(default=10_000, metadata={"help": "Streaming training set only."})
    unlabeled_dataset_config: str | None = field(default=None, metadata={"help": "Set for Eq. 7, e.g. unbalanced."})
    unlabeled_files: list[str] | None = field(default=None, metadata={"help": "Local parquet files, unlabeled (Eq. 7)."})
    num_eval_classes: int | None = field(default=527, metadata={"help": "Score the 527 standard classes only."})


def parse_args(argv):
    # CRTrainingArguments extends TrainingArguments (imports torch): named, imported once the parser is built
    return parse_script_args((ModelArguments, DataArguments, "hf_audio_cr.training.cr_config:CRTrainingArguments"),
                             argv, description=__doc__)


def build_model(model_args, label_set):
    from hf_audio_cr.data import audioset_id2label
    from hf_audio_cr.models.cr_audiomae import (
        AudioMAEFeatureExtractor,
        CRAudioMAEConfig,
        CRAudioMAEForAudioClassification,
    )
    from hf_audio_cr.paths import check_local_or_hub

    id2label = audioset_id2label(label_set)  # 527 standard classes first, so evaluation scores [:527]
    labels = {"num_labels": len(id2label), "id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}
    if path := model_args.model_name_or_path:  # a new head for the label set on the converted encoder
        path = check_local_or_hub(path, hint="(--model_name_or_path: a converted checkpoint folder or a Hub id)")
        model = CRAudioMAEForAudioClassification.from_pretrained(path, ignore_mismatched_sizes=True, **labels)
        return model, AudioMAEFeatureExtractor.from_pretrained(path)
    config = CRAudioMAEConfig(**labels)
    if model_args.config_overrides:
        config.update_from_string(model_args.config_overrides)
    extractor = AudioMAEFeatureExtractor(num_mel_bins=config.num_mel_bins, max_length=config.max_length)
    return CRAudioMAEForAudioClassification(config), extractor


def check_data_sources(data):
    """--train_files / --eval_files replace dataset_name for their split; giving only one of them while
    dataset_name is a local file (the smoke CSV) would mix the user's data with it, so that is refused."""
    local = data.dataset_name.endswith((".csv", ".parquet")) or Path(data.dataset_name).exists()
    if local and data.eval_split and bool(data.train_files) != bool(data.eval_files):
        given, missing = ("--train_files", "--eval_files") if data.train_files else ("--eval_files", "--train_files")
        raise ValueError(
            f"{given} is set but {missing} is not, so that split would come from dataset_name={data.dataset_name!r}. "
            f"Pass {missing} too (or --eval_split '' to skip evaluation), or set --dataset_name to your data."
        )


def main(argv=None):
    model_args, data, args = parse_args(sys.argv[1:] if argv is None else argv)
    from transformers import set_seed

    from hf_audio_cr.data import AudioClassificationCollator, AudioQualityCallback, AudioQualityPolicy, load_audioset
    from hf_audio_cr.data.audioset import load_audioset_labels
    from hf_audio_cr.training import CRTrainer, SemiSupervisedCRTrainer, audioset_compute_metrics
    from hf_audio_cr.training.checkpoints import resolve_resume_checkpoint
    from hf_audio_cr.training.sampling import AudiosetWeightedStream, stream_class_weights

    check_data_sources(data)
    set_seed(args.seed)  # before the model is built: the same seed gives the same initial weights
    model, extractor = build_model(model_args, data.label_set)

    def audioset(config, split, files, streaming):
        shuffle = data.shuffle_buffer_size if streaming and split == data.train_split else None
        # explicit files win: dataset_name (e.g. the YAML's segments CSV) is not read for this split
        source = {"data_files": files} if files else {"path": data.dataset_name, "audio_dir": data.audio_dir}
        return load_audioset(name=config, split=split, streaming=streaming, label_set=data.label_set, seed=args.seed,
                             shuffle_buffer_size=shuffle, **source)

    collator = AudioClassificationCollator(extractor, long_audio="truncate")  # AudioMAE: a clip's first 10.24 s
    evaluation = audioset(data.dataset_config, data.eval_split, data.eval_files, data.streaming) if data.eval_split else None
    train = audioset(data.dataset_config, data.train_split, data.train_files, data.streaming)
    if args.weighted_sampling and data.streaming:  # class counts from the labels column only, then weighted draws
        source = {"data_files": data.train_files} if data.train_files else {"path": data.dataset_name}
        labels = load_audioset_labels(name=data.dataset_config, split=data.train_split, **source)
        weights = stream_class_weights(labels.iter(batch_size=10_000), args.weighted_sampling_ancestors,
                                       args.sampling_label_set)
        seed = args.data_seed if args.data_seed is not None else args.seed
        train = AudiosetWeightedStream(train, weights, args.epoch_length, seed, args.weighted_sampling_replacement)
    kwargs = dict(
        model=model, args=args, train_dataset=train,
        eval_dataset=evaluation, data_collator=collator, processing_class=extractor,
        compute_metrics=audioset_compute_metrics(data.num_eval_classes), callbacks=[AudioQualityCallback(collator.quality)],
    )
    if data.unlabeled_dataset_config or data.unlabeled_files:  # Eq. 7: a second, unlabeled stream
        kwargs["unlabeled_dataset"] = audioset(data.unlabeled_dataset_config, data.train_split, data.unlabeled_files, True)
    trainer = (SemiSupervisedCRTrainer if "unlabeled_dataset" in kwargs else CRTrainer)(**kwargs)
    trainer.train(resume_from_checkpoint=resolve_resume_checkpoint(args.resume_from_checkpoint, args.output_dir))
    trainer.save_model()
    if evaluation is not None:  # evaluation clips are never skipped silently: a bad one raises with its id
        trainer.data_collator = AudioClassificationCollator(extractor, quality=AudioQualityPolicy(mode="eval"), long_audio="truncate")
        metrics = trainer.evaluate()
        trainer.save_metrics("eval", {**metrics, **collator.quality.as_metrics("train_bad_audio/", across_processes=True)})
    return trainer


if __name__ == "__main__":
    trainer = main()  # still referenced: freeing the DDP model would tear the gloo group down
    from hf_audio_cr.training.distributed import exit_distributed_run  # after parsing: `--help` never gets here

    exit_distributed_run(trainer)
