"""Command-line flags generated from the config dataclasses (:mod:`fer_keras.config`).

Each config field declares its flag, help text and choices (:func:`fer_keras.config.setting`);
:func:`add_config_flags` turns a config instance into argparse flags whose defaults are that
instance's values (so a preset's values are the defaults), and :func:`config_from_args` turns
the parsed flags back into a validated config. ``dest`` names are ``section__field``.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Iterable

from fer_keras.config import build_config, section_types
from fer_keras.errors import FerKerasError


def _plain_type(hint):
    """``int | None`` -> int; ``tuple[float, float]`` -> None (needs a ``type`` of its own)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else None
    return hint if hint in (int, float, str, bool) else None


def _arg_type(convert):
    """An argparse type whose ConfigError reads as argparse's own one-line usage error."""
    def parse(text):
        try:
            return convert(text)
        except FerKerasError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _fields(cls, prefix: str = "") -> Iterable[tuple[str, dataclasses.Field, Any]]:
    """(dest, field, type hint) of every plain field of config class ``cls``, sections flattened."""
    hints = typing.get_type_hints(cls)
    sections = section_types(cls)
    for field in dataclasses.fields(cls):
        dest = f"{prefix}{field.name}"
        if field.name in sections:
            yield from _fields(sections[field.name], f"{dest}__")
        else:
            yield dest, field, hints[field.name]


def add_config_flags(parser: argparse.ArgumentParser, defaults, skip: Iterable[str] = ()) -> None:
    """Add a flag for every command-line field of ``defaults`` (a config instance), with its values
    as defaults. ``skip``: dests (``section__field``) or whole sections (``section``) to leave out."""
    skip = set(skip)
    values = defaults.to_dict()
    for dest, field, hint in _fields(type(defaults)):
        meta = field.metadata
        if not meta.get("cli", True) or dest in skip or dest.split("__")[0] in skip:
            continue
        default = values
        for key in dest.split("__"):
            default = default[key]
        flag = meta.get("flag") or "--" + dest.split("__")[-1].replace("_", "-")
        kwargs: dict[str, Any] = {"dest": dest, "default": default, "help": meta.get("help")}
        plain = _plain_type(hint)
        if plain is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            convert = meta.get("type") or plain
            if convert is None:
                raise TypeError(f"config field {dest}: give it a type= for the command line")
            kwargs["type"] = _arg_type(convert)
            if isinstance(default, tuple):  # shown as the text the flag takes
                kwargs["default"] = tuple(default)
        choices = meta.get("choices")
        if choices is not None:
            kwargs["choices"] = tuple(choices() if callable(choices) else choices)
        if plain is not bool:
            kwargs["metavar"] = meta.get("metavar") or (None if choices else dest.split("__")[-1].upper())
        parser.add_argument(flag, **kwargs)


def _flag_text(value) -> str:
    """A config value as its flag takes it: ``(18, 22)`` -> ``18,22``, ``0.001`` -> ``0.001``."""
    if isinstance(value, (tuple, list)):
        return ",".join(_flag_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def changed_flags(config, base, skip: Iterable[str] = ()) -> list[str] | None:
    """The command-line flags that turn config ``base`` into ``config`` (same class), in field
    order, e.g. ``["--epochs", "24", "--lr-drops", "18,22"]``; None when a field that differs has
    no flag. ``skip``: dests to leave out (e.g. ``data__path``, written separately)."""
    skip, new, old = set(skip), config.to_dict(), base.to_dict()
    flags: list[str] = []
    for dest, field, hint in _fields(type(config)):
        value, before = new, old
        for key in dest.split("__"):
            value, before = value[key], before[key]
        if dest in skip or value == before or (isinstance(value, list) and tuple(value) == tuple(before)):
            continue
        if not field.metadata.get("cli", True) or value is None:
            return None
        flag = field.metadata.get("flag") or "--" + dest.split("__")[-1].replace("_", "-")
        if _plain_type(hint) is bool:
            flags.append(flag if value else "--no-" + flag[2:])
        else:
            flags += [flag, _flag_text(value)]
    return flags


def config_from_args(args: argparse.Namespace, defaults, **changes):
    """The config ``defaults`` with every flag of :func:`add_config_flags` and ``changes``
    (``section__field=value``) applied, validated."""
    values = defaults.to_dict()
    given = {k: v for k, v in vars(args).items() if k in _dests(type(defaults))}
    for dest, value in {**given, **changes}.items():
        target = values
        *sections, field = dest.split("__")
        for section in sections:
            target = target[section]
        target[field] = value
    return build_config(type(defaults), values)


def _dests(cls) -> set[str]:
    return {dest for dest, _, _ in _fields(cls)}


def float_list(text: str) -> list[float]:
    """argparse type for comma-separated numbers such as ``0,0.2,0.4``."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers, e.g. 0,0.2,0.4") from None
