#!/usr/bin/env python
"""The CR study (``make cr-study``): where consistency regularisation helps, with seeds.

Trains small CR-AudioMAE models with ``CRTrainer`` / ``SemiSupervisedCRTrainer`` on the embedded real-audio
scenes (sigmoid CR) and the FSDD digits (softmax CR): λ = 0 vs the paper's 2 (Table 1a), k = 2 vs 6 (Table 1d),
from scratch vs from a pretrained encoder (Table 4), semi-supervised Eq. 7 (Tables 3-4). Writes
``results.json``, ``results.md`` (mean ± std, paired difference ± SE) and ``results.png`` to ``--output_dir``;
rerunning the same command reuses finished runs.

    python scripts/reproduce_cr.py [--quick] [--seeds 3] [--tasks scenes fsdd] [--output_dir outputs/cr_study]
"""
from hf_audio_cr.cli import parse_script_args
from hf_audio_cr.experiments.cr_study import StudyArguments, run_study


def main(argv=None):
    (args,) = parse_script_args(StudyArguments, argv, description=__doc__)
    return run_study(args)


if __name__ == "__main__":
    main()
