"""Separation quality of a stems store against known true stems (the demo, simulations).

SI-SDR (Le Roux et al. 2019) is three lines of algebra; it is written out here
so that the demo needs no optional dependency, and tested against
``fast_bss_eval.si_sdr`` (the field's implementation) in the test-suite.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["si_sdr", "align_to", "stems_quality"]


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio (dB) of one estimate.

    Parameters
    ----------
    reference, estimate : ndarray of shape (n_samples,)

    Returns
    -------
    float
        ``10 log10(|a r|^2 / |a r - e|^2)`` with ``a = <e, r> / <r, r>``
        (no mean removal, as ``fast_bss_eval.si_sdr``).
    """
    r = np.asarray(reference, dtype=np.float64)
    e = np.asarray(estimate, dtype=np.float64)
    a = float(e @ r) / max(float(r @ r), 1e-20)
    target = a * r
    return float(10 * np.log10(max(float(target @ target), 1e-20) / max(float((target - e) @ (target - e)), 1e-20)))


def align_to(signal: np.ndarray, reference: np.ndarray, max_lag: int) -> int:
    """Lag (samples) by which ``signal`` is late relative to ``reference`` (codec priming), by cross-correlation."""
    from scipy.signal import correlate

    n = min(signal.size, reference.size)
    c = correlate(signal[:n].astype(np.float64), reference[:n].astype(np.float64), mode="full", method="fft")
    lags = np.arange(-n + 1, n)
    keep = np.abs(lags) <= max_lag
    return int(lags[keep][np.argmax(c[keep])])


def stems_quality(workspace: Any, truth_dir: str | os.PathLike, *, name: str = "stems") -> dict[str, Any]:
    """SI-SDR of every stimulus's separated stems against true stems on disk.

    Parameters
    ----------
    workspace : xaffect.store.Workspace
        Holding the stems store ``name``.
    truth_dir : path-like
        Folder of ``<stimulus>.voice.wav`` and ``<stimulus>.soundtrack.wav``.
    name : str
        Stems store name.

    Returns
    -------
    dict
        ``backend`` (the one that ran), ``stimuli``: per stimulus
        ``si_sdr_voice``, ``si_sdr_soundtrack`` (dB) and the mixture's own
        (``mixture_voice``, ``mixture_soundtrack``), and ``median`` of the
        gains over the mixture, per stem.
    """
    from .decode import load_audio

    tree = workspace.open(name)
    root = tree["/"]
    truth_dir = Path(truth_dir)
    rows: dict[str, dict[str, float]] = {}
    for group in (g.lstrip("/") for g in tree.groups if g != "/"):
        ds = tree[group].to_dataset()
        sr = int(ds.attrs["sr"])
        audio = np.asarray(ds["audio"].values)  # (element, sample): original, voice, soundtrack
        true = {}
        for stem in ("voice", "soundtrack"):
            path = truth_dir / f"{group}.{stem}.wav"
            if not path.is_file():
                raise InputError(f"{path}: stimulus {group!r}: true {stem} stem not found")
            true[stem] = load_audio(path, sr=sr, mono=True, allow_silent=True)[0]
        lag = align_to(audio[0], true["voice"] + true["soundtrack"], max_lag=sr // 4)
        est = audio[:, max(lag, 0):]
        ref = {k: v[max(-lag, 0):] for k, v in true.items()}
        n = min(est.shape[1], *(v.size for v in ref.values()))
        row = {"lag_samples": lag}
        for i, stem in ((1, "voice"), (2, "soundtrack")):
            row[f"si_sdr_{stem}"] = si_sdr(ref[stem][:n], est[i, :n])
            row[f"mixture_{stem}"] = si_sdr(ref[stem][:n], est[0, :n])
        rows[group] = row
    median = {f"gain_{s}": float(np.median([r[f"si_sdr_{s}"] - r[f"mixture_{s}"] for r in rows.values()]))
              for s in ("voice", "soundtrack")}
    return {"backend": root.attrs.get("backend"), "stimuli": rows, "median": median}
