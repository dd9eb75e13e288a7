"""Adversarial attacks on a trained model: clean, FGSM, PGD and NSL-perturbation accuracy.

All attacks are white-box: gradients come from the model being evaluated (NSL's perturbation can
instead come from a ``reference`` model, as in NSL's tutorial, where adversarial images made
against a plain model are shown to both models).

**Units.** Epsilons are in the model's *input* units, after the pipeline's scaling:

* DCNN (``input_mode == "unit"``): pixels / 255 in [0, 1]; ``epsilon = 8/255`` changes each
  pixel by at most 8 grey levels. Adversarial images are clipped to [0, 1].
* GhostFace (``"standardize"``): standardised units (mean 0, std 1, per image or per data set).
  There is no fixed valid range, so nothing is clipped; one unit is one standard deviation of the
  image's pixels (typically 40..70 grey levels for a face), so ``8/255`` there is a much larger
  change than for the DCNN.

**Attacks** (L-infinity, on categorical cross-entropy of the model's probabilities):

* FGSM: ``x + eps * sign(grad)`` (Goodfellow et al. 2015).
* PGD: random start in the eps-ball, ``steps`` steps of ``step_size`` (default ``2.5 * eps /
  steps``) along the gradient sign, each followed by projection onto the eps-ball around the
  clean image and onto the valid range (Madry et al. 2018).
* NSL: ``nsl.keras.AdversarialRegularization(...).perturb_on_batch`` with ``adv_step_size=eps``,
  the perturbation NSL trains with and its tutorial evaluates with. With ``adv_grad_norm=
  "infinity"`` (the default here and in NSL's tutorial) it is FGSM computed by NSL; with ``"l2"``
  (what the DCNN is trained with) ``eps`` is the L2 norm of the whole perturbation.
"""
from __future__ import annotations

import time
import weakref
from fractions import Fraction

import numpy as np
import tensorflow as tf

from fer_keras._compat import import_nsl
from fer_keras.config import GRAD_NORMS
from fer_keras.errors import ConfigError
from fer_keras.nsl import base_model

#: Default epsilons: 0, 1, 2, 4 and 8 grey levels of a [0, 1] input.
DEFAULT_EPSILONS = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255)
PGD_STEPS = 10


def parse_epsilons(text: str) -> list[float]:
    """``"0,1/255,0.01"`` -> ``[0.0, 0.00392..., 0.01]``; raises ConfigError naming ``--epsilons``."""
    try:
        values = [float(Fraction(v.strip())) for v in text.split(",") if v.strip()]
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"--epsilons {text!r}: give comma-separated numbers or fractions, "
                          "e.g. 0,1/255,2/255,4/255") from None
    if not values or min(values) < 0:
        raise ConfigError(f"--epsilons {text!r}: need at least one value, none negative")
    return values


def _loss(model, x, y):
    return tf.keras.losses.categorical_crossentropy(y, model(x, training=False))


#: One compiled gradient function per model, dropped with the model.
_GRADIENTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def input_gradient(model: tf.keras.Model, images, labels) -> tf.Tensor:
    """Gradient of the cross-entropy with respect to the input images."""
    grad = _GRADIENTS.get(model)
    if grad is None:
        @tf.function(reduce_retracing=True)
        def grad(x, y):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = _loss(model, x, y)
            return tape.gradient(loss, x)

        _GRADIENTS[model] = grad
    return grad(tf.convert_to_tensor(images, tf.float32), tf.convert_to_tensor(labels, tf.float32))


def _clip(x, clip):
    return x if clip is None else tf.clip_by_value(x, clip[0], clip[1])


def fgsm(model: tf.keras.Model, images, labels, epsilon: float, clip=(0.0, 1.0), gradient=None) -> tf.Tensor:
    """FGSM images ``clip(x + epsilon * sign(grad_x loss))``; ``clip=None`` for no valid range.
    ``gradient``: a precomputed :func:`input_gradient` (it does not depend on epsilon)."""
    x = tf.convert_to_tensor(images, tf.float32)
    g = input_gradient(model, x, labels) if gradient is None else gradient
    return _clip(x + epsilon * tf.sign(g), clip)


def pgd(model: tf.keras.Model, images, labels, epsilon: float, steps: int = 10,
        step_size: float | None = None, random_start: bool = True, clip=(0.0, 1.0),
        seed: int | None = 0) -> tf.Tensor:
    """L-infinity PGD: random start, ``steps`` signed-gradient steps, projection after each step.

    Every output pixel is within ``epsilon`` of the input (and within ``clip`` when given).
    """
    x0 = tf.convert_to_tensor(images, tf.float32)
    if epsilon == 0 or steps < 1:
        return _clip(x0, clip)
    alpha = 2.5 * epsilon / steps if step_size is None else step_size
    lo, hi = x0 - epsilon, x0 + epsilon
    x = x0
    if random_start:
        rng = tf.random.Generator.from_seed(seed) if seed is not None else tf.random.get_global_generator()
        x = _clip(x0 + rng.uniform(tf.shape(x0), -epsilon, epsilon), clip)
    for _ in range(steps):
        x = x + alpha * tf.sign(input_gradient(model, x, labels))
        x = _clip(tf.clip_by_value(x, lo, hi), clip)
    return x


