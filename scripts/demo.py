#!/usr/bin/env python
"""End-to-end demo on real recordings from Debian packages, offline (``make demo``).

Builds an embedded AudioSet-style set, trains a small CR-AudioMAE twice with the same seed and budget
(baseline λ=0 and CR), prints the test-mAP table, writes plots + metrics JSON, saves the better model as
a Hub-ready folder and tags held-out recordings with it in a fresh process.

    python scripts/demo.py [--quick] [--seeds 3] [--output_dir demo_output]
    python scripts/demo.py configs/demo.yaml [--field value ...]
"""
from hf_audio_cr.cli import parse_script_args
from hf_audio_cr.demo.run import DemoArguments


def main(argv=None):
    (args,) = parse_script_args(DemoArguments, argv, description=__doc__)  # the YAML gives defaults, flags override
    from hf_audio_cr.demo.run import run_demo

    return run_demo(args)


if __name__ == "__main__":
    main()
