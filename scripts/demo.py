#!/usr/bin/env python
"""End-to-end demo on real recordings from Debian packages, offline (``make demo``).

Builds an embedded AudioSet-style set, trains a small CR-AudioMAE encoder, fine-tunes it with the same seeds
and budget as baseline (λ=0) and CR (the CR study's supported setting, 3 seeds), prints the test-mAP table with
the paired difference ± SE and what it does and does not show, writes plots + metrics JSON, saves the model
chosen on validation as a Hub-ready folder and tags held-out recordings with it in a fresh process.

    python scripts/demo.py [--quick] [--seeds 3] [--pretrain_scenes 0] [--output_dir demo_output]
    python scripts/demo.py configs/demo/default.yaml [--field value ...]
"""
from hf_audio_cr.cli import parse_script_args
from hf_audio_cr.demo.run import DemoArguments


def main(argv=None):
    (args,) = parse_script_args(DemoArguments, argv, description=__doc__)  # the YAML gives defaults, flags override
    from hf_audio_cr.demo.run import run_demo

    return run_demo(args)


if __name__ == "__main__":
    main()
