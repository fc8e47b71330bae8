"""HEAR stage 3: fine-tune on a downstream set in one of the paper's settings (Sec. II-D, Tables II and IV).

    python scripts/finetune_hear.py configs/hear/esc50.yaml --pretrained_model_name_or_path runs/hear_mam
    accelerate launch scripts/finetune_hear.py configs/hear/speech_commands_v1.yaml --data_path ... --variant transfer

ESC-50 runs the 5-fold cross-validation (``test_folds``) and prints mean ± std; the other sets train on
``train`` and report ``validation`` / ``test`` accuracy. Metrics land in ``output_dir`` as JSON.
"""
import sys

from hf_audio_cr.cli import parse_script_args


def main(argv):
    data_args, args = parse_script_args(
        ("hf_audio_cr.training.hear_config:HEARDownstreamDataArguments",
         "hf_audio_cr.training.hear_config:HEARFineTuningArguments"), argv, description=__doc__
    )
    from hf_audio_cr.data import load_downstream
    from hf_audio_cr.experiments.hear_downstream import (
        finetune_and_evaluate,
        finetune_esc50_folds,
        format_cross_validation,
    )

    dataset = load_downstream(data_args.task, data_args.data_path)
    if data_args.task == "esc50":
        summary = finetune_esc50_folds(
            args, dataset["train"], data_args.test_folds, data_args.config_overrides, max_seconds=data_args.max_seconds
        )
        if args.process_index == 0:
            print(f"ESC-50 {args.variant}: {format_cross_validation(summary)}")
        return
    if "train" not in dataset:
        raise ValueError(f"{data_args.data_path}: no train split (found {sorted(dataset)}); fine-tuning needs train/.")
    metrics = finetune_and_evaluate(
        args, dataset["train"], dataset.get("validation"), dataset.get("test"), data_args.config_overrides,
        max_seconds=data_args.max_seconds,
    )
    if args.process_index == 0:
        accuracies = {k: v for k, v in metrics.items() if k.endswith("accuracy")}
        print(accuracies or f"Nothing to evaluate: {data_args.data_path} has no validation or test split "
                            f"(splits: {sorted(dataset)}); the model was fine-tuned on train only.")


if __name__ == "__main__":
    main(sys.argv[1:])
    from hf_audio_cr.training.distributed import exit_distributed_run

    exit_distributed_run(None)  # every rank leaves together, without the gloo teardown race
