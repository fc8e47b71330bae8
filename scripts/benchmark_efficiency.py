"""Params, GFLOPs/GMACs and real-time factor of HEAR, CR-AudioMAE and AST (plus any saved model folders).

    python scripts/benchmark_efficiency.py                       # full-size models, CPU, 10 s and 60 s
    python scripts/benchmark_efficiency.py --onnx                # + onnxruntime rows
    python scripts/benchmark_efficiency.py --device cuda --models cr_audiomae ast
    python scripts/benchmark_efficiency.py --model_dirs outputs/my_run --models hear
    python scripts/benchmark_efficiency.py --quick               # tiny configs: checks the harness only

Writes results.json, results.md and results.png to --output_dir (default outputs/benchmark).
"""
from hf_audio_cr.cli import parse_script_args


def main(argv=None):
    # the benchmark module imports torch and the models: named here, imported once the parser is built
    (args,) = parse_script_args("hf_audio_cr.benchmark:BenchmarkArguments", argv, description=__doc__)
    from hf_audio_cr.benchmark import run_and_print

    return run_and_print(args)


if __name__ == "__main__":
    main()
