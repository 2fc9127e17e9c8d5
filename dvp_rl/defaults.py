"""DVP's tuned settings per env id, from ``dvp_rl/defaults.yml`` (the package's own file; no torch here).

``DVP(env_id)`` starts from the id's entry, and the comparison presets train with the same
entries, so what the docs report is what the default call gives::

    dvp_defaults("Pendulum-v1")     # {"iterations": 6, "horizon": 10, ...}; {} for an id without an entry
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

#: the settings file
DEFAULTS_PATH = Path(__file__).with_name("defaults.yml")


@functools.lru_cache(maxsize=1)
def _entries() -> dict[str, dict[str, Any]]:
    with DEFAULTS_PATH.open() as f:
        entries = yaml.safe_load(f) or {}
    if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
        raise ValueError(f"{DEFAULTS_PATH} must map env ids to mappings of settings")
    return entries


def dvp_defaults(env_id: str) -> dict[str, Any]:
    """The tuned settings of ``env_id`` (a fresh copy; empty for an id without an entry)."""
    import copy

    return copy.deepcopy(_entries().get(env_id, {}))


def tuned_ids() -> tuple[str, ...]:
    """The ids with an entry."""
    return tuple(_entries())
