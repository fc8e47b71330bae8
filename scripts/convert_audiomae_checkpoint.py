#!/usr/bin/env python
"""Convert an original AudioMAE (pretrained or fine-tuned) or timm ViT checkpoint to a CR-AudioMAE folder.

    python scripts/convert_audiomae_checkpoint.py finetuned.pth converted/ [--num-attention-heads 12]
    python scripts/convert_audiomae_checkpoint.py fork_556.pth converted/ --label-order modified_audiomae_556
"""
from dataclasses import dataclass, field

from hf_audio_cr.cli import ScriptArgumentParser
from hf_audio_cr.models.cr_audiomae.convert_audiomae_checkpoint import LABEL_ORDER_PRESETS, convert_checkpoint


@dataclass
class ConvertArguments:
    checkpoint: str = field(metadata={"positional": True, "help": ".pth/.pt (read with weights_only=True) or .safetensors"})
    output_dir: str = field(metadata={"positional": True, "help": "Where the CR-AudioMAE folder is written."})
    num_attention_heads: int = field(default=12, metadata={"help": "not recoverable from the weights"})
    max_length: int = field(default=1024, metadata={"help": "fbank frames; the position table is resized"})
    label_order: str | None = field(default=None, metadata={
        "help": f"row order of the checkpoint's head: one of {', '.join(LABEL_ORDER_PRESETS)} or a label CSV "
                "(index,mid,display_name); rows are put in the package's order with id2label set. Needed for 556-row "
                "heads."})


def main(argv=None):
    parser = ScriptArgumentParser(ConvertArguments, description=__doc__)
    (args,) = parser.parse_args_and_config(argv)
    try:
        _, report = convert_checkpoint(
            args.checkpoint, args.output_dir, label_order=args.label_order,
            num_attention_heads=args.num_attention_heads, max_length=args.max_length,
        )
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"error: {error}\n")
    print(f"missing keys (freshly initialised): {report.missing_keys or 'none'}")
    if report.label_set is not None:
        print(f"head rows in the package's {report.label_set}-label order ({args.label_order or 'audioset_527'})")
    print(f"unexpected keys (not used): {report.unexpected_keys or 'none'}")
    print(f"wrote {args.output_dir}")


if __name__ == "__main__":
    main()
