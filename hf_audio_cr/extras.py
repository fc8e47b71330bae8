"""Optional dependencies, grouped as the package's extras in setup.cfg: ``[demo]`` (matplotlib: the demo's,
studies' and benchmark's plots) and ``[export]`` (onnx, onnxruntime, onnxscript: ONNX export and int8). The core
package (models, data, trainers, pipeline, Hub publishing) imports none of them; a path that needs one and finds
it missing raises an ImportError naming the extra to install."""
from __future__ import annotations

import importlib
from types import ModuleType

EXTRAS = {"matplotlib": "demo", "onnx": "export", "onnxruntime": "export", "onnxscript": "export"}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (e.g. ``"onnxruntime.quantization"``) for ``purpose``, or say which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = module.split(".")[0]
        raise ImportError(
            f"{purpose} needs {package}, which is not installed. Install the extra: "
            f"pip install 'hf_audio_cr[{EXTRAS[package]}]' (a checkout: `make install` installs every extra)."
        ) from error


def agg_pyplot(purpose: str) -> ModuleType:
    """``matplotlib.pyplot`` on the Agg backend (files only: plots are written on headless machines)."""
    matplotlib = require("matplotlib", purpose)
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", purpose)
