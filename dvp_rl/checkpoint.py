"""One-zip save/load of an agent, SB3 style, written atomically.

Layout of the zip: ``data`` (JSON: hyper-parameters and training state),
``value_net.pth`` (torch state dict), ``arrays.npz`` (numpy arrays), ``dvp_rl_version``,
``format_version`` and ``system_info.txt``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import platform
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT_VERSION = 1
REQUIRED_ENTRIES = ("data", "value_net.pth", "arrays.npz", "format_version")


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples, paths, types and dataclasses turned into JSON types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, type):
        return value.__name__
    return value


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, truncated or incompatible."""


def system_info() -> str:
    import crocoddyl
    import gymnasium
    import pinocchio

    from dvp_rl import __version__

    return "\n".join(
        [
            f"dvp_rl: {__version__}",
            f"Python: {platform.python_version()}",
            f"OS: {platform.platform()}",
            f"numpy: {np.__version__}",
            f"torch: {torch.__version__}",
            f"crocoddyl: {crocoddyl.__version__}",
            f"pinocchio: {pinocchio.__version__}",
            f"gymnasium: {gymnasium.__version__}",
        ]
    )


def write_checkpoint(path: str | os.PathLike, data: dict[str, Any], state_dict: dict[str, torch.Tensor], arrays: dict[str, np.ndarray]) -> Path:
    """Write the zip to ``path`` (``.zip`` appended if missing) atomically: a crash leaves the old file."""
    from dvp_rl import __version__

    path = Path(path)
    if path.suffix != ".zip":
        path = path.with_name(path.name + ".zip")
    path.parent.mkdir(parents=True, exist_ok=True)
    net_bytes = io.BytesIO()
    torch.save(state_dict, net_bytes)
    arr_bytes = io.BytesIO()
    np.savez(arr_bytes, **arrays)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("data", json.dumps(data, indent=2))
            archive.writestr("value_net.pth", net_bytes.getvalue())
            archive.writestr("arrays.npz", arr_bytes.getvalue())
            archive.writestr("dvp_rl_version", __version__)
            archive.writestr("format_version", str(FORMAT_VERSION))
            archive.writestr("system_info.txt", system_info())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """Read ``(data, state_dict, arrays)``; a :class:`CheckpointError` says what is wrong."""
    path = Path(path)
    if not path.exists() and path.with_name(path.name + ".zip").exists():
        path = path.with_name(path.name + ".zip")
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [e for e in REQUIRED_ENTRIES if e not in names]
            if missing:
                raise CheckpointError(f"{path} is not a dvp_rl checkpoint: missing {missing}")
            version = int(archive.read("format_version").decode())
            if version != FORMAT_VERSION:
                raise CheckpointError(f"{path} has checkpoint format {version}; this dvp_rl reads format {FORMAT_VERSION}")
            data = json.loads(archive.read("data").decode())
            state_dict = torch.load(io.BytesIO(archive.read("value_net.pth")), map_location="cpu", weights_only=True)
            with np.load(io.BytesIO(archive.read("arrays.npz"))) as npz:
                arrays = {k: npz[k] for k in npz.files}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is corrupt or truncated ({type(exc).__name__}: {exc})") from exc
    return data, state_dict, arrays
