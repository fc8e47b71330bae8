"""Seconds per optimizer step of HEAR's three training stages at the paper's model sizes, through the real trainers.

    python scripts/bench_hear_training.py [--batch_size 2] [--steps 3] [--threads 2] [--output outputs/bench_hear_training.json]

Clips are real recordings cut to 6 s (stages 1-2) or 5 s (ESC-50-like stage 3). The paper's batches (64 / 128 / 16)
are far too large for a CPU run, so a small batch is timed and the per-clip cost scaled linearly to the paper's batch
(an estimate: it ignores any batching efficiency). The first step (allocation, warm-up) is not counted.
"""
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hf_audio_cr.cli import parse_script_args  # torch, datasets, the models and trainers are imported after parsing

TESTS = Path(__file__).resolve().parents[1] / "tests"


def step_timer():
    """A TrainerCallback with the seconds of each optimizer step in ``.times`` (built here: transformers is heavy)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times = []

        def on_step_begin(self, args, state, control, **kwargs):
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self._start)

    return StepTimer()


def clips(seconds, count):
    """`count` overlapping crops of a 13.9 s read-speech recording, each `seconds` long."""
    import datasets

    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from _helpers import PRETRAINING_FILES, load_file

    speech, size = load_file(PRETRAINING_FILES[2]), int(seconds * 16000)
    rows = [{"audio": {"array": speech[i * 8000 : i * 8000 + size], "sampling_rate": 16000}, "label": i % 2} for i in range(count)]
    return datasets.Dataset.from_list(rows)


def run(name, trainer_cls, args_cls, model, dataset, collator, batch, paper_batch, steps, **kwargs):
    import numpy as np

    from hf_audio_cr.training.hear_trainers import HEARFineTuningArguments

    timer = step_timer()
    args = args_cls(output_dir="outputs/bench_hear", max_steps=steps + 1, per_device_train_batch_size=batch, warmup_steps=0,
                    report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True, logging_steps=1000,
                    **({"variant": "scratch"} if args_cls is HEARFineTuningArguments else {}))
    trainer_cls(model=model, args=args, train_dataset=dataset, data_collator=collator, callbacks=[timer], **kwargs).train()
    per_step = float(np.median(timer.times[1:]))
    return {"stage": name, "batch": batch, "s_per_step": per_step, "paper_batch": paper_batch,
            "s_per_step_at_paper_batch": per_step / batch * paper_batch,
            "params_M": sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6}


@dataclass
class BenchArguments:
    batch_size: int = field(default=2, metadata={"help": "clips per step"})
    steps: int = field(default=3, metadata={"help": "timed steps per stage"})
    threads: int = field(default=2, metadata={"help": "torch intra-op threads"})
    output: str = field(default="outputs/bench_hear_training.json", metadata={"help": "JSON file for the results"})


def main(argv=None):
    (cli,) = parse_script_args(BenchArguments, argv, description=__doc__)
    import datasets
    import torch
    from transformers import ASTConfig, ASTModel

    from hf_audio_cr import AudioClassificationCollator
    from hf_audio_cr.data import HEARPretrainingCollator
    from hf_audio_cr.models.hear import (
        HEARConfig,
        HEARFeatureExtractor,
        HEARForAudioClassification,
        HEARForMaskedAcousticModeling,
        HEARTokenizerConfig,
        HEARTokenizerModel,
    )
    from hf_audio_cr.training.hear_teachers import ASTTeacher
    from hf_audio_cr.training.hear_trainers import (
        HEARFineTuningArguments,
        HEARFineTuningTrainer,
        HEARMAMTrainer,
        HEARMAMTrainingArguments,
        HEARTokenizerTrainer,
        HEARTokenizerTrainingArguments,
    )

    torch.set_num_threads(cli.threads)
    torch.manual_seed(0)
    fe, b = HEARFeatureExtractor(), cli.batch_size
    six = clips(6.0, 2 * b)
    tokenizer = HEARTokenizerModel(HEARTokenizerConfig())  # Table I: 128 wide, 6 + 2 layers, 1024 codes
    teacher = ASTTeacher(ASTModel(ASTConfig()))  # AST-Base as the 768-d teacher (SSAST-Base has the same size)
    rows = [run("1 tokenizer + AST teacher", HEARTokenizerTrainer, HEARTokenizerTrainingArguments, tokenizer, six,
                HEARPretrainingCollator(fe, teacher=teacher), b, 64, cli.steps, teacher=teacher)]
    rows.append(run("2 MAM (frozen tokenizer)", HEARMAMTrainer, HEARMAMTrainingArguments,
                    HEARForMaskedAcousticModeling(HEARConfig()), six, HEARPretrainingCollator(fe), b, 128, cli.steps,
                    acoustic_tokenizer=tokenizer.eval()))
    esc = clips(5.0, 2 * b).cast_column("label", datasets.ClassLabel(names=["a", "b"]))
    rows.append(run("3 fine-tune (ESC-50, 5 s)", HEARFineTuningTrainer, HEARFineTuningArguments,
                    HEARForAudioClassification(HEARConfig(num_labels=50)), esc,
                    AudioClassificationCollator(fe, label_column="label"), b, 16, cli.steps))
    load = os.getloadavg()[0]
    print(f"\nCPU, {cli.threads} torch threads, load average {load:.1f} on {os.cpu_count()} cores (shared machine: noisy)")
    print("| stage | trainable params (M) | batch | s/step | paper batch | s/step scaled to paper batch |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['stage']} | {r['params_M']:.2f} | {r['batch']} | {r['s_per_step']:.2f} | {r['paper_batch']} | {r['s_per_step_at_paper_batch']:.1f} |")
    Path(cli.output).parent.mkdir(parents=True, exist_ok=True)
    Path(cli.output).write_text(json.dumps({"threads": cli.threads, "load_average": load, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
