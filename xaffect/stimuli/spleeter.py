"""Spleeter backend (2stems: vocals / accompaniment), run in its own environment.

Spleeter pins numpy<2, tensorflow 2.12 and Python<3.12, so it cannot live in
xaffect's environment. It runs as a subprocess of a separate interpreter:

1. ``backend_options.python`` or ``backend_options.cli`` (an existing
   interpreter with spleeter installed, or a ``spleeter`` executable);
2. else ``$XAFFECT_SPLEETER_PYTHON``;
3. else the environment ``xaffect setup spleeter`` creates, by default
   ``~/.cache/xaffect/spleeter-env`` (``$XAFFECT_SPLEETER_ENV``).

Pretrained models live under Spleeter's ``MODEL_PATH`` (``model_path``
option, ``$XAFFECT_SPLEETER_MODELS``, default ``~/.cache/xaffect/spleeter-models``):
``spleeter:2stems`` is the folder ``MODEL_PATH/2stems``. ``params`` may
instead name a Spleeter JSON configuration (its ``model_dir`` holds the
checkpoint), e.g. one trained with ``spleeter train``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError

__all__ = ["separate_spleeter", "setup_spleeter", "spleeter_command", "model_identity",
           "default_env", "default_models"]

SPLEETER_VERSION = "2.4.2"
_PYTHON_FOR_ENV = ("python3.11", "python3.10", "python3.9")


def default_env() -> Path:
    """Where ``xaffect setup spleeter`` puts the environment."""
    return Path(os.environ.get("XAFFECT_SPLEETER_ENV", "~/.cache/xaffect/spleeter-env")).expanduser()


def default_models() -> Path:
    """Spleeter's ``MODEL_PATH`` unless given."""
    return Path(os.environ.get("XAFFECT_SPLEETER_MODELS", "~/.cache/xaffect/spleeter-models")).expanduser()


def _how_to_get() -> str:
    return ("create it with `xaffect setup spleeter` (a Python 3.11 venv with spleeter=="
            f"{SPLEETER_VERSION}, about a minute), or point backend_options.python / "
            "$XAFFECT_SPLEETER_PYTHON at an interpreter that has spleeter, or backend_options.cli "
            "at a `spleeter` executable")


