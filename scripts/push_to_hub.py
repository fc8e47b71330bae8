"""Build a self-contained Hub folder (weights, remote code, auto_map, feature extractor, model card) from a
trained model folder or Trainer output dir, then upload it with HfApi.

    python scripts/push_to_hub.py --model_dir outputs/cr_as20k --repo_id me/cr-audiomae-as20k --dry_run
    python scripts/push_to_hub.py --model_dir outputs/cr_as20k --repo_id me/cr-audiomae-as20k --private
    python scripts/push_to_hub.py config.yaml [--field value ...]

The card's evaluation results come from the run's eval_results.json / all_results.json / trainer_state.json.
"""
from hf_audio_cr.cli import parse_script_args
from hf_audio_cr.hub import PushToHubArguments, build_hub_folder, push_folder


def main(argv=None):
    (args,) = parse_script_args(PushToHubArguments, argv, description=__doc__)
    folder = build_hub_folder(args)
    print(f"built {folder}: " + ", ".join(sorted(p.name for p in folder.iterdir())))
    if args.dry_run:
        print("--dry_run: nothing uploaded")
        return folder
    print(push_folder(folder, args.repo_id, private=args.private, revision=args.revision))
    return folder


if __name__ == "__main__":
    main()
