"""Training on several devices or machines: the ``--strategy`` setting (:mod:`tf.distribute`).

``none`` trains on TensorFlow's default device; ``mirrored`` copies the model onto every local
GPU (else every logical CPU device; ``FER_KERAS_CPU_DEVICES=N`` makes N of the CPU, for tests
and trials) and ``multiworker`` onto one device per machine of the cluster that ``TF_CONFIG``
describes. Either way training is data-parallel and synchronous: each step the *global* batch
(``--batch-size``) is split into equal per-replica shares, each replica computes the gradient of
its share, and the gradients are summed across replicas before one update of every copy. So
that a step is the single-device step on the whole batch, batch normalisation computes its
statistics over the global batch (:func:`synchronize_batch_norm`) and the training data is
sharded batch by batch (:func:`split_batches`), never duplicated; random layers (dropout, noise)
draw per replica, so a distributed run is exactly reproducible and resumable under its own
strategy and replica count, not bit for bit a single-device run.

A multi-worker run has one chief (task 0 of ``worker``, or the ``chief`` task): it alone writes
the run folder; :func:`any_worker` makes decisions taken on one machine's clock (the time budget)
the same on all of them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os

import numpy as np
import tensorflow as tf

from fer_keras.config import STRATEGIES
from fer_keras.errors import ConfigError

#: Environment variable: the number of logical CPU devices ``mirrored`` makes on a host without GPUs.
CPU_DEVICES_ENV = "FER_KERAS_CPU_DEVICES"
_TF_CONFIG_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
                      '"task": {"type": "worker", "index": 0}}\' (index 1 on the second machine)')
_made: dict[str, tf.distribute.Strategy] = {}


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The :class:`tf.distribute.Strategy` ``name`` (one of :data:`~fer_keras.config.STRATEGIES`)
    means on this machine (made once per process; ``none`` is the default strategy).

    Call it before TensorFlow runs its first operation: ``multiworker`` and
    ``FER_KERAS_CPU_DEVICES`` configure the runtime, which cannot change once it has started
    (a one-line ConfigError says so).
    """
    if name not in STRATEGIES:
        raise ConfigError(f"--strategy {name!r}: use one of {', '.join(STRATEGIES)}")
    if name == "none":
        return tf.distribute.get_strategy()
    if name not in _made:
        _quiet_eager_warning()
        if name == "mirrored":
            _made[name] = tf.distribute.MirroredStrategy(_local_devices())
        else:
            _check_tf_config()
            try:
                _made[name] = tf.distribute.MultiWorkerMirroredStrategy()
            except RuntimeError as exc:  # "Collective ops must be configured at program startup"
                raise ConfigError(f"--strategy multiworker: TensorFlow already ran in this process ({exc}); "
                                  "start training in a new process") from None
    return _made[name]


class _QuietEagerWarning(logging.Filter):
    """tf.distribute warns "Using MirroredStrategy eagerly has significant overhead" whenever a
    replica function runs outside ``tf.function``: here only once-off calls do (building NSL's
    wrapper, the end-of-epoch :func:`any_worker`), never the training steps, so that one message is
    dropped (nothing else is)."""

    def filter(self, record):
        return "eagerly has significant overhead" not in record.getMessage()


def _quiet_eager_warning() -> None:
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _QuietEagerWarning) for f in logger.filters):
        logger.addFilter(_QuietEagerWarning())


def _local_devices() -> list[str]:
    """Every local GPU, else every logical CPU device (``FER_KERAS_CPU_DEVICES`` of them, if set)."""
    if tf.config.list_physical_devices("GPU"):  # (listing logical devices would start the runtime)
        return [d.name for d in tf.config.list_logical_devices("GPU")]
    wanted = os.environ.get(CPU_DEVICES_ENV)
    if wanted:
        try:
            count = int(wanted)
            if count < 1:
                raise ValueError
        except ValueError:
            raise ConfigError(f"{CPU_DEVICES_ENV}={wanted!r}: give the number of CPU devices, e.g. 2") from None
        cpu = tf.config.list_physical_devices("CPU")[0]
        current = tf.config.get_logical_device_configuration(cpu)
        if len(current or [None]) != count:
            try:
                tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
            except RuntimeError:
                raise ConfigError(f"{CPU_DEVICES_ENV}={count}: TensorFlow's devices were already set up in this "
                                  f"process ({len(tf.config.list_logical_devices('CPU'))} CPU device(s)); "
                                  "set it before the first TensorFlow operation (a new process)") from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def _check_tf_config() -> None:
    """A one-line ConfigError unless ``TF_CONFIG`` names a cluster and this process's task in it."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ConfigError(f"--strategy multiworker needs TF_CONFIG on every machine, e.g. {_TF_CONFIG_EXAMPLE}")
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        jobs = cluster[task["type"]]
        jobs[int(task["index"])]
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ConfigError(f"TF_CONFIG {text[:200]!r}: not a cluster with this task in it "
                          f"({type(exc).__name__}: {exc}); e.g. {_TF_CONFIG_EXAMPLE}") from None
    if task["type"] not in ("worker", "chief"):
        raise ConfigError(f"TF_CONFIG task type {task['type']!r}: --strategy multiworker trains with "
                          "'worker' tasks (and at most one 'chief')")


def is_distributed(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` is anything but TensorFlow's default (one device, no copies)."""
    with strategy.scope():
        return tf.distribute.has_strategy()


