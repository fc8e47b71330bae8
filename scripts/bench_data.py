"""Data-path throughput: FLAC 48 kHz parquet -> decode + resample (datasets/torchcodec) -> quality check -> fbank
-> batch, for 0/1/2 DataLoader workers, next to the tiny CR-AudioMAE training step's clip rate (CRTrainer).

    python scripts/bench_data.py [--num_clips 96 --batch_size 8 --workers 0 1 2 --output_dir outputs/bench_data]
Clips are 10 s like AudioSet's, cut from the real recordings in tests/fixtures/audio and /usr/share/sounds/alsa.
It also prepares the file once with scripts/prepare_audioset.py (16 kHz mono FLAC) and times the data path on
one core (no workers, 1 thread) before and after, at 1024 frames, in interleaved rounds: the clips/s/core
ratio, the preparation's own cost, and the cores a GPU consuming `--gpu_clips_per_s` clips/s needs.
"""
import glob  # noqa: E401
import json
import os
import tempfile
import time
from dataclasses import dataclass, field

from hf_audio_cr.cli import parse_script_args  # numpy, torch, datasets and the models are imported after parsing

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_length=128)


@dataclass
class BenchArguments:
    num_clips: int = field(default=96, metadata={"help": "10 s clips in the parquet file."})
    batch_size: int = field(default=8, metadata={"help": "Clips per batch (data loading and the train step)."})
    workers: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "DataLoader worker counts to time."})
    max_lengths: list[int] = field(default_factory=lambda: [128, 1024], metadata={"help": "fbank frames kept."})
    train_steps: int = field(default=10, metadata={"help": "Timed tiny CR-AudioMAE train steps (after one warm-up)."})
    repeats: int = field(default=2, metadata={"help": "Best of N epochs per setting (the CPUs are shared)."})
    torch_threads: int = field(default=1, metadata={"help": "Intra-op threads of the main process (workers use 1)."})
    output_dir: str = field(default="outputs/bench_data", metadata={"help": "Where the parquet file and results JSON go."})
    gpu_clips_per_s: float = field(default=1000.0, metadata={"help": "Clips/s one GPU's ViT-B step consumes."})
    prepared_rounds: int = field(default=3, metadata={"help": "Interleaved before/after rounds (0: skip)."})


def real_10s_clips(n, rate=48000):
    import numpy as np

    from hf_audio_cr.data.audio_files import load_audio_file

    sources = sorted(glob.glob("tests/fixtures/audio/*.ogg")) + sorted(glob.glob("/usr/share/sounds/alsa/*.wav"))
    waves = []
    for path in sources:
        waves.append(load_audio_file(path, rate))
    stream = np.concatenate(waves)
    for i in range(n):  # every clip starts elsewhere in the concatenated recordings
        yield {"video_id": f"clip{i:04d}", "audio": (np.resize(np.roll(stream, -i * 7919), 10 * rate), rate), "labels": ["/m/09x0r"]}


def data_rate(parquet, workers, batch_size, max_length):
    import torch

    from hf_audio_cr import AudioMAEFeatureExtractor
    from hf_audio_cr.data import AudioClassificationCollator, AudioQualityPolicy, load_audioset

    fe = AudioMAEFeatureExtractor(max_length=max_length)
    policy = AudioQualityPolicy()
    loader = torch.utils.data.DataLoader(
        load_audioset(data_files=parquet, reshard=True), batch_size=batch_size, num_workers=workers,
        collate_fn=AudioClassificationCollator(fe, quality=policy, long_audio="truncate"),
    )
    start = time.perf_counter()  # a whole epoch, worker start-up included (prefetching would flatter a partial one)
    clips = sum(batch["input_values"].shape[0] for batch in loader)
    return clips / (time.perf_counter() - start), policy.counts()["clips_skipped"]


def train_rate(parquet, bench, output_dir):
    import numpy as np

    from hf_audio_cr import AudioMAEFeatureExtractor, CRAudioMAEConfig, CRAudioMAEForAudioClassification
    from hf_audio_cr.data import AudioClassificationCollator, audioset_id2label, load_audioset
    from hf_audio_cr.training import CRTrainer, CRTrainingArguments

    model = CRAudioMAEForAudioClassification(CRAudioMAEConfig(id2label=audioset_id2label("556"), **TINY))
    args = CRTrainingArguments(output_dir=output_dir, use_cpu=True, report_to=[], time_mask=48, num_views=2,
                               per_device_train_batch_size=bench.batch_size)
    (trainer := CRTrainer(model=model, args=args)).create_optimizer()
    collator = AudioClassificationCollator(AudioMAEFeatureExtractor(max_length=128), long_audio="truncate")
    batch = collator(list(load_audioset(data_files=parquet).take(bench.batch_size)))
    times = []
    model.train()
    for _ in range(bench.train_steps + 1):  # Eq. 6 loss (views, mixup, SpecAugment, CR), backward, AdamW
        start = time.perf_counter()
        trainer.compute_loss(model, batch).backward()
        trainer.optimizer.step(), trainer.optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return bench.batch_size / float(np.median(times[1:]))