class NSLPerturbation:
    """NSL's own adversarial neighbour (``perturb_on_batch``) against ``model``."""

    def __init__(self, model: tf.keras.Model, grad_norm: str = "infinity", clip=(0.0, 1.0)):
        if grad_norm not in GRAD_NORMS:
            raise ConfigError(f"--nsl-grad-norm {grad_norm!r}: use one of {', '.join(GRAD_NORMS)}")
        nsl = import_nsl()
        clip = clip or (None, None)
        config = nsl.configs.make_adv_reg_config(adv_step_size=0.01, adv_grad_norm=grad_norm,
                                                 clip_value_min=clip[0], clip_value_max=clip[1])
        self.wrapper = nsl.keras.AdversarialRegularization(base_model(model), label_keys=["label"],
                                                           adv_config=config)
        self.wrapper.compile(optimizer="sgd", loss=tf.keras.losses.CategoricalCrossentropy())  # never trained

    def __call__(self, images, labels, step: float) -> np.ndarray:
        batch = {"image": tf.convert_to_tensor(images, tf.float32), "label": tf.convert_to_tensor(labels, tf.float32)}
        return self.wrapper.perturb_on_batch(batch, adv_step_size=float(step))["image"]


def _batches(ds):
    for batch in ds:
        if isinstance(batch, dict):
            yield batch["image"], batch["label"]
        else:
            features, labels = batch
            yield (features["image"] if isinstance(features, dict) else features), labels


def evaluate_robustness(model: tf.keras.Model, ds: tf.data.Dataset, epsilons=DEFAULT_EPSILONS,
                        pgd_steps: int = PGD_STEPS, pgd_step_size: float | None = None, clip=(0.0, 1.0),
                        nsl: bool = True, nsl_grad_norm: str = "infinity",
                        reference: tf.keras.Model | None = None, seed: int = 0, log=None) -> dict:
    """Accuracy of ``model`` (plain or NSL-wrapped; its base model is attacked) on ``ds`` (``{"image",
    "label"}`` batches) clean and under FGSM, PGD and NSL's perturbation at each epsilon.

    Returns ``{"images", "clean", "epsilons", "fgsm": [acc per eps], "pgd": [...], "nsl": [...],
    "max_abs_perturbation": {"fgsm": [...], "pgd": [...], "nsl": [...]}, "settings": {...}}``;
    ``clip`` is the valid input range, None when there is none (standardised inputs).
    """
    model = base_model(model)
    epsilons = [float(e) for e in epsilons]
    if any(e < 0 for e in epsilons) or pgd_steps < 1:
        raise ConfigError("epsilons must be >= 0 and --pgd-steps >= 1")
    nsl_attack = NSLPerturbation(reference or model, nsl_grad_norm, clip) if nsl else None
    attacks = ["fgsm", "pgd"] + (["nsl"] if nsl else [])
    correct = {a: np.zeros(len(epsilons)) for a in attacks}
    max_delta = {a: np.zeros(len(epsilons)) for a in attacks}
    clean_correct, n, start = 0, 0, time.time()
    for b, (x, y) in enumerate(_batches(ds)):
        x, y = tf.cast(x, tf.float32), tf.cast(y, tf.float32)
        truth = tf.argmax(y, 1)

        def hits(images):
            return int(tf.reduce_sum(tf.cast(tf.argmax(model(images, training=False), 1) == truth, tf.int32)))

        clean_hits = hits(x)
        clean_correct += clean_hits
        n += int(x.shape[0])
        grad = input_gradient(model, x, y)
        for i, eps in enumerate(epsilons):
            for attack in attacks:
                if eps == 0:
                    adv = x
                elif attack == "fgsm":
                    adv = fgsm(model, x, y, eps, clip, gradient=grad)
                elif attack == "pgd":
                    adv = pgd(model, x, y, eps, pgd_steps, pgd_step_size, clip=clip, seed=seed + b)
                else:
                    adv = tf.convert_to_tensor(nsl_attack(x, y, eps))
                correct[attack][i] += clean_hits if eps == 0 else hits(adv)
                max_delta[attack][i] = max(max_delta[attack][i], float(tf.reduce_max(tf.abs(adv - x))))
        if log:
            log(f"  batch {b + 1}: {n} images, {time.time() - start:.0f} s")
    if n == 0:
        raise ConfigError("robustness evaluation got an empty dataset")
    return {
        "images": n,
        "clean": clean_correct / n,
        "epsilons": epsilons,
        **{a: (correct[a] / n).tolist() for a in attacks},
        "max_abs_perturbation": {a: max_delta[a].tolist() for a in attacks},
        "units": "input units, [0, 1]" if clip == (0.0, 1.0) else ("standardised units" if clip is None
                                                                   else f"input units, {list(clip)}"),
        "settings": {"clip": list(clip) if clip else None, "pgd_steps": pgd_steps,
                     "pgd_step_size": pgd_step_size if pgd_step_size is not None else "2.5 * eps / steps",
                     "pgd_random_start": True, "nsl_grad_norm": nsl_grad_norm if nsl else None,
                     "nsl_reference": None if reference is None else reference.name,
                     "white_box": reference is None, "seconds": round(time.time() - start, 1)},
    }
