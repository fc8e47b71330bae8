#!/usr/bin/env python
"""One-time preparation of AudioSet parquet for training: every clip decoded once, downmixed, resampled
48 -> 16 kHz and re-encoded as 16 kHz mono 16-bit FLAC, so training decodes without resampling.

    python scripts/prepare_audioset.py --data_files 'audioset/unbalanced/*.parquet' --output_dir audioset_16k \
        [--num_proc 8]

One output parquet file per input file (same name, same schema: ``video_id``, ``audio``, ``labels``,
``human_labels``), written through ``datasets.map(num_proc=...)``; a file whose output exists is skipped, so an
interrupted run resumes where it stopped (outputs appear atomically). Bad clips (unreadable, empty, NaN,
too short, silent: ``AudioQualityPolicy(mode="train")``) are left out and counted per reason in
``<output_dir>/prepare_report.json``. Read the result with ``load_audioset(data_files=...)`` as before.

``--store_fbank fp16`` also stores each clip's log-Mel frames (``AudioMAEFeatureExtractor().log_mel``, float16
bytes in a ``fbank_fp16`` column, 250 KB per 10 s clip); ``AudioClassificationCollator`` with a truncating
AudioMAE extractor of the same frame settings then reads them instead of decoding and computing the fbank.
"""
import glob
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

# datasets and the package's data modules (torch) are imported where used: `--help` answers without them
from hf_audio_cr.cli import parse_script_args

if TYPE_CHECKING:
    from hf_audio_cr.data import AudioQualityPolicy

SAMPLING_RATE = 16000
_POLICY = None  # one per worker process (map's num_proc forks)
_EXTRACTOR = None
STORE_FBANK = ("none", "fp16")


def _policy() -> "AudioQualityPolicy":
    global _POLICY
    if _POLICY is None:
        from hf_audio_cr.data import AudioQualityPolicy

        _POLICY = AudioQualityPolicy(mode="train", sampling_rate=SAMPLING_RATE)
    return _POLICY


def _log_mel_fp16(wave) -> bytes:
    global _EXTRACTOR
    if _EXTRACTOR is None:
        from hf_audio_cr import AudioMAEFeatureExtractor
        from hf_audio_cr.data.collate import STORED_FBANK_SETTINGS

        _EXTRACTOR = AudioMAEFeatureExtractor(**{k: v for k, v in STORED_FBANK_SETTINGS.items()})
    import numpy as np
    import torch

    return _EXTRACTOR.log_mel(torch.as_tensor(np.asarray(wave, dtype=np.float32))).to(torch.float16).numpy().tobytes()


def prepare_clip(row: dict, store_fbank: str = "none") -> dict:
    """Decode (datasets resamples to 16 kHz while decoding), check, re-encode as 16 kHz mono FLAC (and, with
    ``store_fbank="fp16"``, the clip's float16 log-Mel frames)."""
    import datasets

    from hf_audio_cr.data.audioset import encode_flac, safe_decode
    from hf_audio_cr.data.collate import STORED_FBANK_COLUMN

    policy = _policy()
    before = policy.counts()
    # an undecodable file becomes an UnreadableAudio marker that the policy counts, not an exception
    decoded = safe_decode(row["audio"], datasets.Audio(sampling_rate=SAMPLING_RATE), clip_id=row.get("video_id"))
    wave = policy.check(decoded, clip_id=row.get("video_id"))
    if wave is None:
        after = policy.counts()
        reason = next((k for k in after if k not in ("clips_seen", "clips_skipped") and after[k] > before.get(k, 0)),
                      "skipped")
        return {"audio": None, "skip_reason": reason, **({STORED_FBANK_COLUMN: None} if store_fbank != "none" else {})}
    audio = {"bytes": encode_flac((wave, SAMPLING_RATE), SAMPLING_RATE, "PCM_16"), "path": f"{row['video_id']}.flac"}
    out = {"audio": audio, "skip_reason": ""}
    if store_fbank == "fp16":  # of the samples the FLAC holds (16-bit), as training would decode them
        import io

        import soundfile as sf

        out[STORED_FBANK_COLUMN] = _log_mel_fp16(sf.read(io.BytesIO(audio["bytes"]), dtype="float32")[0])
    return out


