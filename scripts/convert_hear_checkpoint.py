#!/usr/bin/env python
"""Convert a checkpoint of HEAR's reference code (HarunoriKawano/HEAR) to a transformers folder.

    # the authors' stage-2 acoustic model -> HEARModel (AutoModel), the start of fine-tuning
    python scripts/convert_hear_checkpoint.py models/acoustic_model_weight.pth converted/hear_acoustic
    # the stage-1 tokenizer (a TokenizerTrainFramework, or a Tokenizer plus optionally its Decoder)
    python scripts/convert_hear_checkpoint.py models/tokenizer_weight.pth converted/hear_tokenizer [--decoder decoder.pth]
    # a fine-tuned reference HEAR classifier -> HEARForAudioClassification
    python scripts/convert_hear_checkpoint.py hear_esc50.pt converted/hear_esc50

Plain state_dict files only: .pt/.pth are read with torch.load(weights_only=True), or pass .safetensors.
"""
import json
from dataclasses import dataclass, field

from hf_audio_cr.cli import parse_script_args


@dataclass
class ConvertArguments:
    checkpoint: str = field(metadata={"positional": True, "help": ".pt/.pth (read with weights_only=True) or .safetensors"})
    output_dir: str = field(metadata={"positional": True, "help": "Where the transformers folder is written."})
    decoder: str | None = field(default=None, metadata={"help": "a standalone reference Decoder state dict (with a Tokenizer)"})
    window_overlap: int = field(default=50, metadata={"help": "tokens shared by windows (not in the weights)"})
    task_num_attention_heads: int = field(default=4, metadata={"help": "task model heads (not recoverable from the weights)"})
    id2label: str | None = field(default=None, metadata={"help": "JSON file mapping class index -> name (classifiers)"})


def main(argv=None):
    (args,) = parse_script_args(ConvertArguments, argv, description=__doc__)
    from hf_audio_cr.models.hear.convert_hear_checkpoint import convert_checkpoint

    overrides = {}
    if args.id2label:
        with open(args.id2label) as handle:
            id2label = {int(k): v for k, v in json.load(handle).items()}
        overrides.update(id2label=id2label, label2id={v: k for k, v in id2label.items()})
    _, report = convert_checkpoint(
        args.checkpoint, args.output_dir, decoder_checkpoint=args.decoder, window_overlap=args.window_overlap,
        task_num_attention_heads=args.task_num_attention_heads, **overrides,
    )
    print(f"layout: {report.layout}")
    print(f"missing keys (freshly initialised): {report.missing_keys or 'none'}")
    print(f"unexpected keys (not used): {report.unexpected_keys or 'none'}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"wrote {args.output_dir}")


if __name__ == "__main__":
    main()
