"""hf_audio_cr.cli, the one parser of every script: a YAML config first, flags over it, YAML-given fields no longer
required, unknown YAML keys refused with the closest field name."""
import pytest

from hf_audio_cr.cli import ScriptArgumentParser
from hf_audio_cr.export import ExportArguments
from hf_audio_cr.hub import PushToHubArguments
from hf_audio_cr.training.cr_config import CRTrainingArguments


def test_yaml_gives_required_fields_and_flags_override_it(tmp_path):
    config = tmp_path / "push.yaml"
    config.write_text("model_dir: runs/cr\nrepo_id: me/from-yaml\ndry_run: true\n")
    (args,) = ScriptArgumentParser(PushToHubArguments).parse_args_and_config([str(config), "--repo_id", "me/from-flag"])
    assert (args.model_dir, args.repo_id, args.dry_run) == ("runs/cr", "me/from-flag", True)


def test_a_required_field_missing_from_yaml_and_flags_is_still_required(tmp_path, capsys):
    config = tmp_path / "push.yaml"
    config.write_text("model_dir: runs/cr\n")
    with pytest.raises(SystemExit):
        ScriptArgumentParser(PushToHubArguments).parse_args_and_config([str(config)])
    assert "--repo_id" in capsys.readouterr().err


def test_unknown_yaml_key_names_the_closest_field(tmp_path):
    config = tmp_path / "export.yaml"
    config.write_text("model: cr_audiomae\ntolerence: 0.001\n")
    with pytest.raises(ValueError, match=r"export\.yaml: unknown keys \['tolerence'\] \(did you mean 'tolerance' for "
                                         r"'tolerence'\?\); see `--help`"):
        ScriptArgumentParser(ExportArguments).parse_args_and_config([str(config)])


def test_yaml_values_reach_training_arguments_and_flags_win(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("num_views: 6\nper_device_train_batch_size: 64\noutput_dir: from_yaml\n")
    (args,) = ScriptArgumentParser(CRTrainingArguments).parse_args_and_config(
        [str(config), "--num_views", "4", "--use_cpu", "true"])
    assert (args.num_views, args.per_device_train_batch_size, args.output_dir) == (4, 64, "from_yaml")


def test_a_yaml_that_is_not_a_mapping_is_refused(tmp_path):
    config = tmp_path / "list.yaml"
    config.write_text("- model\n- cr_audiomae\n")
    with pytest.raises(ValueError, match=r"list\.yaml: expected `field: value` lines"):
        ScriptArgumentParser(ExportArguments).parse_args_and_config([str(config)])
