"""ONNX export of the audio classifiers (``torch.onnx.export`` with the dynamo exporter) and an onnxruntime runner.

The graph takes the feature extractor's output (``input_values`` and, for windowed long audio, the
window mask), so waveform -> features stays in Python (torchaudio's Kaldi fbank) and the ONNX model
covers the network. Batch is dynamic for every model; the length axis is dynamic where the model has
one (CR-AudioMAE: number of 10.24 s windows; HEAR: number of frames, its 6 s sliding windows and the
cross-fade merge are traced into the graph).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

# Which axes of each input may change, per model type (dimension index -> axis name).
DYNAMIC_AXES = {
    "audio-spectrogram-transformer": {"input_values": {0: "batch"}},
    "cr_audiomae": {"input_values": {0: "batch", 1: "windows"}, "window_mask": {0: "batch", 1: "windows"}},
    "hear": {"input_values": {0: "batch", 1: "frames"}, "attention_mask": {0: "batch", 1: "frames"}},
}


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

    def forward(self, input_values, window_mask):
        batch, num_windows = input_values.shape[:2]
        scores = self.model(input_values=input_values.flatten(0, 1)).logits.unflatten(0, (batch, num_windows))
        return scores.masked_fill(~window_mask.bool()[..., None], float("-inf")).amax(dim=1)


def dynamic_axes_for(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, dict[int, str]]:
    """The dynamic axes of ``inputs`` for this model: its type's table, batch-only for unknown types."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    table = DYNAMIC_AXES.get(model_type, {})
    axes = {}
    for name, tensor in inputs.items():
        wanted = dict(table.get(name, {0: "batch"}))
        if model_type == "cr_audiomae" and name == "input_values" and tensor.dim() == 3:
            wanted.pop(1)  # a single window, [batch, frames, mels]: no window axis
        axes[name] = wanted
    return axes


def export_onnx(model: torch.nn.Module, inputs: dict[str, torch.Tensor], path: str | Path,
                dynamic_axes: dict[str, dict[int, str]] | None = None) -> Path:
    """Export ``model`` (eval mode, CPU) to ``path`` with dynamic batch/length; returns the path.

    ``inputs`` are example feature-extractor outputs. A batch of 1 is repeated to 2 so the exporter does
    not specialise the batch axis to a constant; the same holds for a length axis of size 1, so pass
    examples with at least two windows/frames on every dynamic length axis.
    """
    from torch.export import Dim

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    inputs = {k: (torch.cat([v, v]) if v.shape[0] == 1 else v).cpu() for k, v in inputs.items()}
    axes = dynamic_axes if dynamic_axes is not None else dynamic_axes_for(model, inputs)
    for name, dims in axes.items():
        for dim, label in dims.items():
            if inputs[name].shape[dim] < 2:
                raise ValueError(f"export_onnx: example `{name}` has size {inputs[name].shape[dim]} on dynamic axis "
                                 f"'{label}' ({dim}); give an example with at least 2 there (e.g. a longer clip).")
    dims = {label: Dim(label) for spec in axes.values() for label in spec.values()}
    names = list(inputs)
    dynamic_shapes = tuple({dim: dims[label] for dim, label in axes.get(name, {}).items()} for name in names)
    with torch.no_grad():
        graph = _WindowedLogits if names == ["input_values", "window_mask"] and inputs["input_values"].dim() == 4 \
            else _LogitsOnly
        torch.onnx.export(graph(model, names).eval(), tuple(inputs[name] for name in names), str(path), dynamo=True,
                          external_data=False, dynamic_shapes=dynamic_shapes if graph is _WindowedLogits else (dynamic_shapes,),
                          input_names=names,
                          output_names=["logits"], verbose=False)
    return path


class OnnxAudioClassifier:
    """An onnxruntime session called like the PyTorch model: ``clf(**features) -> logits`` (numpy)."""

    def __init__(self, path: str | Path, num_threads: int | None = None):
        import onnxruntime as ort

        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no ONNX file; create it with scripts/export_onnx.py.")
        options = ort.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

        self.input_ranks = {i.name: len(i.shape) for i in self.session.get_inputs()}

    def __call__(self, **features) -> np.ndarray:
        features = {k: v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v) for k, v in features.items()}
        values = features.get("input_values")
        if values is not None and values.ndim == 3 and self.input_ranks.get("input_values") == 4:
            # a clip that fits one window (batch, frames, bins) is a one-window clip for the windowed graph
            features["input_values"] = values[:, None]
            features.setdefault("window_mask", np.ones(values.shape[:1] + (1,), dtype=bool))
        missing = [name for name in self.input_names if name not in features]
        if missing:
            raise ValueError(f"ONNX model needs inputs {missing}; got {sorted(features)}.")
        return self.session.run(None, {name: features[name] for name in self.input_names})[0]


def onnxruntime_session(path: str | Path, num_threads: int | None = None) -> OnnxAudioClassifier:
    return OnnxAudioClassifier(path, num_threads=num_threads)


def max_abs_difference(model: torch.nn.Module, classifier: OnnxAudioClassifier,
                       inputs: dict[str, torch.Tensor]) -> float:
    """Largest |PyTorch logit - onnxruntime logit| on ``inputs`` (the parity check)."""
    with torch.inference_mode():
        expected = model.cpu().eval()(**{k: v.cpu() for k, v in inputs.items()}).logits.numpy()
    return float(np.abs(classifier(**inputs) - expected).max())


@dataclass
class ExportArguments:
    """Command-line arguments of ``scripts/export_onnx.py``."""

    model: str = field(metadata={"help": "A saved model folder, or a built-in name (hear, cr_audiomae, ast: random weights)."})
    output: str = field(default="outputs/onnx/model.onnx", metadata={"help": "Where the .onnx file goes."})
    audio: list[str] = field(default_factory=list, metadata={"help": "Recordings for the parity check (default: noise)."})
    quick: bool = field(default=False, metadata={"help": "Tiny configs for the built-in models."})
    tolerance: float = field(default=1e-4, metadata={"help": "Largest allowed |PyTorch - onnxruntime| logit."})


def export_and_check(args: ExportArguments) -> dict:
    """Export ``args.model`` and check parity with PyTorch on single clips of several lengths and on a padded
    batch of two. Raises if a difference exceeds ``args.tolerance``; returns the report."""
    from hf_audio_cr.benchmark import BUILDERS, benchmark_waveform, load_model_dir

    subject = BUILDERS[args.model](args.quick) if args.model in BUILDERS else load_model_dir(args.model)
    path = export_onnx(subject.model, subject.extract(benchmark_waveform(25.0)), args.output)
    classifier = OnnxAudioClassifier(path)
    cases = {f"{Path(name).name} ({seconds:g} s)": benchmark_waveform(seconds, name)
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
    return report
