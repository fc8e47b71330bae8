"""HEAR stage 1: train the acoustic tokenizer by distillation (Sec. II-B, Eq. 1).

    python scripts/train_hear_tokenizer.py configs/hear/tokenizer.yaml [--field value ...]
    accelerate launch scripts/train_hear_tokenizer.py configs/hear/tokenizer.yaml
"""
import sys

from hf_audio_cr.cli import parse_script_args


def main(argv):
    data_args, args = parse_script_args(
        ("hf_audio_cr.training.hear_config:HEARPretrainingDataArguments",
         "hf_audio_cr.training.hear_config:HEARTokenizerTrainingArguments"), argv, description=__doc__
    )
    from transformers import set_seed

    from hf_audio_cr.data import (
        AudioQualityCallback,
        AudioQualityPolicy,
        HEARPretrainingCollator,
        load_pretraining_audio,
    )
    from hf_audio_cr.models.hear import HEARFeatureExtractor, HEARTokenizerConfig, HEARTokenizerModel
    from hf_audio_cr.training.checkpoints import resolve_resume_checkpoint
    from hf_audio_cr.training.hear_config import check_config_overrides
    from hf_audio_cr.training.hear_teachers import add_teacher_features, load_teacher
    from hf_audio_cr.training.hear_trainers import HEARTokenizerTrainer

    if not args.teacher_name_or_path and args.distillation_weight > 0:
        raise ValueError(
            f"Stage 1 distils a teacher (distillation_weight={args.distillation_weight}): pass --teacher_name_or_path "
            "(an AST or CR-AudioMAE folder or Hub id), or --distillation_weight 0 to train without one."
        )
    teacher = load_teacher(args.teacher_name_or_path, args.teacher_layer) if args.teacher_name_or_path else None
    overrides = check_config_overrides(HEARTokenizerConfig, data_args.config_overrides)
    if teacher is not None:
        overrides["teacher_hidden_size"] = teacher.hidden_size
    set_seed(args.seed)  # before the model: one seed, one set of initial weights
    model = HEARTokenizerModel(HEARTokenizerConfig(**overrides))
    dataset = load_pretraining_audio(data_args.dataset, data_args.data_path, data_args.audioset_config)
    if teacher is not None and data_args.precompute_teacher_features:
        with args.main_process_first(desc="teacher features"):
            dataset = add_teacher_features(dataset, teacher.to(args.device))
        teacher = None  # the batches carry the features now
    feature_extractor = HEARFeatureExtractor()
    quality = AudioQualityPolicy(min_seconds=data_args.min_seconds)
    collator = HEARPretrainingCollator(
        feature_extractor, teacher=teacher, max_seconds=data_args.max_seconds, quality=quality
    )
    trainer = HEARTokenizerTrainer(
        model=model, args=args, train_dataset=dataset, data_collator=collator, teacher=teacher,
        processing_class=feature_extractor, callbacks=[AudioQualityCallback(quality)],
    )
    trainer.train(resume_from_checkpoint=resolve_resume_checkpoint(args.resume_from_checkpoint, args.output_dir))
    trainer.save_model()
    trainer.save_state()


if __name__ == "__main__":
    main(sys.argv[1:])
