"""ONNX export of the audio classifiers (``torch.export`` -> ``torch.onnx.export``) and an onnxruntime runner.

The graph takes the feature extractor's output, so waveform -> features stays in Python (the Kaldi /
STFT front ends) and the ONNX model covers the network. Dynamic axes:

* every model: batch;
* CR-AudioMAE: the number of 10.24 s windows of long clips (``(batch, windows, 1024, 128)`` + ``window_mask``;
  padded windows are masked out of the clip max inside the graph);
* HEAR: the number of frames. Its 6 s sliding windows and the cross-fade merge are inside the graph. The
  eager model picks a path by length (one window vs sliding windows; positions table vs interpolation beyond
  30 s), which ``torch.export`` cannot keep symbolic, so the graph holds the sliding-window path for an even
  number of frames between ``2 * (window_length + 1)`` and ``2 * task_max_position_embeddings`` (6 s .. 30 s).
  ``OnnxAudioClassifier`` pads shorter or odd-length inputs with masked frames (HEAR's output does not
  change under masked padding; the parity tests check it) and refuses clips over 30 s with a clear error.
  These limits travel in the ONNX file's metadata.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .extras import require
from .model_zoo import BUILDERS, benchmark_waveform, load_model_dir

METADATA_KEY = "hf_audio_cr.frame_padding"


class _LogitsOnly(torch.nn.Module):
    """Exports ``model(**inputs).logits`` as the graph's single output; inputs are positional, named in order."""

    def __init__(self, model: torch.nn.Module, input_names: list[str]):
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *tensors):
        return self.model(**dict(zip(self.input_names, tensors))).logits


class _WindowedLogits(_LogitsOnly):
    """Windows of long clips ``(batch, windows, frames, bins)`` with ``window_mask``, written without the
    data-dependent boolean indexing of the eager model (which ``torch.export`` cannot keep dynamic): every
    window runs as one batch and padded windows are masked to -inf before the clip max, the same rule as
    ``CRAudioMAEForAudioClassification.score_windows`` (the parity test holds the two equal)."""

    def forward(self, *tensors):
        input_values, window_mask = tensors
        batch, num_windows = input_values.shape[:2]
        scores = self.model(input_values=input_values.flatten(0, 1)).logits.unflatten(0, (batch, num_windows))
        return scores.masked_fill(~window_mask.bool()[..., None], float("-inf")).amax(dim=1)


def materialize_windows(features: dict) -> dict:
    """Streamed windows (``AudioMAEFeatureExtractor(long_audio="stream")``) as the tensors a graph takes."""
    values = features.get("input_values")
    if hasattr(values, "materialize"):
        return {**{k: v for k, v in features.items() if k != "input_values"}, **values.materialize()}
    return features


