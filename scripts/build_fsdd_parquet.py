"""Pack an FSDD checkout into the parquet file the package ships (FLAC, lossless).

    python scripts/build_fsdd_parquet.py ../shared/data/fsdd            # -> hf_audio_cr/data/resources/fsdd.parquet
"""
from dataclasses import dataclass, field

from hf_audio_cr.cli import parse_script_args


@dataclass
class BuildArguments:
    checkout: str = field(metadata={"positional": True, "help": "FSDD folder with recordings/{digit}_{speaker}_{index}.wav"})
    output: str | None = field(default=None, metadata={"help": "Parquet file to write (default: the package's copy)."})


if __name__ == "__main__":
    (args,) = parse_script_args(BuildArguments, description=__doc__)
    from hf_audio_cr.data.downstream import FSDD_PARQUET, write_fsdd_parquet

    path = write_fsdd_parquet(args.checkout, args.output or FSDD_PARQUET)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