def spleeter_command(python: str | os.PathLike | None = None, cli: str | os.PathLike | None = None) -> list[str]:
    """The command prefix that runs Spleeter's CLI, checked to work.

    Parameters
    ----------
    python : path-like, optional
        Interpreter with spleeter installed.
    cli : path-like, optional
        A ``spleeter`` executable.

    Returns
    -------
    list of str
        ``[python, "-m", "spleeter"]`` or ``[cli]``.

    Raises
    ------
    ConfigError
        No working Spleeter, with how to get one.
    """
    if cli is not None:
        exe = shutil.which(os.fspath(cli)) or os.fspath(cli)
        if not os.path.exists(exe):
            raise ConfigError(f"backend_options.cli: {cli} does not exist; {_how_to_get()}")
        return [exe]
    if python is None:
        python = os.environ.get("XAFFECT_SPLEETER_PYTHON") or default_env() / "bin" / "python"
    python = os.fspath(python)
    if not os.path.exists(python):
        raise ConfigError(f"spleeter: no Spleeter environment at {python}; {_how_to_get()}")
    probe = subprocess.run([python, "-c", "import spleeter"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise ConfigError(f"spleeter: {python} cannot import spleeter "
                          f"({probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else 'failed'}); "
                          f"{_how_to_get()}")
    return [python, "-m", "spleeter"]


def setup_spleeter(env: str | os.PathLike | None = None, *, python: str | None = None,
                   echo=print) -> Path:
    """Create (or check) the Spleeter environment. Idempotent.

    Parameters
    ----------
    env : path-like, optional
        Folder of the venv (default :func:`default_env`).
    python : str, optional
        Base interpreter (Python 3.9-3.11; default the first found).
    echo : callable
        Progress messages.

    Returns
    -------
    Path
        The environment's Python interpreter.
    """
    env = Path(env).expanduser() if env is not None else default_env()
    exe = env / "bin" / "python"
    if exe.exists():
        ok = subprocess.run([str(exe), "-c", "import spleeter"], capture_output=True).returncode == 0
        if ok:
            echo(f"spleeter environment ready: {exe}")
            return exe
    base = python or next((p for p in (shutil.which(n) for n in _PYTHON_FOR_ENV) if p), None)
    if base is None:
        raise ConfigError("spleeter: needs a Python 3.9-3.11 interpreter to build its environment "
                          "(e.g. `apt-get install python3.11-venv`), or pass --python")
    t0 = time.perf_counter()
    echo(f"creating {env} with {base} …")
    subprocess.run([base, "-m", "venv", str(env)], check=True)
    subprocess.run([str(exe), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    echo(f"installing spleeter=={SPLEETER_VERSION} (tensorflow 2.12, ~600 MB) …")
    subprocess.run([str(exe), "-m", "pip", "install", "-q", f"spleeter=={SPLEETER_VERSION}"], check=True)
    if shutil.which("ffmpeg") is None:
        echo("warning: Spleeter also needs the ffmpeg binary on PATH (apt-get install ffmpeg)")
    echo(f"spleeter environment ready in {time.perf_counter() - t0:.0f} s: {exe}")
    return exe


def _model_dir(model: str, model_path: Path, params: str | os.PathLike | None) -> tuple[str, Path]:
    """The ``-p`` argument for Spleeter and the checkpoint folder it will use."""
    if params is not None:
        p = Path(params).expanduser()
        if not p.is_file():
            raise ConfigError(f"backend_options.params: {p} does not exist")
        try:
            cfg = json.loads(p.read_text())
        except ValueError as exc:
            raise ConfigError(f"backend_options.params: {p} is not valid JSON ({exc})") from None
        mdir = Path(cfg.get("model_dir", ""))
        mdir = mdir if mdir.is_absolute() else model_path / mdir
        return str(p), mdir
    if not model.startswith("spleeter:"):
        raise ConfigError(f"backend_options.model: {model!r} must look like 'spleeter:2stems'")
    return model, model_path / model.split(":", 1)[1]


def _check_checkpoint(mdir: Path, model: str) -> None:
    if not mdir.is_dir() or not any(mdir.glob("checkpoint")) and not any(mdir.glob("*.index")):
        raise ConfigError(
            f"spleeter: no {model} checkpoint in {mdir}; download it once (e.g. "
            "https://github.com/deezer/spleeter/releases/download/v1.4.0/2stems.tar.gz, "
            f"extracted into {mdir}), set backend_options.model_path / $XAFFECT_SPLEETER_MODELS "
            "to the folder holding it, or train one with `spleeter train` and give its JSON as "
            "backend_options.params")


def model_identity(model: str = "spleeter:2stems", model_path: str | os.PathLike | None = None,
                   params: str | os.PathLike | None = None, **_: Any) -> dict[str, Any]:
    """Model name, checkpoint folder and checkpoint identity, for provenance."""
    mp = Path(model_path).expanduser() if model_path is not None else default_models()
    try:
        arg, mdir = _model_dir(model, mp, params)
    except ConfigError:
        return {"name": model}
    out: dict[str, Any] = {"name": model if params is None else f"spleeter:{Path(params).name}",
                           "path": str(mdir), "revision": SPLEETER_VERSION}
    ckpt = mdir / "checkpoint"
    if ckpt.is_file():
        out["checkpoint"] = ckpt.read_text().splitlines()[0] if ckpt.read_text() else ""
    return out


def separate_spleeter(audio: np.ndarray, sr: int, *, model: str = "spleeter:2stems",
                      model_path: str | os.PathLike | None = None, params: str | os.PathLike | None = None,
                      python: str | os.PathLike | None = None, cli: str | os.PathLike | None = None,
                      timeout: float | None = None) -> dict[str, np.ndarray]:
    """Separate voice and soundtrack with Spleeter 2stems in its own environment.

    Parameters
    ----------
    audio : ndarray of shape (n_samples,)
        Mono mixture.
    sr : int
        Its sample rate in Hz (Spleeter resamples to its own 44.1 kHz and back).
    model : str
        Pretrained model, ``spleeter:2stems`` (folder ``MODEL_PATH/2stems``).
    model_path : path-like, optional
        Spleeter's ``MODEL_PATH`` (default :func:`default_models`).
    params : path-like, optional
        A Spleeter JSON configuration to use instead of ``model``.
    python, cli : path-like, optional
        The interpreter or executable (see :func:`spleeter_command`).
    timeout : float, optional
        Seconds before the subprocess is stopped.

    Returns
    -------
    dict
        ``voice`` (vocals) and ``soundtrack`` (accompaniment), ndarrays of
        shape (n_samples,), float32.
    """
    import soundfile as sf

    from .decode import load_audio

    cmd = spleeter_command(python, cli)
    mp = Path(model_path).expanduser() if model_path is not None else default_models()
    arg, mdir = _model_dir(model, mp, params)
    _check_checkpoint(mdir, model if params is None else str(params))
    duration = audio.shape[-1] / sr
    with tempfile.TemporaryDirectory(prefix="xaffect-spleeter-") as tmp:
        src = Path(tmp) / "mix.wav"
        sf.write(src, np.asarray(audio, dtype=np.float32), sr, subtype="FLOAT")
        run = cmd + ["separate", "-p", arg, "-o", tmp, "-c", "wav", "-f", "{instrument}.{codec}",
                     "-d", f"{duration + 1.0:.3f}", str(src)]
        env = {**os.environ, "MODEL_PATH": str(mp), "TF_CPP_MIN_LOG_LEVEL": "2"}
        try:
            proc = subprocess.run(run, capture_output=True, text=True, env=env, timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise InputError(f"spleeter: separation did not finish within {timeout} s") from None
        outs = {name: Path(tmp) / f"{name}.wav" for name in ("vocals", "accompaniment")}
        if proc.returncode != 0 or not all(p.exists() for p in outs.values()):
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            raise InputError(f"spleeter: separation failed (exit {proc.returncode}): {tail}")
        voice, _ = load_audio(outs["vocals"], sr=sr, mono=True, allow_silent=True)
        rest, _ = load_audio(outs["accompaniment"], sr=sr, mono=True, allow_silent=True)
    n = audio.shape[-1]
    fit = lambda y: np.pad(y, (0, max(0, n - y.size)))[:n].astype(np.float32)  # noqa: E731
    return {"voice": fit(voice), "soundtrack": fit(rest)}


def main(argv: list[str] | None = None) -> int:
    """``python -m xaffect.stimuli.spleeter setup [ENV]`` (used by ``.ci/spleeter.sh``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "setup":
        print("usage: python -m xaffect.stimuli.spleeter setup [ENV]", file=sys.stderr)
        return 2
    setup_spleeter(argv[1] if len(argv) > 1 else None)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


def pretrained_available(model: str = "spleeter:2stems") -> bool:
    """Whether Spleeter's environment and the pretrained ``model`` checkpoint are here (nothing is run)."""
    py = os.environ.get("XAFFECT_SPLEETER_PYTHON") or str(default_env() / "bin" / "python")
    if not os.path.exists(py):
        return False
    try:
        _, mdir = _model_dir(model, default_models(), None)
        _check_checkpoint(mdir, model)
    except ConfigError:
        return False
    return True