def prepare_file(source: str, target: Path, num_proc: int, store_fbank: str = "none") -> dict:
    import datasets

    from hf_audio_cr.data.collate import STORED_FBANK_COLUMN

    dataset = datasets.load_dataset("parquet", data_files=source, split="train", cache_dir=str(target.parent / ".cache"))
    dataset = dataset.cast_column("audio", datasets.Audio(decode=False))  # decoded in prepare_clip
    features = dataset.features.copy()
    features["audio"] = datasets.Audio(decode=False)
    features["skip_reason"] = datasets.Value("string")
    if store_fbank != "none":
        features[STORED_FBANK_COLUMN] = datasets.Value("binary")
    prepared = dataset.map(prepare_clip, num_proc=num_proc if num_proc > 1 else None, features=features,
                           fn_kwargs={"store_fbank": store_fbank}, desc=f"16 kHz FLAC: {Path(source).name}")
    reasons = [r for r in prepared["skip_reason"] if r]
    kept = prepared.filter(lambda reason: not reason, input_columns="skip_reason").remove_columns("skip_reason")
    partial = target.with_suffix(".parquet.partial")
    kept.cast_column("audio", datasets.Audio()).to_parquet(str(partial))
    os.replace(partial, target)  # atomic: a crash leaves no half-written output behind
    return {"source": source, "output": str(target), "clips": len(dataset), "kept": len(kept),
            "skipped": {reason: reasons.count(reason) for reason in sorted(set(reasons))}}


def prepare_audioset(data_files: list[str], output_dir: str, num_proc: int = 1, store_fbank: str = "none") -> dict:
    if store_fbank not in STORE_FBANK:
        raise ValueError(f"prepare_audioset(store_fbank={store_fbank!r}): use one of {STORE_FBANK}.")
    sources = sorted({path for pattern in data_files for path in (glob.glob(pattern) or [pattern])})
    missing = [s for s in sources if not os.path.isfile(s)]
    if missing:
        raise FileNotFoundError(f"prepare_audioset: no such parquet file(s): {missing}")
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    report_path = output / "prepare_report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {"files": {}}
    started = time.perf_counter()
    for source in sources:
        target = output / Path(source).name
        if target.is_file() and source in report["files"]:
            print(f"[prepare_audioset] {target} exists, skipped (resume)")
            continue
        report["files"][source] = prepare_file(source, target, num_proc, store_fbank)
        report_path.write_text(json.dumps(report, indent=1))  # progress survives an interruption
    files = report["files"].values()
    report["total"] = {"clips": sum(f["clips"] for f in files), "kept": sum(f["kept"] for f in files)}
    skipped = {}
    for f in files:
        for reason, count in f["skipped"].items():
            skipped[reason] = skipped.get(reason, 0) + count
    report["total"]["skipped"] = skipped
    report["seconds_this_run"] = time.perf_counter() - started
    if store_fbank != "none":
        from hf_audio_cr.data.collate import STORED_FBANK_COLUMN, STORED_FBANK_SETTINGS

        report["stored_fbank"] = {"column": STORED_FBANK_COLUMN, "dtype": "float16", **STORED_FBANK_SETTINGS}
    report_path.write_text(json.dumps(report, indent=1))
    return report


@dataclass
class PrepareArguments:
    data_files: list[str] = field(metadata={"help": "AudioSet parquet files or glob patterns"})
    output_dir: str = field(metadata={"help": "Where the 16 kHz parquet files and prepare_report.json go."})
    num_proc: int = field(default=1, metadata={"help": "processes for datasets.map"})
    store_fbank: str = field(default="none", metadata={
        "help": f"One of {STORE_FBANK}: also store each clip's log-Mel frames (fp16), read by the collator instead "
                "of decoding.", "choices": list(STORE_FBANK)})


def main(argv=None):
    (args,) = parse_script_args(PrepareArguments, argv, description=__doc__)
    report = prepare_audioset(args.data_files, args.output_dir, args.num_proc, args.store_fbank)
    print(json.dumps(report["total"], indent=1))


if __name__ == "__main__":
    main()
