"""HEAR stage 2: masked acoustic modeling of the acoustic model against a frozen tokenizer (Sec. II-C).

    python scripts/pretrain_hear.py configs/hear/pretrain.yaml --tokenizer_name_or_path runs/hear_tokenizer
    accelerate launch scripts/pretrain_hear.py configs/hear/pretrain.yaml --tokenizer_name_or_path ...
"""
import sys

from hf_audio_cr.cli import parse_script_args


def main(argv):
    data_args, args = parse_script_args(
        ("hf_audio_cr.training.hear_config:HEARPretrainingDataArguments",
         "hf_audio_cr.training.hear_config:HEARMAMTrainingArguments"), argv, description=__doc__
    )
    from transformers import set_seed

    from hf_audio_cr.data import (
        AudioQualityCallback,
        AudioQualityPolicy,
        HEARPretrainingCollator,
        load_pretraining_audio,
    )
    from hf_audio_cr.models.hear import (
        HEARConfig,
        HEARFeatureExtractor,
        HEARForMaskedAcousticModeling,
        HEARTokenizerModel,
    )
    from hf_audio_cr.paths import check_local_or_hub
    from hf_audio_cr.training.checkpoints import resolve_resume_checkpoint
    from hf_audio_cr.training.hear_config import check_config_overrides
    from hf_audio_cr.training.hear_trainers import HEARMAMTrainer

    overrides = check_config_overrides(HEARConfig, data_args.config_overrides)
    if not args.tokenizer_name_or_path:
        raise ValueError("Set tokenizer_name_or_path to the stage-1 output folder (train_hear_tokenizer.py).")
    tokenizer = HEARTokenizerModel.from_pretrained(check_local_or_hub(args.tokenizer_name_or_path, hint="(--tokenizer_name_or_path)"))
    config = HEARConfig(**overrides, tokenizer_config=tokenizer.config.to_dict())
    set_seed(args.seed)  # before the model: one seed, one set of initial weights
    model = HEARForMaskedAcousticModeling(config)
    feature_extractor = HEARFeatureExtractor()
    quality = AudioQualityPolicy(min_seconds=data_args.min_seconds)
    collator = HEARPretrainingCollator(
        feature_extractor, max_seconds=data_args.max_seconds, quality=quality
    )
    dataset = load_pretraining_audio(data_args.dataset, data_args.data_path, data_args.audioset_config)
    trainer = HEARMAMTrainer(
        model=model, args=args, train_dataset=dataset, data_collator=collator,
        acoustic_tokenizer=tokenizer, processing_class=feature_extractor, callbacks=[AudioQualityCallback(quality)],
    )
    trainer.train(resume_from_checkpoint=resolve_resume_checkpoint(args.resume_from_checkpoint, args.output_dir))
    trainer.save_model()
    trainer.save_state()
    return trainer


if __name__ == "__main__":
    trainer = main(sys.argv[1:])  # still referenced: freeing the DDP model would tear the gloo group down
    from hf_audio_cr.training.distributed import exit_distributed_run

    exit_distributed_run(trainer)
