"""A copy of the checkout in a temporary folder: what a fresh clone holds (plus uncommitted edits), so tests can
run the README's commands from a repo root with its default relative paths without touching this tree."""
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What .gitignore leaves out of a clone, for a checkout without git.
_NOT_IN_A_CLONE = (".git", ".venv", "build", "outputs", "runs", "demo_output", "__pycache__", "*.egg-info",
                   ".pytest_cache", "*.pyc")


def copy_checkout(dest: Path) -> Path:
    """Copy the tracked and the untracked-but-not-ignored files of the checkout to ``dest``; return ``dest``."""
    dest = Path(dest)
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*_NOT_IN_A_CLONE), symlinks=True)
        return dest
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():  # deleted-but-staged files and the .venv link are skipped
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest
