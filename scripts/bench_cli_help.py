"""How long `--help` takes for every script, each in a fresh process: from the help cache and from the parser.

    python scripts/bench_cli_help.py [--repeats 3] [--output outputs/bench_cli_help.json]

A plain `--help` is answered from ``scripts/_help/<script>.json`` when it is current (``hf_audio_cr.cli``;
``make help-cache`` writes it): argparse alone, no transformers or torch. Without it (``HF_AUDIO_CR_NO_HELP_CACHE=1``,
or a stale cache) a script builds its parser after importing only its argument dataclasses; the floors of that
path are ``import transformers.training_args`` (what a script whose arguments extend ``TrainingArguments`` must
import; it imports torch) and ``import transformers.hf_argparser`` (the parser alone). Each figure is the median
wall time of ``--repeats`` fresh processes; the heavy modules the parser's `--help` process imported are listed
from its ``sys.modules``. The machine's load average is recorded: on a shared machine the times are noisy.
"""
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout: the parser below comes from this tree

from hf_audio_cr.cli import parse_script_args  # noqa: E402

# modules `--help` has no need for; any of them in sys.modules means a script imports too much before parsing
HEAVY = ("datasets", "matplotlib", "onnx", "onnxruntime", "accelerate", "transformers.trainer",
         "hf_audio_cr.models.cr_audiomae.modeling_cr_audiomae", "hf_audio_cr.models.hear.modeling_hear", "torch")
# run a script as `python script --help` does, then report what it imported
PROBE = """
import json, runpy, sys
sys.argv = [sys.argv[1], "--help"]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit:
    pass
sys.stdout = sys.__stdout__
print("\\nHEAVY " + json.dumps(sorted(m for m in HEAVY_MODULES if m in sys.modules)))
""".replace("HEAVY_MODULES", repr(HEAVY))
FLOORS = {"import transformers.training_args": "import transformers.training_args",
          "import transformers.hf_argparser": "import transformers.hf_argparser"}


@dataclass
class BenchArguments:
    repeats: int = field(default=3, metadata={"help": "fresh processes per script (the median is reported)"})
    scripts: list[str] = field(default_factory=list, metadata={"help": "scripts to time (default: every scripts/*.py)"})
    output: str = field(default="outputs/bench_cli_help.json", metadata={"help": "JSON file for the results"})


def timed(command: list[str], cache: bool = True) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env.pop("HF_AUDIO_CR_NO_HELP_CACHE", None)
    if not cache:
        env["HF_AUDIO_CR_NO_HELP_CACHE"] = "1"
    start = time.perf_counter()
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return seconds, out.stdout


def main(argv=None):
    (args,) = parse_script_args(BenchArguments, argv, description=__doc__)
    scripts = args.scripts or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scripts").glob("*.py"))
    load_before = os.getloadavg()
    rows = []
    for name, code in FLOORS.items():
        times = [timed([sys.executable, "-c", code])[0] for _ in range(args.repeats)]
        rows.append({"command": name, "median_s": statistics.median(times), "runs_s": times, "heavy_imports": None,
                     "cached_median_s": None})
    for script in scripts:
        times, cached, heavy = [], [], None
        for _ in range(args.repeats):  # interleaved: load from other processes hits both alike
            cached.append(timed([sys.executable, "-c", PROBE, script])[0])
            seconds, stdout = timed([sys.executable, "-c", PROBE, script], cache=False)
            times.append(seconds)
            heavy = json.loads(stdout.rsplit("HEAVY ", 1)[1])
        rows.append({"command": f"{script} --help", "median_s": statistics.median(times), "runs_s": times,
                     "heavy_imports": heavy, "cached_median_s": statistics.median(cached), "cached_runs_s": cached})
    load_after = os.getloadavg()
    print(f"`--help` wall time, median of {args.repeats} fresh processes; load average {load_before[0]:.1f} -> "
          f"{load_after[0]:.1f} on {os.cpu_count()} cores\n")
    print("| command | help cache s | parser s | heavy modules the parser's run imported |\n|---|---|---|---|")
    for row in rows:
        heavy = "(floor)" if row["heavy_imports"] is None else ", ".join(row["heavy_imports"]) or "none"
        cached = "" if row["cached_median_s"] is None else f"{row['cached_median_s']:.2f}"
        print(f"| `{row['command']}` | {cached} | {row['median_s']:.2f} | {heavy} |")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"repeats": args.repeats, "load_average_before": load_before,
                                             "load_average_after": load_after, "cores": os.cpu_count(),
                                             "rows": rows}, indent=2))
    print(f"\nwrote {args.output}")
    return rows


if __name__ == "__main__":
    main()
