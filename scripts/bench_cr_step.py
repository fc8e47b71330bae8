"""Seconds per optimizer step of CRTrainer for k = 1, 2, 6 views, and CR-step(k) / (k x baseline step).

The baseline is plain BCE fine-tuning (k = 1, lambda = 0) with the same augmentations. A ratio <= 1 means
running the k views as one batched forward costs no more than k separate baseline steps.

    python scripts/bench_cr_step.py [--models tiny vit-b] [--batch_size 2] [--steps 3] [--rounds 2] [--bf16] [--device cuda]

On a GPU each setting also reports its peak allocated memory (torch.cuda.max_memory_allocated).
"""
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hf_audio_cr.cli import parse_script_args  # torch, the model and the trainer are imported after parsing

AUDIO = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "audio"
CONFIGS = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_length=128),
    "vit-b": dict(max_length=1024),  # the paper's ViT-B, 10.24 s input
}


def real_batch(batch_size: int, max_length: int, num_labels: int) -> dict:
    import torch

    from hf_audio_cr import AudioMAEFeatureExtractor
    from hf_audio_cr.data.audio_files import load_audio_file

    waves = []
    for path in sorted(AUDIO.glob("*.ogg")):
        waves.append(torch.from_numpy(load_audio_file(path, 16000)))
    waves = [waves[i % len(waves)] for i in range(batch_size)]
    features = AudioMAEFeatureExtractor(max_length=max_length)(waves, sampling_rate=16000, long_audio="truncate")
    labels = torch.zeros(batch_size, num_labels)
    labels[torch.arange(batch_size), torch.arange(batch_size) % num_labels] = 1.0
    return {"input_values": features["input_values"], "labels": labels}


def step_times(model_name: str, num_views: int, batch_size: int, steps: int, output_dir: str,
               device: str = "auto", bf16: bool = False) -> tuple[list[float], int]:
    import torch

    from hf_audio_cr import CRAudioMAEConfig, CRAudioMAEForAudioClassification
    from hf_audio_cr.training import CRTrainer, CRTrainingArguments

    torch.manual_seed(0)
    model = CRAudioMAEForAudioClassification(CRAudioMAEConfig(**CONFIGS[model_name]))
    use_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    args = CRTrainingArguments(
        output_dir=output_dir, use_cpu=use_cpu, report_to="none", num_views=num_views, bf16=bf16,
        cr_weight=2.0 if num_views > 1 else 0.0, time_mask=min(192, CONFIGS[model_name]["max_length"] // 2),
    )
    on_gpu = args.device.type == "cuda"
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    trainer = CRTrainer(model=model, args=args)
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop; we call training_step directly
    optimizer = trainer.create_optimizer()
    batch = {k: v.to(args.device) for k, v in real_batch(batch_size, model.config.max_length, model.config.num_labels).items()}
    model.to(args.device).train()
    times = []
    for step in range(steps + 1):  # the first step warms up allocators and kernels
        if on_gpu:
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.training_step(model, dict(batch))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if on_gpu:
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - start)
    return times, (torch.cuda.max_memory_allocated() if on_gpu else 0)


@dataclass
class BenchArguments:
    models: list[str] = field(default_factory=lambda: ["tiny", "vit-b"], metadata={
        "choices": sorted(CONFIGS),
        "help": "model sizes to time (tiny: 2 blocks of width 32; vit-b: the paper's encoder)"})
    views: list[int] = field(default_factory=lambda: [1, 2, 6], metadata={"help": "k values (views per clip) to time"})
    batch_size: int = field(default=2, metadata={"help": "clips per step"})
    steps: int = field(default=3, metadata={"help": "timed steps per setting and round"})
    rounds: int = field(default=2, metadata={"help": "rounds over all settings; the fastest is reported"})
    device: str = field(default="auto", metadata={"choices": ["auto", "cpu", "cuda"],
                                                  "help": "where to time (auto: cuda if available)"})
    bf16: bool = field(default=False, metadata={"help": "bf16 mixed precision (Trainer's autocast)"})
    output: str = field(default="outputs/bench_cr_step.json", metadata={"help": "JSON file for the results"})


def main(argv=None):
    (args,) = parse_script_args(BenchArguments, argv, description=__doc__)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here.")
    gpu = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.cuda.get_device_name() if gpu else f"CPU, {torch.get_num_threads()} threads"
    # Rounds interleave the k values so that load from other processes hits all of them alike; the fastest
    # step of each setting is reported (the least disturbed one on a shared machine).
    times, peak = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.rounds):
            for model_name in args.models:
                for k in args.views:
                    measured, memory = step_times(model_name, k, args.batch_size, args.steps, scratch, args.device, args.bf16)
                    times.setdefault((model_name, k), []).extend(measured)
                    peak[(model_name, k)] = max(peak.get((model_name, k), 0), memory)
    rows = []
    for model_name in args.models:
        baseline = min(times[(model_name, 1)])
        for k in args.views:
            step = min(times[(model_name, k)])
            rows.append({"model": model_name, "num_views": k, "batch_size": args.batch_size, "seconds_per_step": step,
                         "median_seconds_per_step": statistics.median(times[(model_name, k)]),
                         "ratio_to_k_baseline_steps": step / (k * baseline),
                         "peak_gpu_memory_mb": peak[(model_name, k)] / 2**20, "bf16": args.bf16})
    print(f"CR step time ({device}; fastest of {args.rounds} x {args.steps} steps, each round after one warm-up)")
    print(f"{'model':<6} {'k':>2} {'batch':>5} {'s/step':>9} {'median':>9} {'CR(k)/(k x base)':>17}")
    for row in rows:
        print(f"{row['model']:<6} {row['num_views']:>2} {row['batch_size']:>5} {row['seconds_per_step']:>9.4f} "
              f"{row['median_seconds_per_step']:>9.4f} {row['ratio_to_k_baseline_steps']:>17.3f}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"device": device, "steps": args.steps, "rounds": args.rounds, "bf16": args.bf16,
                                             "results": rows}, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
