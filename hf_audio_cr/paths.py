"""Local folder or Hub id? One check for every loader and ``from_pretrained`` call site.

``datasets.load_dataset`` and ``from_pretrained`` take anything that is not an existing folder for a Hub id, so a
mistyped local path comes back as a Hub failure ("We couldn't connect to 'https://huggingface.co'", "Repo id must
be in the form 'repo_name' or 'namespace/repo_name'"). ``check_local_or_hub`` answers "no such folder: ..." for
every name that can only be a local path, and for a Hub-id-shaped name the Hub cannot serve (offline and not in
the cache), before the Hub is asked.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["check_local_or_hub", "looks_local", "require_folder"]


def looks_local(name: str) -> bool:
    """True for names a Hub id can never be: ``./x``, ``../x``, ``/x``, ``~/x``, backslashes, more than one
    ``/``, a trailing ``/``, or a first component that is an existing local folder (``data/speech_commands``
    while ``data/`` exists)."""
    if name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1 or name.endswith("/"):
        return True
    return "/" in name and os.path.isdir(name.split("/")[0])


def _offline() -> bool:
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("HF_DATASETS_OFFLINE", ""))
    return bool(constants.HF_HUB_OFFLINE) or any(f.upper() in ("1", "ON", "YES", "TRUE") for f in flags)


def _in_hub_cache(repo_id: str, repo_type: str) -> bool:
    from huggingface_hub import constants

    folder = f"{repo_type}s--{repo_id.replace('/', '--')}"
    caches = [constants.HF_HUB_CACHE]
    if repo_type == "dataset":  # datasets keeps its own cache of prepared Hub sets as well
        caches.append(os.environ.get("HF_DATASETS_CACHE") or os.path.join(constants.HF_HOME, "datasets"))
    prepared = repo_id.replace("/", "___")
    return any(os.path.isdir(os.path.join(c, folder)) or os.path.isdir(os.path.join(c, prepared)) for c in caches)


def require_folder(path, hint: str = "") -> Path:
    """``path`` as a ``Path`` if it is an existing folder, else ``FileNotFoundError("no such folder: ...")``."""
    folder = Path(os.path.expanduser(os.fspath(path)))
    if not folder.is_dir():
        what = "a file, not a folder" if folder.exists() else "no such folder"
        raise FileNotFoundError(f"{what}: {os.fspath(path)} (from {os.getcwd()}).{' ' + hint if hint else ''}")
    return folder


def check_local_or_hub(name_or_path, repo_type: str = "model", hint: str = "") -> str:
    """Return ``name_or_path`` as a string when it is an existing local path or may be a Hub id; otherwise raise
    ``FileNotFoundError("no such folder: ...")``. ``repo_type``: ``"model"`` or ``"dataset"``; ``hint`` is
    appended to the message (e.g. what the folder should hold)."""
    name = os.fspath(name_or_path)
    expanded = os.path.expanduser(name)
    if os.path.exists(expanded):
        return expanded
    suffix = f" {hint}" if hint else ""
    if looks_local(name):
        raise FileNotFoundError(f"no such folder: {name} (from {os.getcwd()}).{suffix}")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        raise FileNotFoundError(f"no such folder: {name} (from {os.getcwd()}), and not a valid Hub id "
                                f"('owner/name').{suffix}") from None
    if _offline() and not _in_hub_cache(name, repo_type):
        raise FileNotFoundError(
            f"no such folder: {name} (from {os.getcwd()}); as a Hub {repo_type} id it is not in the local cache and "
            f"the Hub is offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE).{suffix}")
    return name
