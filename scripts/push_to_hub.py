"""Build a self-contained Hub folder (weights, remote code, auto_map, feature extractor, model card) from a
trained model folder or Trainer output dir, then upload it with HfApi.

    python scripts/push_to_hub.py --model_dir outputs/cr_as20k --repo_id me/cr-audiomae-as20k --dry_run
    python scripts/push_to_hub.py --model_dir outputs/cr_as20k --repo_id me/cr-audiomae-as20k --private

The card's evaluation results come from the run's eval_results.json / all_results.json / trainer_state.json.
"""
import sys

from transformers import HfArgumentParser

from hf_audio_cr.hub import PushToHubArguments, build_hub_folder, push_folder


def main(argv=None):
    parser = HfArgumentParser(PushToHubArguments)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        (args,) = parser.parse_yaml_file(argv[0])
    else:
        (args,) = parser.parse_args_into_dataclasses(argv)
    folder = build_hub_folder(args)
    print(f"built {folder}: " + ", ".join(sorted(p.name for p in folder.iterdir())))
    if args.dry_run:
        print("--dry_run: nothing uploaded")
        return folder
    print(push_folder(folder, args.repo_id, private=args.private, revision=args.revision))
    return folder


if __name__ == "__main__":
    main()
