#!/usr/bin/env python
"""HEAR's recipe measured on real speech (``make reproduce-hear``): stand-in teacher -> tokenizer -> masked
acoustic modeling -> Table IV's four settings on FSDD digits and speakers, several seeds, all labels and 10 %.

    python scripts/reproduce_hear.py [--quick] [--output_dir runs/reproduce_hear] [--seeds 3] [--workers 2]

Writes results.json, table.md and hear_fsdd_table4.png in --output_dir (see hf_audio_cr.experiments.hear_study).
"""
from hf_audio_cr.cli import parse_script_args
from hf_audio_cr.experiments.hear_study import HEARStudyArguments, run_study


def main(argv=None):
    (args,) = parse_script_args(HEARStudyArguments, argv, description=__doc__)
    return run_study(args)


if __name__ == "__main__":
    main()
