#!/usr/bin/env python
"""Convert an original AudioMAE (pretrained or fine-tuned) or timm ViT checkpoint to a CR-AudioMAE folder.

    python scripts/convert_audiomae_checkpoint.py finetuned.pth converted/ [--num-attention-heads 12]
    python scripts/convert_audiomae_checkpoint.py fork_556.pth converted/ --label-order modified_audiomae_556
"""
import sys

from hf_audio_cr.cli import parse_script_args

CONVERTER = "hf_audio_cr.models.cr_audiomae.convert_audiomae_checkpoint"  # imports torch: only once parsed


def main(argv=None):
    (args,) = parse_script_args(f"{CONVERTER}:ConvertArguments", argv, description=__doc__)
    from hf_audio_cr.models.cr_audiomae.convert_audiomae_checkpoint import convert_checkpoint

    try:
        _, report = convert_checkpoint(
            args.checkpoint, args.output_dir, label_order=args.label_order,
            num_attention_heads=args.num_attention_heads, max_length=args.max_length,
        )
    except (ValueError, FileNotFoundError) as error:
        sys.stderr.write(f"error: {error}\n")  # a usage error, as argparse reports one
        sys.exit(2)
    print(f"missing keys (freshly initialised): {report.missing_keys or 'none'}")
    if report.label_set is not None:
        print(f"head rows in the package's {report.label_set}-label order ({args.label_order or 'audioset_527'})")
    print(f"unexpected keys (not used): {report.unexpected_keys or 'none'}")
    print(f"wrote {args.output_dir}")


if __name__ == "__main__":
    main()
