"""Pack an FSDD checkout into the parquet file the package ships (FLAC, lossless).

    python scripts/build_fsdd_parquet.py ../shared/data/fsdd            # -> hf_audio_cr/data/resources/fsdd.parquet
"""
import argparse

from hf_audio_cr.data.downstream import FSDD_PARQUET, write_fsdd_parquet

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("checkout", help="FSDD folder with recordings/{digit}_{speaker}_{index}.wav")
parser.add_argument("--output", default=str(FSDD_PARQUET))
args = parser.parse_args()
path = write_fsdd_parquet(args.checkout, args.output)
print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
