"""The one argument parser every script uses (the pattern of trl's ``TrlParser.parse_args_and_config``).

    python scripts/<script>.py [config.yaml] [--field value ...]

Dataclass fields become flags (``HfArgumentParser``, help text from ``metadata={"help": ...}``); an optional YAML
config as the first argument gives the defaults, flags override it, a field the YAML sets is no longer required,
and a YAML key that is no field is refused with the closest field name (``ScriptArgumentParser``).

``--help`` is fast: building the parser means importing the argument dataclasses, and those that extend
``TrainingArguments`` import torch (2-3 s). A script names such classes as ``"module:Class"`` strings, imported
only when the parser is built, and ``scripts/_help/<script>.json`` (written by ``make help-cache``) describes the
parser it builds: a plain ``script.py --help`` renders that description with ``argparse`` alone (about 0.1 s).
The description is used only while it is current: the Python and transformers versions and the hash of the
script and of every package module that was loaded when it was written must all match, else the parser is
built as usual. ``tests/test_cli_help.py`` checks that each description is current and renders the same text.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from .cli_format import CONFIG_SUFFIXES, HelpFormatter  # noqa: F401  (CONFIG_SUFFIXES: part of this module's API)

HELP_FLAGS = ("-h", "--help")
WRITE_HELP_CACHE = "HF_AUDIO_CR_WRITE_HELP_CACHE"  # set to 1: `script.py --help` (re)writes its description
NO_HELP_CACHE = "HF_AUDIO_CR_NO_HELP_CACHE"  # set to 1: `--help` always builds the parser
PACKAGE_ROOT = Path(__file__).resolve().parent


def __getattr__(name: str):
    if name == "ScriptArgumentParser":  # imports transformers: only when a parser is built
        from ._script_parser import ScriptArgumentParser

        return ScriptArgumentParser
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve_dataclass(spec):
    """A dataclass, or a ``"module:Class"`` string imported now."""
    if isinstance(spec, str):
        module, _, name = spec.partition(":")
        return getattr(importlib.import_module(module), name)
    return spec


def parse_script_args(dataclass_types, args: list[str] | None = None, description: str | None = None) -> tuple:
    """One call per script: build the parser for ``dataclass_types`` (classes or ``"module:Class"`` strings) and
    parse ``args`` (default ``sys.argv[1:]``); a plain ``--help`` is answered from the script's help cache when
    it is current."""
    args = list(sys.argv[1:] if args is None else args)
    plain_help, writing = len(args) == 1 and args[0] in HELP_FLAGS, bool(os.environ.get(WRITE_HELP_CACHE))
    if plain_help and not writing:
        answer_help_from_cache(Path(sys.argv[0]))
    types = dataclass_types if isinstance(dataclass_types, (list, tuple)) else (dataclass_types,)
    from ._script_parser import ScriptArgumentParser

    parser = ScriptArgumentParser([resolve_dataclass(t) for t in types], description=description)
    if plain_help and writing:
        write_help_cache(parser, Path(sys.argv[0]))
    return parser.parse_args_and_config(args)


# --- the help cache ---------------------------------------------------------------------------------------------

def help_cache_path(script: Path) -> Path:
    return script.resolve().parent / "_help" / f"{script.stem}.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _environment() -> dict:
    from importlib.metadata import version

    # argparse's layout and TrainingArguments' fields change with these
    return {"python": "{}.{}".format(*sys.version_info[:2]), "transformers": version("transformers")}


def _loaded_package_sources() -> dict:
    """Hashes of every package module loaded now: the argument classes and whatever their defaults come from."""
    sources = {}
    for name, module in sorted(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.split(".")[0] == "hf_audio_cr" and path:
            sources[Path(path).resolve().relative_to(PACKAGE_ROOT).as_posix()] = _sha256(path)
    return sources


def _text(value):
    """What argparse's ``%(default)s`` prints for ``value`` (it prints a class or function by its name)."""
    if value is None or value is argparse.SUPPRESS:
        return value
    return getattr(value, "__name__", None) or str(value)


