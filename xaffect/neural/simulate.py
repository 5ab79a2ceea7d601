"""Simulated EEG: planted region time courses projected through a forward model to the sensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError

__all__ = ["simulate_raw"]

_V = "error"  # MNE log level inside library calls

def simulate_raw(signals: xr.DataArray, info: Any, forward: Any, labels: Sequence[Any], *, noise: float = 0.1,
                 seed: int | None = None) -> Any:
    """Project planted region time courses through a forward model to EEG sensors.

    Every source vertex of a label carries that region's time course as a
    current along the cortical normal; regions absent from ``signals`` are
    silent. White sensor noise is added with standard deviation ``noise``
    times the RMS of the clean sensor signal.

    Parameters
    ----------
    signals : xarray.DataArray of shape (time, region)
        Source amplitudes (A·m), regions named like the labels.
    info : mne.Info
        Sensors (``sfreq`` is the sampling rate of ``signals``).
    forward : mne.Forward
    labels : sequence of mne.Label
    noise : float
        Relative sensor noise level.
    seed : int, optional

    Returns
    -------
    mne.io.RawArray
        Simulated EEG (n_channels × n_times).
    """
    import mne

    if set(signals.dims) != {"time", "region"}:
        raise InputError(f"signals: expected dims (time, region), got {signals.dims}")
    by_name = {lab.name: lab for lab in labels}
    unknown = [str(r) for r in signals["region"].values if str(r) not in by_name]
    if unknown:
        raise InputError(f"signals: region(s) {', '.join(unknown[:5])} are not labels of the annotation")
    fwd = mne.convert_forward_solution(forward, surf_ori=True, force_fixed=True, use_cps=True, verbose=_V)
    src = fwd["src"]
    vertno = [s["vertno"] for s in src]
    x = signals.transpose("time", "region").values
    data = np.zeros((sum(len(v) for v in vertno), x.shape[0]))
    offset = {"lh": 0, "rh": len(vertno[0])}
    for j, name in enumerate(signals["region"].values):
        lab = by_name[str(name)]
        hemi = 0 if lab.hemi == "lh" else 1
        rows = np.nonzero(np.isin(vertno[hemi], lab.vertices))[0] + offset[lab.hemi]
        data[rows] += x[:, j]
    stc = mne.SourceEstimate(data, vertno, tmin=0.0, tstep=1.0 / info["sfreq"], subject=src[0].get("subject_his_id"))
    sim_info = mne.pick_info(info, mne.pick_channels(info["ch_names"], fwd["info"]["ch_names"], ordered=True))
    raw = mne.apply_forward_raw(fwd, stc, sim_info, verbose=_V)
    rng = np.random.default_rng(seed)
    clean = raw.get_data()
    rms = float(np.sqrt(np.mean(clean ** 2)))
    return mne.io.RawArray(clean + rng.standard_normal(clean.shape) * noise * rms, raw.info, verbose=_V)
