"""Simulated clock-rate stores for the encoding tests (planted effects); helpers only, no tests."""

import numpy as np
import xarray as xr


def clock_coords(n_stim, n_time, rate=1.0):
    stim = np.repeat([f"s{i}" for i in range(n_stim)], n_time)
    onset = np.tile((np.arange(n_time) + 0.5) / rate, n_stim)
    return dict(time=np.arange(n_stim * n_time), stimulus=("time", stim), onset=("time", onset))


def ar1(rng, shape, phi=0.5):
    x = rng.standard_normal(shape)
    for t in range(1, shape[0]):
        x[t] += phi * x[t - 1]
    return x


def feature_cube(values, n_stim, n_time, elements=("original",), layers=None, rate=1.0):
    """values: (element, time, layer, unit)."""
    values = np.asarray(values, dtype=np.float32)
    layers = list(range(values.shape[2])) if layers is None else layers
    da = xr.DataArray(values, dims=("element", "time", "layer", "unit"),
                      coords=dict(element=list(elements), layer=layers, **clock_coords(n_stim, n_time, rate)))
    da.attrs["clock_rate"] = rate
    return da


def target_array(values, names, n_stim, n_time, rate=1.0):
    da = xr.DataArray(np.asarray(values, dtype=np.float64), dims=("time", "target"),
                      coords=dict(target=list(names), **clock_coords(n_stim, n_time, rate)))
    da.attrs["clock_rate"] = rate
    return da