def task(strategy: tf.distribute.Strategy) -> tuple[str, int]:
    """This process's ``(task type, index)`` in a multi-worker cluster; ``("worker", 0)`` otherwise."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict() or resolver.task_type is None:
        return "worker", 0
    return resolver.task_type, int(resolver.task_id or 0)


def workers(strategy: tf.distribute.Strategy) -> int:
    """Processes training together (1 unless multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    jobs = resolver.cluster_spec().as_dict() if resolver is not None else {}
    return sum(len(jobs.get(job, [])) for job in ("chief", "worker")) or 1


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run folder: always, unless it is a multi-worker cluster's
    non-chief (the ``chief`` task, else worker 0, is the chief)."""
    kind, index = task(strategy)
    if kind == "chief":
        return True
    resolver = getattr(strategy, "cluster_resolver", None)
    has_chief = resolver is not None and "chief" in resolver.cluster_spec().as_dict()
    return not has_chief and index == 0


def any_worker(strategy: tf.distribute.Strategy, flag: bool) -> bool:
    """True on every worker if ``flag`` is true on any (a sum over the cluster); ``flag`` itself
    on one machine. Every worker must call it at the same point, or they wait for each other."""
    if workers(strategy) == 1:
        return bool(flag)
    value = tf.constant(1.0 if flag else 0.0)
    with strategy.scope():
        total = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(tf.identity, args=(value,)), axis=None)
    return float(total) > 0


def check_batch(strategy: tf.distribute.Strategy, batch_size: int) -> None:
    """A one-line ConfigError unless the global batch splits evenly over the replicas."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        low = max(replicas, batch_size - batch_size % replicas)
        raise ConfigError(f"--batch-size {batch_size}: the global batch is split evenly over the {replicas} "
                          f"replicas, so it must be a multiple of {replicas} (e.g. {low} or {low + replicas})")


def describe(strategy: tf.distribute.Strategy, name: str, batch_size: int) -> str:
    """One line for the run log, e.g. ``mirrored over 2 devices (CPU:0, CPU:1), global batch 64 = 2 x 32``."""
    replicas = strategy.num_replicas_in_sync
    split = f"global batch {batch_size} = {replicas} x {batch_size // replicas}"
    if name == "multiworker":
        kind, index = task(strategy)
        role = "the chief" if is_chief(strategy) else "not the chief"
        return (f"multiworker over {workers(strategy)} workers, {replicas} replicas; this is {kind} {index} "
                f"({role}); {split}")
    devices = [d.split("device:")[-1] for d in strategy.extended.worker_devices]
    return f"{name} over {len(devices)} device{'s' if len(devices) > 1 else ''} ({', '.join(devices)}), {split}"


def record(strategy: tf.distribute.Strategy, name: str) -> dict:
    """The ``distribution`` entry of a run's ``config.json["resolved"]``: strategy, workers, replicas."""
    return {"strategy": name, "workers": workers(strategy), "replicas": strategy.num_replicas_in_sync}


def synchronize_batch_norm(model: tf.keras.Model) -> int:
    """Make every batch-normalisation layer of ``model`` (nested ones too) compute its batch
    statistics over the global batch (all replicas) instead of its replica's share; returns how
    many. Only training under a strategy is affected; exports are rebuilt without it."""
    count = 0
    for layer in model.submodules:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.synchronized, layer.fused = True, False  # the fused kernel cannot all-reduce
            count += 1
    return count


def split_batches(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` sharded batch by batch across workers (:class:`tf.data.experimental.AutoShardPolicy`
    ``DATA``): each global batch is cut into one share per replica, and each worker reads only its
    own shares, so the steps per epoch and the batch of each step are those of one device."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def weights_digest(weights: list) -> str:
    """The first 16 hex digits of the SHA-256 of ``weights`` (a model's ``get_weights()``): equal
    copies, equal digests."""
    digest = hashlib.sha256()
    for array in weights:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]
