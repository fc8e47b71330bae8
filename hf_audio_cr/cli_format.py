"""What both parsers of ``hf_audio_cr.cli`` share: the help layout and the config suffixes (argparse only, so the
cached ``--help`` path imports nothing heavier)."""
import argparse

CONFIG_SUFFIXES = (".yaml", ".yml")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The script's docstring as written (usage examples keep their lines) and every flag's default."""
