#!/usr/bin/env python
"""Peak memory of HEAR fine-tuning on a folder holding one long recording (``finetune_hear.py``'s data path).

Each case runs in a fresh process (peak RSS = ``ru_maxrss`` of that process) on real speech
(tests/fixtures/audio/speech_female.ogg, tiled) written as 16 kHz FLAC into ``train/speech/`` next to a short
drum hit in ``train/drums/``: ``load_audiofolder`` -> ``AudioClassificationCollator`` -> one training step
(forward + backward, batch of both clips) -> evaluation of both clips with ``HEARFineTuningTrainer``'s
``prediction_step``. ``--max_seconds 6`` is the default (random 6 s crop in training, 6 s windows in evaluation);
``--max_seconds 0`` feeds whole clips, as before the crop existed (keep ``--minutes`` small then: the task
model's attention grows with the square of the length). Prints a table and writes JSON; on a shared machine
timings are noisy, memory less so.

    python scripts/bench_hear_long_file_memory.py [--minutes 0.5 1 10] [--max_seconds 6 0] [--paper_size]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hf_audio_cr.cli import parse_script_args

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "tests" / "fixtures" / "audio" / "speech_female.ogg"
DRUM = Path("/usr/share/hydrogen/data/drumkits/GMRockKit/Kick-Hard.wav")
SMALL = dict(hidden_size=64, intermediate_size=128, num_attention_heads=2, num_hidden_layers=2, task_hidden_size=64,
             task_intermediate_size=128, task_num_attention_heads=2, spectrum_hidden_size=32, classifier_hidden_size=32)


def write_folder(root: Path, minutes: float) -> None:
    import shutil

    import numpy as np
    import soundfile as sf

    from hf_audio_cr.data.audio_files import load_audio_file

    speech = load_audio_file(SPEECH, 16000)
    total = int(minutes * 60 * 16000)
    (root / "train" / "speech").mkdir(parents=True)
    (root / "train" / "drums").mkdir(parents=True)
    with sf.SoundFile(root / "train" / "speech" / "long.flac", "w", 16000, 1, format="FLAC") as f:
        for start in range(0, total, speech.size):  # piece by piece: the writer stays small
            f.write(speech[: min(speech.size, total - start)].astype(np.float32))
    shutil.copy(DRUM, root / "train" / "drums" / "kick.wav")


def measure(folder: str, max_seconds: float, paper_size: bool) -> dict:
    """In the child: one training step and one evaluation of the folder; peak RSS after each."""
    import torch

    from hf_audio_cr.data import AudioClassificationCollator, AudioQualityPolicy, load_audiofolder
    from hf_audio_cr.models.hear import HEARFeatureExtractor
    from hf_audio_cr.models.hear_variants import build_hear_classifier
    from hf_audio_cr.training.hear_trainers import HEARFineTuningArguments, HEARFineTuningTrainer

    torch.manual_seed(0)
    data = load_audiofolder(folder)["train"]
    model = build_hear_classifier("scratch", None, dict(enumerate(data.features["label"].names)),
                                  None if paper_size else SMALL)
    limit = max_seconds or None
    fe = HEARFeatureExtractor(max_seconds=limit)  # 0: whole clips, in the extractor too
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # noqa: E731
    before, started = peak(), time.perf_counter()
    batch = AudioClassificationCollator(fe, label_column="label", max_seconds=limit, seed=0)(list(data))
    model.train()
    model(**batch).loss.backward()
    train_peak, train_frames = peak(), int(batch["input_values"].shape[1])
    args = HEARFineTuningArguments(output_dir=tempfile.mkdtemp(), variant="scratch", per_device_eval_batch_size=8,
                                   report_to=[], use_cpu=True, disable_tqdm=True)
    evaluation = AudioClassificationCollator(fe, label_column="label", quality=AudioQualityPolicy(mode="eval"),
                                             max_seconds=limit)
    trainer = HEARFineTuningTrainer(model=model, args=args, data_collator=evaluation)
    predictions = trainer.predict(data).predictions
    return {"rss_before_mb": before, "peak_rss_train_step_mb": train_peak, "peak_rss_after_eval_mb": peak(),
            "train_frames": train_frames, "eval_clips": int(predictions.shape[0]),
            "seconds": time.perf_counter() - started, "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6}


@dataclass
class BenchArguments:
    minutes: list[float] = field(default_factory=lambda: [0.5, 1, 10], metadata={"help": "Lengths of the long file."})
    max_seconds: list[float] = field(default_factory=lambda: [6.0], metadata={
        "help": "Crop / window lengths to compare; 0 = whole clips (only for short files)."})
    paper_size: bool = field(default=False, metadata={"help": "The paper's 15M-parameter HEAR instead of a small one."})
    output: str = field(default="outputs/bench_hear_long_file_memory.json", metadata={"help": "Where the JSON goes."})
    child: list[str] | None = field(default=None, metadata={"help": argparse.SUPPRESS})  # FOLDER MAX_SECONDS PAPER


def main(argv=None):
    (args,) = parse_script_args(BenchArguments, argv, description=__doc__)
    if args.child:
        print(json.dumps(measure(args.child[0], float(args.child[1]), args.child[2] == "1")))
        return None
    rows = []
    for minutes in args.minutes:
        with tempfile.TemporaryDirectory() as tmp:
            write_folder(Path(tmp), minutes)
            for max_seconds in args.max_seconds:
                env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                           OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
                command = [sys.executable, __file__, "--child", tmp, str(max_seconds), str(int(args.paper_size))]
                out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
                rows.append({"minutes": minutes, "max_seconds": max_seconds or None,
                             **json.loads(out.stdout.strip().splitlines()[-1])})
    print("| audio | max_seconds | params M | train frames | peak RSS train step MB | peak RSS after eval MB | "
          "RSS before MB | s |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['minutes']:g} min | {r['max_seconds'] or 'whole clip'} | {r['parameters_m']:.2f} | {r['train_frames']} | "
              f"{r['peak_rss_train_step_mb']:.0f} | {r['peak_rss_after_eval_mb']:.0f} | {r['rss_before_mb']:.0f} | "
              f"{r['seconds']:.1f} |")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"rows": rows, "argv": sys.argv, "load_average": os.getloadavg()}, indent=1))
    return rows


if __name__ == "__main__":
    main()