def describe_parser(parser: argparse.ArgumentParser) -> dict:
    """What ``format_help`` reads of a parser, as JSON: description, groups, and each action's strings."""
    if parser._mutually_exclusive_groups:
        raise NotImplementedError("help cache: mutually exclusive groups are not described")
    groups = parser._action_groups
    actions = []
    for action in parser._actions:
        if action.nargs == 0 and not isinstance(action, (argparse._HelpAction, argparse._StoreConstAction)):
            raise NotImplementedError(f"help cache: {type(action).__name__} ({action.dest}) is not described")
        actions.append({
            "group": next(i for i, g in enumerate(groups) if action in g._group_actions),
            "help_action": isinstance(action, argparse._HelpAction),
            "option_strings": action.option_strings, "dest": action.dest, "nargs": action.nargs,
            "const": _text(action.const), "default": _text(action.default), "type": _text(action.type),
            "choices": None if action.choices is None else [str(c) for c in action.choices],
            "required": action.required, "help": action.help,
            "metavar": list(action.metavar) if isinstance(action.metavar, tuple) else action.metavar,
        })
    return {"description": parser.description, "epilog": parser.epilog, "usage": parser.usage,
            "groups": [{"title": g.title, "description": g.description} for g in groups], "actions": actions}


def parser_from_description(spec: dict, prog: str | None = None) -> argparse.ArgumentParser:
    """A plain ``argparse`` parser whose ``format_help`` equals that of the described parser (it parses nothing)."""
    def restore(value):  # argparse tests `is SUPPRESS`
        return argparse.SUPPRESS if value == argparse.SUPPRESS else value

    parser = argparse.ArgumentParser(prog=prog, usage=spec["usage"], description=spec["description"],
                                     epilog=spec["epilog"], formatter_class=HelpFormatter, add_help=False)
    groups = [parser._positionals, parser._optionals]
    for i, group in enumerate(spec["groups"]):
        if i < 2:
            groups[i].title, groups[i].description = group["title"], group["description"]
        else:
            groups.append(parser.add_argument_group(group["title"], group["description"]))
    for a in spec["actions"]:
        common = dict(option_strings=a["option_strings"], dest=a["dest"], default=restore(a["default"]),
                      help=restore(a["help"]))
        if a["help_action"]:
            action = argparse._HelpAction(**common)
        elif a["nargs"] == 0:
            action = argparse._StoreConstAction(const=a["const"], required=a["required"], metavar=a["metavar"],
                                                **common)
        else:
            action = argparse._StoreAction(nargs=a["nargs"], const=a["const"] if a["nargs"] == "?" else None,
                                           type=a["type"], choices=a["choices"], required=a["required"],
                                           metavar=tuple(a["metavar"]) if isinstance(a["metavar"], list) else a["metavar"],
                                           **common)
        groups[a["group"]]._add_action(action)
    return parser


def write_help_cache(parser: argparse.ArgumentParser, script: Path) -> Path:
    """Describe ``parser`` for ``script`` with the versions and source hashes that keep the description current."""
    path = help_cache_path(script)
    path.parent.mkdir(exist_ok=True)
    record = {"environment": _environment(), "script": _sha256(script), "sources": _loaded_package_sources(),
              "parser": describe_parser(parser)}
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path


def current_help_description(script: Path) -> dict | None:
    """The script's cached parser description, or None when there is none or it is stale."""
    path = help_cache_path(script)
    if os.environ.get(NO_HELP_CACHE) or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if record["environment"] != _environment() or record["script"] != _sha256(script):
            return None
        for source, digest in record["sources"].items():
            file = PACKAGE_ROOT / source
            if not file.is_file() or _sha256(file) != digest:
                return None
        return record["parser"]
    except (OSError, ValueError, KeyError):  # unreadable: build the parser instead
        return None


def answer_help_from_cache(script: Path) -> None:
    """Print the cached help and exit, as argparse's ``--help`` does; return when there is no current cache."""
    spec = current_help_description(script) if script.suffix == ".py" and script.is_file() else None
    if spec is not None:
        parser_from_description(spec, prog=script.name).print_help()
        sys.exit(0)


def write_help_caches(scripts: list[Path]) -> list[Path]:
    """Run each ``script --help`` in a fresh process with ``HF_AUDIO_CR_WRITE_HELP_CACHE=1`` (``make help-cache``)."""
    written = []
    for script in scripts:
        env = dict(os.environ, **{WRITE_HELP_CACHE: "1"})
        out = subprocess.run([sys.executable, str(script), "--help"], env=env, capture_output=True, text=True)
        if out.returncode != 0 or not help_cache_path(script).is_file():
            raise RuntimeError(f"{script} --help wrote no help cache (exit {out.returncode}):\n{out.stderr[-2000:]}")
        written.append(help_cache_path(script))
    return written


if __name__ == "__main__":  # python -m hf_audio_cr.cli scripts/*.py  (make help-cache)
    for written in write_help_caches([Path(p) for p in sys.argv[1:]]):
        print(f"wrote {written}")


__all__ = ["ScriptArgumentParser", "parse_script_args", "resolve_dataclass", "write_help_caches"]  # noqa: F822 (lazy, above)