def frame_padding_rule(model: torch.nn.Module) -> dict | None:
    """For models whose graph covers a frame range (HEAR): the frame multiple, minimum and maximum."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) != "hear":
        return None
    multiple = config.frames_per_token
    return {"multiple": multiple, "min_frames": multiple * (config.window_length + 1),
            "max_frames": multiple * config.task_max_position_embeddings,
            "inputs": ["input_values", "power_spectrum", "attention_mask"]}


def pad_frames(features: dict, rule: dict | None) -> dict:
    """Pad frame inputs with masked frames to the rule's multiple and minimum; refuse clips over the maximum."""
    if rule is None:
        return features
    frames = features["input_values"].shape[1]
    if frames > rule["max_frames"]:
        raise ValueError(f"input_values has {frames} frames; this ONNX graph covers at most {rule['max_frames']} "
                         "(HEAR's 30 s position table). Run longer clips in PyTorch or split them.")
    if "attention_mask" not in features:  # padding is only invisible to the model when it is masked
        lib = torch if torch.is_tensor(features["input_values"]) else np
        features = {**features, "attention_mask": lib.ones(features["input_values"].shape[:2], dtype=lib.int64)}
    target = max(rule["min_frames"], -(-frames // rule["multiple"]) * rule["multiple"])
    if target == frames:
        return features
    padded = dict(features)
    for name in rule["inputs"]:
        value = features.get(name)
        if value is None:
            continue
        widths = [(0, 0)] * value.ndim
        widths[1] = (0, target - frames)
        if torch.is_tensor(value):
            padded[name] = torch.nn.functional.pad(value, [w for pair in reversed(widths) for w in pair])
        else:
            padded[name] = np.pad(value, widths)
    return padded


def _dynamic_shapes(model: torch.nn.Module, inputs: dict[str, torch.Tensor], rule: dict | None) -> tuple:
    from torch.export import Dim

    batch = Dim("batch")
    if rule is not None:
        tokens = Dim("tokens", min=rule["min_frames"] // rule["multiple"], max=rule["max_frames"] // rule["multiple"])
        frames = rule["multiple"] * tokens
        return tuple({0: batch, 1: frames} if name in rule["inputs"] else {0: batch} for name in inputs)
    if inputs["input_values"].dim() == 4:  # windowed clips
        windows = Dim("windows")
        return tuple({0: batch, 1: windows} for _ in inputs)
    return tuple({0: batch} for _ in inputs)


def export_onnx(model: torch.nn.Module, inputs: dict[str, torch.Tensor], path: str | Path) -> Path:
    """Export ``model`` (eval mode, CPU) to ``path`` with dynamic batch/length; returns the path.

    ``inputs`` are example feature-extractor outputs. A batch of 1 is repeated to 2 so the batch axis stays
    symbolic; windowed examples need at least two windows for the same reason (a 25 s clip gives every model
    enough).
    """
    onnx = require("onnx", "ONNX export")
    require("onnxscript", "ONNX export")  # torch.onnx's dynamo exporter builds the graph with it

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    rule = frame_padding_rule(model)
    inputs = materialize_windows(dict(inputs))
    inputs = {k: v.cpu() for k, v in pad_frames(inputs, rule).items() if torch.is_tensor(v)}
    inputs = {k: torch.cat([v, v]) if v.shape[0] == 1 else v for k, v in inputs.items()}
    names = list(inputs)
    windowed = inputs["input_values"].dim() == 4
    if windowed and (names != ["input_values", "window_mask"] or inputs["input_values"].shape[1] < 2):
        raise ValueError(f"export_onnx: windowed examples need `input_values` with at least 2 windows and "
                         f"`window_mask`; got {[tuple(v.shape) for v in inputs.values()]} for {names} "
                         "(use a longer example clip).")
    graph = (_WindowedLogits if windowed else _LogitsOnly)(model, names).eval()
    with torch.no_grad():
        program = torch.export.export(graph, tuple(inputs.values()),
                                      dynamic_shapes=(_dynamic_shapes(model, inputs, rule),), strict=False)
        torch.onnx.export(program, (), str(path), dynamo=True, external_data=False, input_names=names,
                          output_names=["logits"], verbose=False)
    if rule is not None:
        proto = onnx.load(str(path))
        onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(rule)})
        onnx.save(proto, str(path))
    return path


def quantize_onnx(path: str | Path, output: str | Path | None = None, preprocess: bool = False) -> Path:
    """Dynamic int8 quantisation of an exported graph with onnxruntime's quantiser: weights of MatMul/Gemm
    stored as int8, activations quantised on the fly per tensor (no calibration data). Returns the new path
    (default: ``model.int8.onnx`` next to ``model.onnx``); the frame-padding metadata is carried over.

    ``preprocess=True`` runs onnxruntime's ``quant_pre_process`` first (graph optimisation with constant
    folding). For HEAR this folds each layer's relative-position terms of a 6 s window into a constant that is
    then quantised too: faster (int8 / fp32 RTF about 0.5 instead of about 0.7 here) but a larger file
    (120 MB instead of 29 MB at the paper size)."""
    import tempfile

    onnx = require("onnx", "int8 quantisation")
    quantization = require("onnxruntime.quantization", "int8 quantisation")
    QuantType, quantize_dynamic = quantization.QuantType, quantization.quantize_dynamic

    path = Path(path)
    output = Path(output) if output is not None else path.with_suffix(".int8.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        source = path
        if preprocess:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            source = Path(tmp) / "preprocessed.onnx"
            quant_pre_process(str(path), str(source), skip_symbolic_shape=True)
        # per-channel weights are refused by onnxruntime's DynamicQuantizeMatMul on the batched attention matmuls
        quantize_dynamic(str(source), str(output), weight_type=QuantType.QInt8, per_channel=False)
    metadata = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if metadata:
        proto = onnx.load(str(output))
        onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, **metadata})
        onnx.save(proto, str(output))
    return output


