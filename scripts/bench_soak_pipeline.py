#!/usr/bin/env python
"""Soak test of ``pipeline("audio-classification")`` on a saved folder: many real and damaged files through ONE
pipeline object, counted.

Real files: the project's fixture recordings (tests/fixtures/audio, tests/fixtures/fsdd) and the Debian packages'
sounds (/usr/share/sounds, /usr/share/asterisk/sounds, /usr/share/hydrogen). Damaged copies, made here from the
real ones: truncated (a third of the bytes), zero-byte, wrong extension (an Ogg file named .wav), NaN samples
(float WAV), one sample. Every file ends as

* ``scored``  -- the pipeline returned scores;
* ``refused`` -- a ``ValueError`` / ``FileNotFoundError`` whose message names the file (the contract);
* ``crash``   -- anything else: another exception type, or an error that does not name the file (goal: 0).

Also reported: peak RSS (``ru_maxrss``) and the drift of the resident set from the first to the last hundred files
(mean RSS of each hundred; goal: flat). Prints a table and writes JSON. Most of the drift is bounded, not a leak:
torchaudio's resampling runs a conv1d whose oneDNN primitive is cached per input length (up to 1,024 entries);
``ONEDNN_PRIMITIVE_CACHE_CAPACITY=0`` turns that cache off and the resident set stays flat.

    python scripts/bench_soak_pipeline.py --num_files 1000 --output_json runs/soak_pipeline.json
    python scripts/bench_soak_pipeline.py --model path/to/folder --num_files 1000   # a trained folder
"""
import json
import os
import random
import resource
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hf_audio_cr.cli import parse_script_args

ROOT = Path(__file__).resolve().parents[1]
REAL_SOURCES = [ROOT / "tests/fixtures/audio", ROOT / "tests/fixtures/fsdd", Path("/usr/share/sounds"),
                Path("/usr/share/asterisk/sounds"), Path("/usr/share/hydrogen")]
AUDIO_SUFFIXES = {".wav", ".ogg", ".oga", ".flac"}
DAMAGES = ("truncated", "zero_byte", "wrong_extension", "nan", "one_sample")


def real_files(limit_per_source: int = 400) -> list:
    files = []
    for source in REAL_SOURCES:
        found = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()) if source.is_dir() else []
        files += found[:limit_per_source]
    if not files:
        raise SystemExit("no real recordings found (tests/fixtures/audio is part of the checkout: run from the repo root)")
    return files


