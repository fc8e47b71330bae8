"""Every runnable snippet in README.md runs as written: ```python blocks and ```bash run blocks.

Each block runs in a fresh interpreter/shell in a scratch folder that sees the repository's `tests/`, `configs/`
and `scripts/`, offline. Blocks tagged ```python no-run (GPU or Hub only) and plain ```bash blocks are not run.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)


def runnable_blocks():
    text = (ROOT / "README.md").read_text()
    blocks = []
    for match in BLOCK.finditer(text):
        language, tags, code = match.group(1), match.group(2).split(), match.group(3)
        if (language == "python" and "no-run" not in tags) or (language == "bash" and "run" in tags):
            line = text[: match.start()].count("\n") + 1
            blocks.append(pytest.param(language, code, id=f"L{line}-{language}"))
    return blocks


def test_readme_has_runnable_quick_starts():
    assert len(runnable_blocks()) >= 2


@pytest.mark.slow  # every README block in a fresh interpreter/shell
@pytest.mark.parametrize("language, code", runnable_blocks())
def test_readme_block_runs(language, code, tmp_path):
    for name in ("tests", "configs", "scripts"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    command = [sys.executable, "-c", code] if language == "python" else ["bash", "-euo", "pipefail", "-c", code]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"README block failed:\n{code}\n--- stdout\n{result.stdout[-2000:]}\n--- stderr\n{result.stderr[-4000:]}"
