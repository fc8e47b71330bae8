#!/usr/bin/env python
"""Stage 1 of the HEAR study alone, over a few settings: does the tokenizer's codebook collapse?

    python scripts/diagnose_hear_tokenizer.py --output_dir runs/hear_tokenizer_diag \\
        --runs 60:1e-3:0.1:0.5 300:1e-3:0.1:0.5 300:1e-3:10:0.5

Each ``--runs`` entry is ``steps:learning_rate:diversity_weight:gumbel_anneal_fraction``; every other setting is
``reproduce_hear.py``'s (same pool, same stand-in teacher, trained once, or reused from ``--teacher_dir``). Codebook
usage is measured on FSDD's *validation* clips only (repetitions 5-9), never test. Writes ``diagnosis.json`` and
``diagnosis.md`` (codes used, perplexity, share of the top code, mean chosen-code probability, the last logged
loss terms, wall time) in ``--output_dir``.
"""
import json
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from hf_audio_cr.cli import parse_script_args
from hf_audio_cr.experiments import hear_study
from hf_audio_cr.experiments.hear_study import HEARStudyArguments


@dataclass
class DiagnosisArguments:
    output_dir: str = field(default="runs/hear_tokenizer_diag", metadata={"help": "Runs, diagnosis.json/.md."})
    runs: list[str] = field(
        default_factory=lambda: ["60:1e-3:0.1:0.5", "300:1e-3:0.1:0.5", "300:1e-3:10:0.5"],
        metadata={"help": "steps:learning_rate:diversity_weight:gumbel_anneal_fraction, one stage-1 run each."},
    )
    teacher_dir: str | None = field(
        default=None, metadata={"help": "A reproduce_hear output_dir whose teacher/ to reuse (else trained here)."}
    )
    pool_limit: int | None = field(default=None, metadata={"help": "Use only the first N Debian recordings."})
    pretrain_batch_size: int = field(default=16, metadata={"help": "Stage-1 batch."})
    num_threads: int = field(default=2, metadata={"help": "torch threads."})


def main(argv=None):
    (diag,) = parse_script_args(DiagnosisArguments, argv, description=__doc__)
    import torch

    torch.set_num_threads(diag.num_threads)
    output = Path(diag.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    study = HEARStudyArguments(output_dir=str(output), pool_limit=diag.pool_limit, pretrain_batch_size=diag.pretrain_batch_size)
    data = hear_study.cached_fsdd_features(study, output / "fsdd_features.pt")
    fsdd_minutes = sum(len(r["input_values"]) for r in data["train"]) / 100 / 60
    pool, pool_summary = hear_study.build_pool(study, data.pop("train_dataset"), fsdd_minutes)
    if diag.teacher_dir or (output / "teacher" / "config.json").is_file():
        from hf_audio_cr import CRAudioMAEForAudioClassification
        from hf_audio_cr.training import CRAudioMAETeacher

        source = Path(diag.teacher_dir) if diag.teacher_dir else output
        if source != output:
            shutil.copytree(source / "teacher", output / "teacher", dirs_exist_ok=True)
            shutil.copy(source / "teacher_summary.json", output / "teacher_summary.json")
        teacher = CRAudioMAETeacher(CRAudioMAEForAudioClassification.from_pretrained(output / "teacher").audiomae)
    else:
        teacher, summary = hear_study.train_teacher(study, output)
        summary["arguments"] = hear_study.stage_arguments(study, hear_study.TEACHER_ARGUMENTS)
        (output / "teacher_summary.json").write_text(json.dumps(summary, indent=1))
    rows = []
    for spec in diag.runs:
        steps, lr, gamma, anneal = spec.split(":")
        args = replace(study, tokenizer_steps=int(steps), tokenizer_learning_rate=float(lr), diversity_weight=float(gamma),
                       gumbel_anneal_fraction=float(anneal))
        run_dir = output / f"s{steps}-lr{lr}-g{gamma}-a{anneal}"
        started = time.perf_counter()
        tokenizer, summary = hear_study.train_tokenizer(args, pool, teacher, run_dir)
        # the same file run_study writes, so `reproduce_hear.py --output_dir <run_dir>` with these flags reuses it
        summary["arguments"] = hear_study.stage_arguments(args, hear_study.TOKENIZER_ARGUMENTS)
        (run_dir / "tokenizer_summary.json").write_text(json.dumps(summary, indent=1, default=str))
        usage = hear_study.codebook_usage(tokenizer, data["validation"])
        rows.append({"run": spec, "steps": int(steps), "learning_rate": float(lr), "diversity_weight": float(gamma),
                     "gumbel_anneal_fraction": float(anneal), "wall_seconds": round(time.perf_counter() - started, 1),
                     "validation_usage": usage, **{k: summary[k] for k in ("reconstruction_loss", "distillation_loss",
                                                                           "diversity_loss", "final_gumbel_temperature")}})
        print(json.dumps(rows[-1]), flush=True)
        (output / "diagnosis.json").write_text(json.dumps({"pool": pool_summary, "runs": rows}, indent=1))
    lines = ["| steps | lr | γ (diversity) | τ 2→0.5 over | codes used (val.) | perplexity | top code | mean p(chosen) | L_rec | L_distill | L_div | wall |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        u = r["validation_usage"]
        lines.append(
            f"| {r['steps']} | {r['learning_rate']:g} | {r['diversity_weight']:g} | {r['gumbel_anneal_fraction']:.0%} | "
            f"{u['codes_used']} / {u['codebook_size']} | {u['perplexity']:.1f} | {u['top_code_share']:.0%} | "
            f"{u['mean_max_probability']:.3f} | {r['reconstruction_loss']:.3f} | {r['distillation_loss']:.4f} | "
            f"{r['diversity_loss']:.2e} | {r['wall_seconds']:.0f} s |")
    (output / "diagnosis.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
