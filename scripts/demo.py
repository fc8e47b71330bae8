#!/usr/bin/env python
"""End-to-end demo on real recordings from Debian packages, offline (``make demo``).

Builds an embedded AudioSet-style set, trains a small CR-AudioMAE encoder, fine-tunes it with the same seeds
and budget as baseline (λ=0) and CR (the CR study's supported setting, 3 seeds), prints the test-mAP table with
the paired difference ± SE and what it does and does not show, writes plots + metrics JSON, saves the model
chosen on validation as a Hub-ready folder and tags held-out recordings with it in a fresh process.

    python scripts/demo.py [--quick] [--seeds 3] [--pretrain_scenes 0] [--output_dir demo_output]
    python scripts/demo.py configs/demo/default.yaml [--field value ...]
"""
import sys

import yaml
from transformers import HfArgumentParser

from hf_audio_cr.demo import DemoArguments, run_demo


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser(DemoArguments)
    if argv and argv[0].endswith((".yaml", ".yml")):  # the YAML gives defaults, flags override them
        with open(argv[0]) as f:
            values = yaml.safe_load(f) or {}
        unknown = sorted(set(values) - {action.dest for action in parser._actions})
        if unknown:
            raise ValueError(f"{argv[0]}: unknown keys {unknown}; see `scripts/demo.py --help` for the fields.")
        parser.set_defaults(**values)
        argv = argv[1:]
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return run_demo(args)


if __name__ == "__main__":
    main()
