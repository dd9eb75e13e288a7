"""Command-line flags generated from the configs: defaults, nested destinations, bool pairs,
typed values, and one-line usage errors."""
import argparse

import pytest

from fer_keras.config import ExperimentConfig
from fer_keras.flags import add_config_flags, config_from_args
from fer_keras.training.command_line import given_flags


def _parser(defaults=None, skip=()):
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_config_flags(parser, defaults or ExperimentConfig(), skip)
    return parser


def test_no_flags_give_the_defaults():
    defaults = ExperimentConfig().replace(model__name="vgg", training__epochs=40)
    assert config_from_args(_parser(defaults).parse_args([]), defaults) == defaults


def test_flags_land_in_their_sections():
    args = _parser().parse_args(["--data", "fer.csv", "--model", "vgg", "--no-adversarial", "--epochs", "3",
                                 "--lr-schedule", "cosine", "--randaugment-magnitude", "1,3", "--tta", "flip",
                                 "--no-deterministic", "--input-size", "64", "--augment", "mixup+basic"])
    c = config_from_args(args, ExperimentConfig())
    assert (c.data.path, c.model.name, c.model.input_size, c.adversarial.enabled) == ("fer.csv", "vgg", 64, False)
    assert (c.training.epochs, c.optimizer.schedule, c.evaluation.tta) == (3, "cosine", "flip")
    assert c.augment.randaugment_magnitude == (1.0, 3.0) and c.augment.name == "basic+mixup"
    assert not c.training.deterministic


def test_skipped_fields_have_no_flag():
    flags = _parser(skip=("adversarial", "data__label_noise"))._option_string_actions
    assert not {"--multiplier", "--no-adversarial", "--label-noise"} & set(flags)
    assert {"--label-noise-mode", "--lr", "--data"} <= set(flags)


def test_bad_values_are_usage_errors(capsys):
    parser = argparse.ArgumentParser(prog="run_nsl.py")
    add_config_flags(parser, ExperimentConfig())
    for argv, message in ((["--randaugment-magnitude", "4"], "--randaugment-magnitude '4': give LOW,HIGH"),
                          (["--model", "resnet"], "invalid choice: 'resnet'"),
                          (["--epochs", "x"], "invalid int value"),
                          (["--lr-drops", "20,x"], "--lr-drops '20,x': give comma-separated epoch numbers")):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(argv)
        assert info.value.code == 2 and message in capsys.readouterr().err


def test_given_flags_names_only_what_was_written():
    parser = _parser()
    assert given_flags(parser, ["--lr=0.1", "--model", "vgg", "--no-adversarial"]) == {
        "optimizer__lr", "model__name", "adversarial__enabled"}
