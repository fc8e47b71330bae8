#!/usr/bin/env python
"""Convert an original AudioMAE (pretrained or fine-tuned) or timm ViT checkpoint to a CR-AudioMAE folder.

    python scripts/convert_audiomae_checkpoint.py finetuned.pth converted/ [--num-attention-heads 12]
"""
import argparse

from hf_audio_cr.models.cr_audiomae.convert_audiomae_checkpoint import convert_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help=".pth/.pt (read with weights_only=True) or .safetensors")
    parser.add_argument("output_dir")
    parser.add_argument("--num-attention-heads", type=int, default=12, help="not recoverable from the weights")
    parser.add_argument("--max-length", type=int, default=1024, help="fbank frames; the position table is resized")
    args = parser.parse_args(argv)
    _, report = convert_checkpoint(
        args.checkpoint, args.output_dir, num_attention_heads=args.num_attention_heads, max_length=args.max_length
    )
    print(f"missing keys (freshly initialised): {report.missing_keys or 'none'}")
    print(f"unexpected keys (not used): {report.unexpected_keys or 'none'}")
    print(f"wrote {args.output_dir}")


if __name__ == "__main__":
    main()
