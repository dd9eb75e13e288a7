"""Named presets: each is a command line that parses into its config; the studies' recipes and
the shipped model's are there, and the scripts start from them."""
import pytest

from fer_keras.errors import ConfigError
from fer_keras.flags import config_from_args
from fer_keras.training.command_line import experiment_parser
from fer_keras.training.presets import PRESETS, SCRIPTS, STUDY_RECIPES, command, preset_config


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_parses(name):
    config = preset_config(name, data="some/data")
    assert config.data.path == "some/data"
    assert command(name).startswith(f"python experiments/{PRESETS[name].script} --data path/to/")


def test_the_studies_recipes():
    a = preset_config("study-a", data="x")
    assert (a.model.name, a.adversarial.multiplier, a.adversarial.step, a.resolved_epochs) == ("dcnn", 0.3, 0.12, 30)
    assert (a.optimizer.lr, a.training.batch_size, a.augment.name) == (1e-3, 50, "basic")
    assert not preset_config("study-a-plain").adversarial.enabled
    prose = preset_config("study-a-prose")
    assert (prose.adversarial.multiplier, prose.adversarial.step) == (0.12, 0.01)
    b = preset_config("study-b-randaugment-mixup", data="x")
    assert (b.model.name, b.optimizer.name, b.optimizer.lr, b.training.batch_size) == ("ghostface", "sgd", 0.1, 16)
    assert b.augment.name == "basic+randaugment+mixup" and b.resolved_epochs == 100
    assert set(STUDY_RECIPES) <= set(PRESETS)


def test_script_starts_from_a_preset_and_flags_override_it():
    parser, defaults = experiment_parser("A", "", ["--preset", "shipped-fer2013", "--epochs", "40"])
    args = parser.parse_args(["--preset", "shipped-fer2013", "--epochs", "40"])
    config = config_from_args(args, defaults)
    assert config.model.name == "dcnn" and config.evaluation.tta == "flip" and config.training.epochs == 40
    assert not config.adversarial.enabled and config.optimizer.schedule == "step"
    assert config.optimizer.lr_drops == (20, 26) and config.training.batch_size == 50
    with pytest.raises(ConfigError, match="--preset 'study-b': run_nsl.py runs the presets"):
        experiment_parser("A", "", ["--preset", "study-b"])


def _parsed(command_line: str, data: str):
    """The config a training command line gives (its ``--data`` replaced by ``data``)."""
    import shlex

    argv = shlex.split(command_line)[2:]
    argv[argv.index("--data") + 1] = data
    script = shlex.split(command_line)[1].split("/")[-1]
    study = next(s for s, name in SCRIPTS.items() if name == script)
    parser, defaults = experiment_parser(study, "", argv)
    return config_from_args(parser.parse_args(argv), defaults)


def test_a_config_is_written_as_its_preset_plus_the_flags_it_changed():
    from fer_keras.training.presets import closest_preset, preset_command, preset_flags

    plain = preset_config("study-a-plain", "data/fer2013")
    assert closest_preset(plain) == ("study-a-plain", []) and preset_command(plain) == command("study-a-plain")
    restart = preset_config("shipped-fer2013", "data/fer2013").replace(
        training__epochs=24, optimizer__lr_drops=(18, 22), model__init_from="/somewhere/runs/20261201-125731-dcnn",
        augment__randaugment_magnitude=(1.0, 3.0), training__deterministic=False, out="elsewhere")
    assert preset_flags(restart) == ("--preset shipped-fer2013 --init-from runs/20261201-125731-dcnn --randaugment-magnitude 1,3 "
                                     "--lr-drops 18,22 --epochs 24 --no-deterministic")  # in the config's field order
    line = preset_command(restart)
    assert line.startswith("python experiments/run_nsl.py --data path/to/fer2013 --preset shipped-fer2013 ")
    # the command gives the config back (the run folder named as written; output folder aside)
    again = _parsed(line, "data/fer2013")
    assert again == restart.replace(model__init_from="runs/20261201-125731-dcnn", out=again.out)
    student = preset_config("ablation-fer2013", "data/fer2013").replace(distil__teacher="/work/x/20261205-ensemble")
    assert preset_flags(student) == "--preset ablation-fer2013 --teacher runs/20261205-ensemble"
    students = [preset_config(name, "data/fer2013").replace(distil__teacher="/work/x/2026-ensemble", model__init_from="fer2013-dcnn")
                for name in ("student-fer2013", "student-nsl-fer2013")]
    assert students[0] == students[1].replace(adversarial__enabled=False)  # NSL is their one difference
    assert preset_flags(students[1]) == "--preset student-nsl-fer2013 --init-from fer2013-dcnn --teacher runs/2026-ensemble"
    ghost = preset_config("study-b-mixup", "data/rafdb").replace(optimizer__lr=0.05)
    assert preset_flags(ghost) == "--preset study-b-mixup --lr 0.05"
    assert _parsed(preset_command(ghost), "data/rafdb") == ghost
