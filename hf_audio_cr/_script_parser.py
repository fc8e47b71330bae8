"""``ScriptArgumentParser``: ``HfArgumentParser`` with a YAML config in front of the flags (see ``hf_audio_cr.cli``,
which imports this module only when a parser is built, so that a cached ``--help`` never imports transformers)."""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import sys
from pathlib import Path

from transformers import HfArgumentParser

from .cli_format import CONFIG_SUFFIXES, HelpFormatter


class ScriptArgumentParser(HfArgumentParser):
    """``HfArgumentParser`` with a YAML config in front of the flags.

    A field with ``metadata={"positional": True}`` becomes a positional argument (``convert_*.py CHECKPOINT
    OUTPUT_DIR``); every other field is a ``--flag``.
    """

    def __init__(self, dataclass_types, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(dataclass_types, **kwargs)

    @staticmethod
    def _parse_dataclass_field(parser, field: dataclasses.Field):
        if not field.metadata.get("positional"):
            return HfArgumentParser._parse_dataclass_field(parser, field)
        kwargs = {key: value for key, value in field.metadata.items() if key != "positional"}
        if field.default is not dataclasses.MISSING:
            kwargs.update(nargs="?", default=field.default)
        parser.add_argument(field.name, type=str, **kwargs)

    def set_defaults_from_config(self, path: str | Path) -> dict:
        """The YAML's keys become the fields' defaults (and stop being required); unknown keys are refused."""
        import yaml

        values = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected `field: value` lines, got a YAML {type(values).__name__}.")
        known = {action.dest for action in self._actions if action.dest != argparse.SUPPRESS and action.dest != "help"}
        unknown = sorted(set(values) - known)
        if unknown:
            hints = [f"{close[0]!r} for {key!r}" for key in unknown if (close := difflib.get_close_matches(key, known, 1))]
            did_you_mean = f" (did you mean {', '.join(hints)}?)" if hints else ""
            raise ValueError(f"{path}: unknown keys {unknown}{did_you_mean}; see `--help` for the fields.")
        for action in self._actions:
            if action.dest in values:
                action.required = False
        self.set_defaults(**values)
        return values

    def parse_args_and_config(self, args: list[str] | None = None) -> tuple:
        """``[config.yaml] [--field value ...]`` -> one instance per dataclass, flags over YAML over defaults."""
        args = list(sys.argv[1:] if args is None else args)
        if args and args[0].endswith(CONFIG_SUFFIXES):
            self.set_defaults_from_config(args[0])
            args = args[1:]
        return self.parse_args_into_dataclasses(args=args)


__all__ = ["ScriptArgumentParser"]
