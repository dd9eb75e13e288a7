"""Training: from a script's flags to a finished run folder.

* :mod:`~fer_keras.training.command_line`: a training script's flags -> config -> run.
* :mod:`~fer_keras.training.presets`: the studies' and the shipped models' recipes, by name.
* :mod:`~fer_keras.training.experiment`: one experiment end to end into one run folder.
* :mod:`~fer_keras.training.schedule`: optimizer, learning-rate schedule, compile.
* :mod:`~fer_keras.training.checkpoints`: checkpoints and callback state for exact resume.
* :mod:`~fer_keras.training.fit`: ``fit`` with a checkpoint every epoch, time budget, progress log.
* :mod:`~fer_keras.training.distil`: a student's targets from a teacher's (or an ensemble's) probabilities.
* :mod:`~fer_keras.training.held_out`: which of a run's validation and test faces another model trained on.

For ``model.fit`` in a notebook, :func:`compile_model` (and :func:`fit` for resumable runs) are
all you need; :func:`~fer_keras.training.experiment.run_experiment` does the rest of a run.
"""
from fer_keras.training.checkpoints import OutOfSpaceError, checkpointed_randomness, read_state
from fer_keras.training.fit import FitResult, fit, set_seed
from fer_keras.training.schedule import compile_model, learning_rate, make_optimizer, schedule_for

__all__ = ["FitResult", "OutOfSpaceError", "checkpointed_randomness", "compile_model", "fit", "learning_rate",
           "make_optimizer", "read_state", "schedule_for", "set_seed"]
