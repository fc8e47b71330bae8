"""`--help` tells the truth: CRTrainingArguments' defaults against the paper's AS-20k config, and every benchmark
option carries a help text."""
import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from transformers import HfArgumentParser

from hf_audio_cr.training import CRTrainingArguments

ROOT = Path(__file__).resolve().parents[1]
# The paper's hyperparameters in configs/cr_audiomae/as20k_cr.yaml (the rest are run settings: paths, logging).
PAPER_KEYS = ("cr_weight", "num_views", "mixup_prob", "mixup_alpha", "freq_mask", "time_mask", "erase_prob",
              "per_device_train_batch_size", "learning_rate", "weight_decay", "layer_decay", "num_train_epochs",
              "lr_scheduler_type", "warmup_steps")


def test_cr_training_defaults_that_are_not_the_as20k_run_say_so_in_help():
    run = yaml.safe_load((ROOT / "configs" / "cr_audiomae" / "as20k_cr.yaml").read_text())
    actions = {a.dest: a for a in HfArgumentParser(CRTrainingArguments)._actions}
    differ = []
    for key in PAPER_KEYS:
        default, value = actions[key].default, run[key]
        same = default == value or (isinstance(value, float) and default == pytest.approx(value, rel=1e-2))
        if not same:
            differ.append(key)
            # the flag's help names the run's value and where it is set
            assert f"uses {value}" in actions[key].help or f"of {value}" in actions[key].help, (key, actions[key].help)
            assert "as20k_cr.yaml" in actions[key].help, key
    assert differ == ["num_views", "per_device_train_batch_size"]
    doc = CRTrainingArguments.__doc__
    assert "the run uses 6" in doc and "the run uses 64" in doc


BENCH_FILES = sorted(ROOT.glob("scripts/bench*.py")) + [ROOT / "scripts" / "benchmark_efficiency.py",
                                                      ROOT / "hf_audio_cr" / "benchmark.py"]


@pytest.mark.parametrize("path", BENCH_FILES, ids=lambda p: p.name)
def test_every_benchmark_option_has_help_text(path):
    tree = ast.parse(path.read_text())
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            if not any(k.arg == "help" for k in node.keywords):
                missing.append(ast.literal_eval(node.args[0]))
        if isinstance(node, ast.ClassDef) and node.name.endswith("Arguments"):  # the parsed dataclasses
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    call = item.value
                    has_help = isinstance(call, ast.Call) and any(
                        k.arg == "metadata" and isinstance(k.value, ast.Dict)
                        and any(getattr(key, "value", None) == "help" for key in k.value.keys)
                        for k in call.keywords)
                    if not has_help:
                        missing.append(f"--{item.target.id}")
    assert not missing, f"{path.name}: options without help text: {missing}"


# The heavy stack a script imports only after parsing; `--help` (and a bad flag) must answer without it.
HELP_MUST_NOT_IMPORT = ("datasets", "matplotlib", "onnx", "onnxruntime", "transformers.trainer",
                        "hf_audio_cr.models.cr_audiomae.modeling_cr_audiomae", "hf_audio_cr.models.hear.modeling_hear")
USER_SCRIPTS = ("train_cr_audiomae.py", "train_hear_tokenizer.py", "pretrain_hear.py", "finetune_hear.py", "demo.py",
                "export_onnx.py", "push_to_hub.py", "reproduce_cr.py", "reproduce_hear.py", "benchmark_efficiency.py",
                "convert_hear_checkpoint.py", "bench_cr_step.py", "bench_data.py", "bench_hear_training.py",
                "bench_int8_fsdd.py", "prepare_audioset.py", "bench_feature_extraction.py")
