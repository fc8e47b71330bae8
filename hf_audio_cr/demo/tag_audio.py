"""Tag recordings with a saved model folder, the way a Hub user would: run as a plain script in a fresh
process (``python tag_audio.py MODEL_DIR TOP_K AUDIO [AUDIO ...]``), so only ``transformers`` and the
folder's own remote code are used, never an import of ``hf_audio_cr``. Prints a JSON list on the last line."""
import json
import sys

import soundfile as sf
from transformers import pipeline


def tag(model_dir: str, audio_path: str, top_k: int = 5) -> dict:
    # the folder's own pipeline class (config.json custom_pipelines), model and feature extractor: all remote code
    classifier = pipeline("audio-classification", model=model_dir, trust_remote_code=True)
    model = classifier.model
    data, sampling_rate = sf.read(audio_path, dtype="float32", always_2d=True)
    # The pipeline resamples to the feature extractor's rate; channels are averaged here.
    tags = classifier({"raw": data.mean(axis=1), "sampling_rate": sampling_rate}, top_k=top_k)
    return {"model_class": type(model).__name__, "model_module": type(model).__module__,
            "hf_audio_cr_imported": "hf_audio_cr" in sys.modules, "audio": audio_path, "tags": tags}


if __name__ == "__main__":
    model_dir, top_k, audio_paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    print(json.dumps([tag(model_dir, audio, top_k) for audio in audio_paths]))