def logits_agreement(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """How closely ``candidate`` logits follow ``reference``: Pearson correlation, max |difference|, argmax agreement."""
    reference, candidate = np.asarray(reference, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    return {"correlation": float(np.corrcoef(reference.ravel(), candidate.ravel())[0, 1]),
            "max_abs_difference": float(np.abs(reference - candidate).max()),
            "argmax_agreement": float((reference.argmax(-1) == candidate.argmax(-1)).mean())}


class OnnxAudioClassifier:
    """An onnxruntime session called like the PyTorch model: ``clf(**features) -> logits`` (numpy)."""

    def __init__(self, path: str | Path, num_threads: int | None = None):
        ort = require("onnxruntime", "Running an ONNX model")

        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no ONNX file; create it with scripts/export_onnx.py.")
        options = ort.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

        self.input_ranks = {i.name: len(i.shape) for i in self.session.get_inputs()}
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.frame_padding = json.loads(metadata[METADATA_KEY]) if METADATA_KEY in metadata else None

    def __call__(self, **features) -> np.ndarray:
        features = materialize_windows(features)
        features = {k: v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v) for k, v in features.items()}
        features = pad_frames(features, self.frame_padding)
        values = features.get("input_values")
        if values is not None and values.ndim == 3 and self.input_ranks.get("input_values") == 4:
            # a clip that fits one window (batch, frames, bins) is a one-window clip for the windowed graph
            features["input_values"] = values[:, None]
            features.setdefault("window_mask", np.ones(values.shape[:1] + (1,), dtype=bool))
        missing = [name for name in self.input_names if name not in features]
        if missing:
            raise ValueError(f"ONNX model needs inputs {missing}; got {sorted(features)}.")
        return self.session.run(None, {name: features[name] for name in self.input_names})[0]


def int8_comparison_backends(model: torch.nn.Module, fp32: str | Path, int8: str | Path, num_threads: int = 1) -> dict:
    """``name -> features -> logits`` for PyTorch fp32, onnxruntime fp32 and onnxruntime int8 (the int8 accuracy
    benchmarks score every clip with each)."""
    sessions = {"onnxruntime fp32": OnnxAudioClassifier(fp32, num_threads=num_threads),
                "onnxruntime int8": OnnxAudioClassifier(int8, num_threads=num_threads)}

    def torch_logits(features):
        with torch.inference_mode():
            return model(**features).logits.numpy()

    return {"torch fp32": torch_logits, **{name: (lambda f, s=s: s(**f)) for name, s in sessions.items()}}


def max_abs_difference(model: torch.nn.Module, classifier: OnnxAudioClassifier,
                       inputs: dict[str, torch.Tensor]) -> float:
    """Largest |PyTorch logit - onnxruntime logit| on ``inputs`` (the parity check)."""
    with torch.inference_mode():
        expected = model.cpu().eval()(**{k: v.cpu() if torch.is_tensor(v) else v for k, v in inputs.items()}).logits.numpy()
    return float(np.abs(classifier(**inputs) - expected).max())


@dataclass
class ExportArguments:
    """Command-line arguments of ``scripts/export_onnx.py``."""

    model: str = field(metadata={"help": "A saved model folder, or a built-in name (hear, cr_audiomae, ast: random weights)."})
    output: str = field(default="outputs/onnx/model.onnx", metadata={"help": "Where the .onnx file goes."})
    audio: list[str] = field(default_factory=list, metadata={"help": "Recordings for the parity check (default: noise)."})
    quick: bool = field(default=False, metadata={"help": "Tiny configs for the built-in models."})
    tolerance: float = field(default=1e-4, metadata={"help": "Largest allowed |PyTorch - onnxruntime| logit."})
    quantize: str | None = field(default=None, metadata={
        "help": "'int8': also write a dynamically quantised copy (OUTPUT with .int8.onnx) and report how its logits "
                "follow PyTorch's (correlation, max difference; no tolerance: int8 is not exact)."})
    quantize_preprocess: bool = field(default=False, metadata={
        "help": "Optimise the graph (onnxruntime quant_pre_process, constant folding) before quantising: faster "
                "HEAR, larger file."})


def export_and_check(args: ExportArguments) -> dict:
    """Export ``args.model`` and check parity with PyTorch on single clips of several lengths and on a padded
    batch of two. Raises if a difference exceeds ``args.tolerance``; returns the report."""
    if args.model not in BUILDERS and not (Path(args.model) / "config.json").is_file():
        problem = "has no config.json" if Path(args.model).is_dir() else "is no such folder"
        raise FileNotFoundError(
            f"--model {args.model}: {problem}; pass a save_pretrained folder or a built-in name ({', '.join(BUILDERS)})."
        )
    subject = BUILDERS[args.model](args.quick) if args.model in BUILDERS else load_model_dir(args.model)
    path = export_onnx(subject.model, subject.extract(benchmark_waveform(25.0)), args.output)
    classifier = OnnxAudioClassifier(path)
    cases = {f"{Path(name).name if name else 'noise'} ({seconds:g} s)": benchmark_waveform(seconds, name)
             for name in (args.audio or [None]) for seconds in (3.0, 10.0, 21.0)}
    report = {"onnx": str(path), "parity": {}}
    for case, waveform in cases.items():
        report["parity"][case] = max_abs_difference(subject.model, classifier, subject.extract(waveform))
    if subject.window_seconds is None:  # a padded batch (AST windows are already a batch)
        pair = [benchmark_waveform(4.0, (args.audio or [None])[0]), benchmark_waveform(15.0, (args.audio or [None])[-1])]
        report["parity"]["batch of 4 s + 15 s"] = max_abs_difference(subject.model, classifier, subject.extract(pair))
    worst = max(report["parity"].values())
    report["max_abs_difference"] = worst
    if worst > args.tolerance:
        raise AssertionError(f"ONNX parity {worst:.2e} exceeds tolerance {args.tolerance:.0e}: {report['parity']}")
    if args.quantize is not None:
        if args.quantize != "int8":
            raise ValueError(f"--quantize {args.quantize!r}: only 'int8' (dynamic) is supported.")
        quantized = OnnxAudioClassifier(quantize_onnx(path, preprocess=args.quantize_preprocess))
        report["int8"] = {"onnx": str(quantized.path), "size_mb": quantized.path.stat().st_size / 2**20,
                          "fp32_size_mb": path.stat().st_size / 2**20, "agreement": {}}
        for case, waveform in cases.items():
            features = subject.extract(waveform)
            with torch.inference_mode():
                expected = subject.model(**features).logits.numpy()
            report["int8"]["agreement"][case] = logits_agreement(expected, quantized(**features))
    return report