def damaged_copy(kind: str, source: Path, folder: Path, index: int) -> Path:
    import soundfile as sf

    if kind == "wrong_extension":  # content and name disagree: a decoder must go by the content
        ogg = sorted((ROOT / "tests/fixtures/audio").glob("*.ogg"))[index % 3]
        out = folder / f"{index}_{ogg.stem}.wav"
        out.write_bytes(ogg.read_bytes())
        return out
    out = folder / f"{index}_{kind}_{source.stem}{'.wav' if kind in ('nan', 'one_sample') else source.suffix}"
    if kind == "truncated":
        data = source.read_bytes()
        out.write_bytes(data[: len(data) // 3])
    elif kind == "zero_byte":
        out.write_bytes(b"")
    else:
        wave, rate = sf.read(source, dtype="float32", always_2d=True)
        if kind == "nan":
            wave = wave.copy()
            wave[len(wave) // 2] = np.nan
            sf.write(out, wave, rate, subtype="FLOAT")
        else:
            sf.write(out, wave[:1], rate)
    return out


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def build_folder(folder: Path, family: str) -> str:
    import torch

    import hf_audio_cr

    torch.manual_seed(0)
    if family == "cr":
        config = hf_audio_cr.CRAudioMAEConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                              intermediate_size=128, num_labels=10)
        hf_audio_cr.CRAudioMAEForAudioClassification(config).eval().save_pretrained(folder)
        hf_audio_cr.AudioMAEFeatureExtractor().save_pretrained(folder)
    else:
        config = hf_audio_cr.HEARConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, task_hidden_size=64,
                                        task_intermediate_size=128, spectrum_hidden_size=32, classifier_hidden_size=32,
                                        num_labels=10)
        hf_audio_cr.HEARForAudioClassification(config).eval().save_pretrained(folder)
        hf_audio_cr.HEARFeatureExtractor().save_pretrained(folder)
    return str(folder)


def soak(model: str, files: list) -> dict:
    from transformers import pipeline

    tagger = pipeline("audio-classification", model=model, trust_remote_code=True)
    counts = {"scored": 0, "refused": 0, "crash": 0}
    by_kind, crashes, refused_real, rss = {}, [], [], []
    started = time.perf_counter()
    for path, kind in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tagger(str(path), top_k=3)
            outcome = "scored"
        except (ValueError, FileNotFoundError) as err:
            outcome = "refused" if path.name in str(err) else "crash"
            if outcome == "refused" and kind == "real":
                refused_real.append({"file": str(path), "error": f"{type(err).__name__}: {str(err)[:300]}"})
            if outcome == "crash":
                crashes.append({"file": str(path), "error": f"{type(err).__name__}: {str(err)[:300]}"})
        except Exception as err:  # noqa: BLE001  counted: the goal is that nothing lands here
            outcome = "crash"
            crashes.append({"file": str(path), "error": f"{type(err).__name__}: {str(err)[:300]}"})
        counts[outcome] += 1
        by_kind.setdefault(kind, {"scored": 0, "refused": 0, "crash": 0})[outcome] += 1
        rss.append(rss_mib())
    window = min(100, max(1, len(rss) // 2))
    first, last = float(np.mean(rss[:window])), float(np.mean(rss[-window:]))
    half = rss[len(rss) // 2:]  # past the warm-up (allocator pools, first decodes of each format): is it still growing?
    slope = float(np.polyfit(np.arange(len(half)), half, 1)[0] * 100) if len(half) > 1 else 0.0
    return {
        "files": len(files), **counts, "by_kind": by_kind, "crashes": crashes[:20], "refused_real": refused_real[:20],
        "rss_mib_every_10_files": [round(v, 1) for v in rss[::10]],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_first_window_mib": first, "rss_last_window_mib": last, "rss_drift_mib": last - first,
        "drift_window_files": window, "rss_slope_second_half_mib_per_100_files": slope, "seconds": time.perf_counter() - started, "pipeline": type(tagger).__module__,
        # torchaudio's resampling conv keeps one oneDNN primitive per input length (up to 1024 by default)
        "onednn_primitive_cache_capacity": os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "default (1024)"),
    }


@dataclass
class BenchArguments:
    num_files: int = field(default=1000, metadata={"help": "Files sent through the one pipeline object."})
    damaged_fraction: float = field(default=0.2, metadata={"help": "share of the files that are damaged copies"})
    model: str | None = field(default=None, metadata={
        "help": "a saved folder; default: a small random CR-AudioMAE / HEAR folder"})
    family: str = field(default="cr", metadata={"choices": ("cr", "hear"), "help": "the default folder's model family"})
    seed: int = field(default=0, metadata={"help": "Seed of the file draw and of the damage."})
    threads: int = field(default=1, metadata={"help": "torch intra-op threads."})
    output_json: str = field(default="runs/soak_pipeline.json", metadata={"help": "Where the results JSON goes."})


def main(argv=None):
    (args,) = parse_script_args(BenchArguments, argv, description=__doc__)
    if args.num_files < 1 or not 0 <= args.damaged_fraction <= 1:
        raise SystemExit("--num_files must be >= 1 and --damaged_fraction in [0, 1]")
    import torch

    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    real = real_files()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or build_folder(tmp / "model", args.family)
        (tmp / "damaged").mkdir()
        files = []
        for index in range(args.num_files):
            source = rng.choice(real)
            if rng.random() < args.damaged_fraction:
                kind = DAMAGES[index % len(DAMAGES)]
                files.append((damaged_copy(kind, source, tmp / "damaged", index), kind))
            else:
                files.append((source, "real"))
        result = soak(model, files)
    result.update(command=" ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
                  real_pool=len(real), model=args.model or f"random {args.family} folder", seed=args.seed)
    print(f"{'kind':<16}{'files':>7}{'scored':>8}{'refused':>9}{'crash':>7}")
    for kind, row in sorted(result["by_kind"].items()):
        print(f"{kind:<16}{sum(row.values()):>7}{row['scored']:>8}{row['refused']:>9}{row['crash']:>7}")
    print(f"{'total':<16}{result['files']:>7}{result['scored']:>8}{result['refused']:>9}{result['crash']:>7}")
    print(f"peak RSS {result['peak_rss_mib']:.0f} MiB; RSS first/last {result['drift_window_files']} files "
          f"{result['rss_first_window_mib']:.1f} / {result['rss_last_window_mib']:.1f} MiB "
          f"(drift {result['rss_drift_mib']:+.1f} MiB); second half {result['rss_slope_second_half_mib_per_100_files']:+.2f} "
          f"MiB per 100 files; {result['seconds']:.0f} s")
    for crash in result["crashes"]:
        print("CRASH", crash["file"], crash["error"])
    out = Path(args.output_json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
