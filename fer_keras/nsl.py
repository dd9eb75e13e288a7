"""Neural Structured Learning adversarial regularisation for any fer_keras model.

``wrap_adversarial(model)`` (Study A's multiplier 0.3 and step 0.12: the defaults of
:class:`~fer_keras.config.AdversarialConfig`) or ``wrap_adversarial(model, config.adversarial)`` returns
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
from fer_keras.config import AdversarialConfig
from fer_keras.errors import ConfigError



class _QuietLabelWarning(logging.Filter):
    """NSL warns "Cannot perturb features dict_keys(['label'])" at every trace: the label is
    never meant to be perturbed, so that one message is dropped (nothing else is)."""

    def filter(self, record):
        return not record.getMessage().startswith("Cannot perturb features dict_keys(['label'])")


def _quiet_label_warning() -> None:
    """Install :class:`_QuietLabelWarning` on absl's logger, once, when NSL is first used."""
    logger = logging.getLogger("absl")
    if not any(isinstance(f, _QuietLabelWarning) for f in logger.filters):
        logger.addFilter(_QuietLabelWarning())


def nsl_config(settings: AdversarialConfig):
    """NSL's ``AdvRegConfig`` for ``settings`` (multiplier, step, grad_norm)."""
    nsl = import_nsl()
    return nsl.configs.make_adv_reg_config(multiplier=settings.multiplier, adv_step_size=settings.step,
                                           adv_grad_norm=settings.grad_norm)


def wrap_adversarial(model: tf.keras.Model, settings: AdversarialConfig | None = None, **changes) -> tf.keras.Model:
    """Wrap ``model`` (input named ``image``) in NSL's AdversarialRegularization with ``settings``
    (default: :class:`~fer_keras.config.AdversarialConfig`'s), and any of its fields given as
    keywords changed, e.g. ``wrap_adversarial(model, multiplier=0.12, step=0.01)``."""
    if model.input_names != ["image"]:
        raise ConfigError(f"model {model.name!r} must have one input named 'image' (has {model.input_names})")
    unknown = set(changes) - {f.name for f in dataclasses.fields(AdversarialConfig)}
    if unknown:
        raise TypeError(f"wrap_adversarial() got unexpected keyword(s) {', '.join(sorted(unknown))}")
    settings = dataclasses.replace(settings or AdversarialConfig(), **changes)
    _quiet_label_warning()
    nsl = import_nsl()
    return nsl.keras.AdversarialRegularization(model, label_keys=["label"], adv_config=nsl_config(settings))


def base_model(model: tf.keras.Model) -> tf.keras.Model:
    """The plain Keras model inside an NSL wrapper (or ``model`` itself)."""
    return getattr(model, "base_model", model)
