"""Export an audio classifier to ONNX (dynamic batch and length) and check parity with PyTorch.

    python scripts/export_onnx.py --model outputs/my_run --output outputs/onnx/my_run.onnx --audio clip.wav
    python scripts/export_onnx.py --model cr_audiomae --output outputs/onnx/cr_audiomae.onnx   # random weights
    python scripts/export_onnx.py --model outputs/my_hear --output outputs/onnx/hear.onnx --quantize int8
    python scripts/export_onnx.py config.yaml [--field value ...]

The graph takes the feature extractor's output; run it with hf_audio_cr.export.OnnxAudioClassifier.
"""
import json

from hf_audio_cr.cli import parse_script_args


def main(argv=None):
    # hf_audio_cr.export imports torch and the models: named here, imported once the parser is built
    (args,) = parse_script_args("hf_audio_cr.export:ExportArguments", argv, description=__doc__)
    from hf_audio_cr.export import export_and_check

    report = export_and_check(args)
    print(json.dumps(report, indent=2))
    print(f"ONNX parity: max |PyTorch - onnxruntime| = {report['max_abs_difference']:.2e} (tolerance {args.tolerance:.0e})")
    if "int8" in report:
        worst = min(a["correlation"] for a in report["int8"]["agreement"].values())
        print(f"int8 ({report['int8']['onnx']}, {report['int8']['size_mb']:.1f} MB vs {report['int8']['fp32_size_mb']:.1f} MB): "
              f"lowest logits correlation with PyTorch {worst:.4f}")


if __name__ == "__main__":
    main()