def compare_prepared(bench) -> dict:
    """Data-path clips/s on one core, 48 kHz FLAC vs the same clips after prepare_audioset.py (16 kHz FLAC)."""
    import statistics
    import sys

    import torch

    from hf_audio_cr import AudioMAEFeatureExtractor
    from hf_audio_cr.data import AudioClassificationCollator, load_audioset
    from hf_audio_cr.data.audioset import write_audioset_parquet

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from prepare_audioset import prepare_audioset

    with tempfile.TemporaryDirectory() as tmp:
        source = str(write_audioset_parquet(real_10s_clips(bench.num_clips), f"{tmp}/bench.parquet", row_group_size=4))
        prepare_rate = {}
        for store in ("none", "fp16"):  # 16 kHz FLAC; the same plus stored fp16 fbanks (--store_fbank fp16)
            start = time.perf_counter()
            prepare_audioset([source], f"{tmp}/prepared_{store}", num_proc=1, store_fbank=store)
            prepare_rate[store] = bench.num_clips / (time.perf_counter() - start)
        paths = {"before": source, "after": f"{tmp}/prepared_none/bench.parquet",
                 "after_fp16_fbank": f"{tmp}/prepared_fp16/bench.parquet"}
        rates = {name: [] for name in paths}
        for _ in range(bench.prepared_rounds):
            for name, path in paths.items():
                rates[name].append(data_rate(path, 0, bench.batch_size, 1024)[0])
        # what the stored fp16 fbank changes in the model input (vs computing it from the prepared FLAC)
        fe = AudioMAEFeatureExtractor(max_length=1024)
        exact, stored = (next(iter(torch.utils.data.DataLoader(load_audioset(data_files=paths[key]), batch_size=8,
                                                              collate_fn=AudioClassificationCollator(fe, long_audio="truncate"))))
                         for key in ("after", "after_fp16_fbank"))
        fp16_max_abs = float((exact["input_values"] - stored["input_values"]).abs().max())
    median = {name: statistics.median(values) for name, values in rates.items()}
    return {"before_clips_per_s_per_core": median["before"], "after_clips_per_s_per_core": median["after"],
            "after_fp16_fbank_clips_per_s_per_core": median["after_fp16_fbank"],
            "ratio": statistics.median(a / b for a, b in zip(rates["after"], rates["before"])),
            "ratio_fp16_fbank": statistics.median(a / b for a, b in zip(rates["after_fp16_fbank"], rates["before"])),
            "ratio_fp16_fbank_spread": [min(a / b for a, b in zip(rates["after_fp16_fbank"], rates["before"])),
                                        max(a / b for a, b in zip(rates["after_fp16_fbank"], rates["before"]))],
            "fp16_fbank_input_max_abs_diff": fp16_max_abs,
            "rounds": rates, "prepare_clips_per_s": prepare_rate["none"],
            "prepare_fp16_fbank_clips_per_s": prepare_rate["fp16"],
            **{f"cores_per_gpu_{name}": bench.gpu_clips_per_s / value for name, value in median.items()}}


def main():
    (bench,) = parse_script_args(BenchArguments, description=__doc__)
    import torch

    from hf_audio_cr.data.audioset import write_audioset_parquet

    os.makedirs(bench.output_dir, exist_ok=True), torch.set_num_threads(bench.torch_threads)
    with tempfile.TemporaryDirectory() as tmp:
        parquet = str(write_audioset_parquet(real_10s_clips(bench.num_clips), f"{tmp}/bench.parquet", row_group_size=4))
        step = train_rate(parquet, bench, tmp)
        rows = []
        for m in bench.max_lengths:
            for w in bench.workers:
                rate, skipped = max(data_rate(parquet, w, bench.batch_size, m) for _ in range(bench.repeats))
                rows.append({"workers": w, "max_length": m, "clips_per_s": rate, "skipped": skipped})
    prepared = compare_prepared(bench) if bench.prepared_rounds else None
    print(f"tiny CR-AudioMAE train step (2 views, batch {bench.batch_size}, CPU): {step:.1f} clips/s\n")
    print("| workers | fbank frames | data path clips/s | x train step |\n|---|---|---|---|")
    for row in rows:
        row["ratio_to_train_step"] = row["clips_per_s"] / step
        print(f"| {row['workers']} | {row['max_length']} | {row['clips_per_s']:.1f} | {row['ratio_to_train_step']:.2f} |")
    if prepared:
        print(f"\none core, 1024 frames: 48 kHz FLAC {prepared['before_clips_per_s_per_core']:.1f} clips/s -> prepared "
              f"16 kHz FLAC {prepared['after_clips_per_s_per_core']:.1f} clips/s ({prepared['ratio']:.2f}x, goal >= 3; "
              f"median of {bench.prepared_rounds} interleaved rounds); preparation {prepared['prepare_clips_per_s']:.1f} "
              f"clips/s; cores per GPU at {bench.gpu_clips_per_s:g} clips/s: {prepared['cores_per_gpu_before']:.0f} -> "
              f"{prepared['cores_per_gpu_after']:.0f}; load average {os.getloadavg()[0]:.2f}")
        print(f"with stored fp16 fbanks (--store_fbank fp16): {prepared['after_fp16_fbank_clips_per_s_per_core']:.1f} "
              f"clips/s ({prepared['ratio_fp16_fbank']:.2f}x, rounds {prepared['ratio_fp16_fbank_spread'][0]:.2f}-"
              f"{prepared['ratio_fp16_fbank_spread'][1]:.2f}; goal >= 3), cores per GPU "
              f"{prepared['cores_per_gpu_after_fp16_fbank']:.1f}; model input max abs diff vs fp32 fbank "
              f"{prepared['fp16_fbank_input_max_abs_diff']:.2e}")
    result = {"train_step_clips_per_s": step, "data_path": rows, "prepared": prepared, "cpu_count": os.cpu_count(),
              "load_average": os.getloadavg(), "torch_threads": torch.get_num_threads(), **vars(bench)}
    with open(os.path.join(bench.output_dir, "bench_data.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
