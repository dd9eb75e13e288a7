"""Neural Structured Learning adversarial regularisation for any fer_keras model.

``wrap_adversarial(model, multiplier=0.3, step=0.12)`` returns
``nsl.keras.AdversarialRegularization(model, label_keys=["label"], adv_config=...)``, which
trains on feature dicts ``{"image": x, "label": one_hot}`` (as made by
:func:`fer_keras.data.pipeline.make_dataset`). The base model's input must be named ``image``.
Step sizes are in the model's input units ([0, 1] for DCNN, standardised units for GhostFace).
"""
from __future__ import annotations

import dataclasses
import logging

import tensorflow as tf

from fer_keras._compat import import_nsl
from fer_keras.errors import ConfigError

GRAD_NORMS = ("l2", "infinity", "l1")


class _QuietLabelWarning(logging.Filter):
    """NSL warns "Cannot perturb features dict_keys(['label'])" at every trace: the label is
    never meant to be perturbed, so that one message is dropped (nothing else is)."""

    def filter(self, record):
        return not record.getMessage().startswith("Cannot perturb features dict_keys(['label'])")


logging.getLogger("absl").addFilter(_QuietLabelWarning())


@dataclasses.dataclass(frozen=True)
class AdversarialSettings:
    """NSL settings. ``multiplier``: weight of the adversarial loss; ``step``: perturbation size
    (input units); ``grad_norm``: norm used to normalise the gradient (NSL's ``adv_grad_norm``)."""

    multiplier: float = 0.3
    step: float = 0.12
    grad_norm: str = "l2"

    def __post_init__(self):
        if self.grad_norm not in GRAD_NORMS:
            raise ConfigError(f"--grad-norm {self.grad_norm!r}: use one of {', '.join(GRAD_NORMS)}")
        if self.multiplier < 0 or self.step <= 0:
            raise ConfigError(f"--multiplier must be >= 0 and --step > 0 (got {self.multiplier}, {self.step})")

    def nsl_config(self):
        nsl = import_nsl()
        return nsl.configs.make_adv_reg_config(multiplier=self.multiplier, adv_step_size=self.step,
                                               adv_grad_norm=self.grad_norm)


def wrap_adversarial(model: tf.keras.Model, multiplier: float = 0.3, step: float = 0.12,
                     grad_norm: str = "l2") -> tf.keras.Model:
    """Wrap ``model`` (input named ``image``) in NSL's AdversarialRegularization."""
    if model.input_names != ["image"]:
        raise ConfigError(f"model {model.name!r} must have one input named 'image' (has {model.input_names})")
    nsl = import_nsl()
    settings = AdversarialSettings(multiplier, step, grad_norm)
    return nsl.keras.AdversarialRegularization(model, label_keys=["label"], adv_config=settings.nsl_config())


def base_model(model: tf.keras.Model) -> tf.keras.Model:
    """The plain Keras model inside an NSL wrapper (or ``model`` itself)."""
    return getattr(model, "base_model", model)
