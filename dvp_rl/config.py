"""Argument checks shared by the public constructors and the command line: integers that are
integers, folders that can be written, and config values.

A settings group that travels together is one frozen dataclass (``FitConfig``, ``MPCConfig``,
``ParallelConfig``, ...), given as the class itself, a dict of its fields or ``None``; these
helpers turn the three into one value with clear errors. No torch here.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

C = TypeVar("C")


def integer(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as an int (``>= minimum`` when given); a float is accepted only when integral, a bool never.

    :raises ValueError: naming ``name``, for anything else (no silent truncation: ``2.5`` is refused)
    """
    bound = "" if minimum is None else f" >= {minimum}"
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer, float, np.floating))
    if not ok or not math.isfinite(float(value)) or not float(value).is_integer() or (minimum is not None and int(value) < minimum):
        raise ValueError(f"{name} must be an integer{bound}, got {value!r}")
    return int(value)


def positive(name: str, value: Any) -> float:
    """``value`` as a finite float > 0, or a ``ValueError`` naming ``name``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, (bool, np.bool_)) or not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def check_writable_folder(folder: str | os.PathLike, what: str) -> Path:
    """Check, before any work, that ``folder`` is a folder this process can write in, or one that it
    can create; returns ``folder`` as a ``Path``. Nothing is left behind.

    The nearest existing folder on the way (``folder`` itself, else its nearest existing parent)
    is probed with a temporary file, removed at once: permissions, read-only mounts and a
    superuser's rights all answer as the real write will.

    :param what: what ``folder`` is to the user (e.g. ``"--tensorboard-log"``), named in the message
    :raises ValueError: naming ``what``, ``folder`` and the problem: a file where a folder should
        be, or a folder that refuses new files (with the system's reason)
    """
    folder = Path(folder)
    existing = next(p for p in (folder, *folder.parents, Path(".")) if os.path.lexists(p))
    if not existing.is_dir():
        raise ValueError(f"{what} {folder}: {existing} is {'a file' if existing.is_file() else 'something else'}, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".dvp_rl-write-check-", dir=existing)
    except OSError as exc:
        raise ValueError(f"{what} {folder}: cannot write in {existing} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)
    return folder


def as_config(cls: type[C], value: Any, name: str, base: C | None = None) -> C:
    """A ``cls`` instance from ``value``: an instance as it is; a mapping of field values over ``base``
    (or over ``cls()``'s defaults); ``None``: ``base`` (or ``cls()``).

    :raises ValueError: a mapping with keys that are not fields of ``cls`` (the fields are listed)
    :raises TypeError: any other kind of value
    """
    if isinstance(value, cls):
        return value
    if value is None:
        return base if base is not None else cls()
    if isinstance(value, Mapping):
        fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(value) - fields)
        if unknown:
            raise ValueError(f"{name}: unknown {cls.__name__} field(s) {unknown}; its fields are {sorted(fields)}")
        return dataclasses.replace(base, **value) if base is not None else cls(**value)  # type: ignore[type-var]
    raise TypeError(f"{name} must be a {cls.__name__}, a dict of its fields or None, got {type(value).__name__}")


def config_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a dict of its fields, nested configs as dicts, tuples as lists (JSON-ready
    when the fields are); fields declared with ``metadata={"save": False}`` (callbacks) are left out."""
    out = {}
    for f in dataclasses.fields(config):
        if not f.metadata.get("save", True):
            continue
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = config_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        out[f.name] = value
    return out


def merge_settings(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, mappings merged key by key at every depth (a config section given
    in part keeps the rest of ``base``'s section); other values replace."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_settings(merged[key], value)
        else:
            merged[key] = value
    return merged