# runs the script as `python scripts/x.py --help` would, then prints what it had imported
HELP_PROBE = """
import json, runpy, sys
sys.argv = [sys.argv[1], "--help"]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exit:
    assert exit.code in (0, None), exit.code
sys.stdout = sys.__stdout__
print("\\nMODULES " + json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("script", USER_SCRIPTS)
def test_help_answers_before_the_heavy_stack_is_imported(script):
    # without the help cache: the parser itself is built from the argument classes alone
    env = dict(os.environ, HF_AUDIO_CR_NO_HELP_CACHE="1")
    out = subprocess.run([sys.executable, "-c", HELP_PROBE, f"scripts/{script}"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    text, modules = out.stdout.rsplit("MODULES ", 1)
    assert text.lstrip().startswith("usage:") and "--help" in text, text[:500]
    imported = [name for name in HELP_MUST_NOT_IMPORT if name in json.loads(modules)]
    assert not imported, f"scripts/{script} --help imported {imported}: import them after parsing"


# --- the help cache (hf_audio_cr/cli.py, scripts/_help/*.json, `make help-cache`) ---------------------------------

SCRIPTS = sorted(p.name for p in ROOT.glob("scripts/*.py"))
FAST_CHECKED = ("train_cr_audiomae.py", "convert_audiomae_checkpoint.py")  # the rest: `slow`
NOT_FOR_HELP = ("torch", "transformers", "hf_audio_cr.training.cr_config", "hf_audio_cr.training.hear_config")


def run_help(script: Path, cache: bool, cwd: Path = ROOT) -> tuple[str, list[str]]:
    """`python <script> --help` as a user runs it, 100 columns wide; the text and the modules it imported."""
    env = dict(os.environ, COLUMNS="100", PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("HF_AUDIO_CR_NO_HELP_CACHE", None)
    if not cache:
        env["HF_AUDIO_CR_NO_HELP_CACHE"] = "1"
    out = subprocess.run([sys.executable, "-c", HELP_PROBE, str(script)], cwd=cwd, capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    text, modules = out.stdout.rsplit("MODULES ", 1)
    return text, json.loads(modules)


@pytest.mark.parametrize("script", [s if s in FAST_CHECKED else pytest.param(s, marks=pytest.mark.slow) for s in SCRIPTS])
def test_every_script_answers_help_from_a_current_cache_with_the_parsers_own_text(script):
    from hf_audio_cr.cli import current_help_description, help_cache_path

    path = ROOT / "scripts" / script
    assert help_cache_path(path).is_file(), f"no {help_cache_path(path).relative_to(ROOT)}: run `make help-cache`"
    assert current_help_description(path) is not None, (
        f"{help_cache_path(path).relative_to(ROOT)} is stale (the script, a package module it loads, or the "
        "Python / transformers version changed): run `make help-cache` and commit scripts/_help")
    cached, modules = run_help(path, cache=True)
    live, _ = run_help(path, cache=False)
    assert cached == live
    assert cached.lstrip().startswith(f"usage: {script}")
    assert not [m for m in NOT_FOR_HELP if m in modules], "the cached help imported the argument classes"


def test_a_stale_cache_is_not_used_and_the_parser_answers(tmp_path):
    """An edited script, an edited package module or another transformers version: the parser is built instead."""
    from hf_audio_cr import cli

    script = tmp_path / "scripts" / "finetune_hear.py"
    (tmp_path / "scripts" / "_help").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "finetune_hear.py", script)
    shutil.copy(ROOT / "scripts" / "_help" / "finetune_hear.json", cli.help_cache_path(script))
    text, modules = run_help(script, cache=True, cwd=tmp_path)
    assert "HEAR stage 3" in text and "torch" not in modules  # the copy is current: answered from the cache
    script.write_text(script.read_text().replace("HEAR stage 3: fine-tune", "HEAR stage 3 (edited): fine-tune"))
    text, modules = run_help(script, cache=True, cwd=tmp_path)
    assert "HEAR stage 3 (edited)" in text and "torch" in modules  # the parser answered, with the new text
    record = json.loads((ROOT / "scripts" / "_help" / "finetune_hear.json").read_text())
    shutil.copy(ROOT / "scripts" / "finetune_hear.py", script)
    for stale in ({"sources": {**record["sources"], "training/hear_config.py": "0" * 64}},
                  {"sources": {**record["sources"], "training/removed_module.py": "0" * 64}},
                  {"environment": {**record["environment"], "transformers": "5.0.0"}}):
        cli.help_cache_path(script).write_text(json.dumps({**record, **stale}))
        assert cli.current_help_description(script) is None, stale
    cli.help_cache_path(script).write_text(json.dumps(record))
    assert cli.current_help_description(script) == record["parser"]


def test_a_rendered_description_prints_what_the_parser_prints(monkeypatch):
    """In process, every kind of action the scripts use: positionals, choices, lists, bools, SUPPRESSed help."""
    from hf_audio_cr.cli import ScriptArgumentParser, describe_parser, parser_from_description
    from hf_audio_cr.models.cr_audiomae.convert_audiomae_checkpoint import ConvertArguments
    from hf_audio_cr.training.cr_config import CRTrainingArguments

    monkeypatch.setenv("COLUMNS", "90")
    parser = ScriptArgumentParser((ConvertArguments, CRTrainingArguments), prog="x.py", description="Doc.\n\n  example")
    spec = json.loads(json.dumps(describe_parser(parser)))  # through JSON, as the cache file
    assert parser_from_description(spec, prog="x.py").format_help() == parser.format_help()
