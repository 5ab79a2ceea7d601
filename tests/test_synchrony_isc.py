"""Sliding ISC on labelled data: planted effects, the window clock, nulls, bad input."""

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy.signal import lfilter

from xaffect.errors import InputError
from xaffect.store.clock import check_same_clock, concat_stimuli, on_clock, window_mean
from xaffect.synchrony import ISCWarning, isc_test, sliding_isc


def _subjects(rng, n_sub=6, seconds=60, fs=50.0, regions=("a", "b", "c"), shared=None):
    T = int(seconds * fs)
    x = rng.standard_normal((n_sub, T, len(regions)))
    if shared is not None:
        x += shared
    return xr.DataArray(x, dims=("subject", "time", "region"),
                        coords={"subject": [f"sub-{i:02d}" for i in range(n_sub)], "region": list(regions),
                                "time": np.arange(T) / fs})


def test_planted_dynamic_synchrony_is_recovered_in_time_and_region():
    rng = np.random.default_rng(0)
    fs, seconds = 50.0, 60
    T = int(fs * seconds)
    t = np.arange(T) / fs
    shared = np.zeros((1, T, 3))
    on = t >= 30.0  # region "b" synchronised in the second half only
    shared[0, on, 1] = 1.5 * rng.standard_normal(on.sum())
    da = _subjects(rng, fs=fs, seconds=seconds, shared=shared)
    for method in ("loo", "pairwise"):
        isc = sliding_isc(da, window=10, step=1, method=method)
        assert isc.dims == ("time", "region") and isc.sizes["time"] == 51
        np.testing.assert_allclose(isc["onset"].values, np.arange(51) + 5.0)
        b = isc.sel(region="b")
        assert float(b.where(isc.onset >= 35.5).mean()) > 0.4  # windows wholly in the synchronised half
        assert abs(float(b.where(isc.onset <= 24.5).mean())) < 0.05
        assert abs(float(isc.sel(region=["a", "c"]).mean())) < 0.05
    # LOO (one vs mean of others) exceeds pairwise for a shared signal, as it should
    loo = sliding_isc(da, method="loo").sel(region="b")
    pw = sliding_isc(da, method="pairwise").sel(region="b")
    assert float(loo.where(loo.onset >= 35.5).mean()) > float(pw.where(pw.onset >= 35.5).mean())


def test_windows_follow_the_clock_and_never_cross_stimuli():
    rng = np.random.default_rng(1)
    fs = 20.0
    parts = []
    for name, seconds in (("clip-a", 23.5), ("clip-b", 17.0)):
        d = _subjects(rng, n_sub=4, seconds=seconds, fs=fs)
        parts.append(d.assign_coords(stimulus=("time", [name] * d.sizes["time"])))
    da = xr.concat(parts, dim="time")
    isc = sliding_isc(da, window=4, step=2)
    # features of the same stimuli on the 1 Hz clock, averaged over the same windows
    feats = concat_stimuli({name: on_clock(xr.DataArray(np.zeros((int(sec * 100), 1)), dims=("frame", "d")),
                                           rate=1.0, duration=sec, times=np.arange(int(sec * 100)) / 100)
                            for name, sec in (("clip-a", 23.5), ("clip-b", 17.0))})
    check_same_clock(window_mean(feats, window=4, step=2), isc, names=("features", "synchrony"))
    # a stimulus boundary: the ISC of clip-b alone equals its part of the concatenated run
    alone = sliding_isc(parts[1].drop_vars("stimulus"), window=4, step=2)
    np.testing.assert_allclose(isc.where(isc.stimulus == "clip-b", drop=True).values, alone.values, atol=1e-6)


def test_band_envelope_synchrony_is_found_in_its_band():
    rng = np.random.default_rng(2)
    fs, seconds = 100.0, 40
    T = int(fs * seconds)
    t = np.arange(T) / fs
    # every subject carries an alpha-band carrier with a shared slow amplitude modulation
    mod = 1.0 + 0.9 * np.sin(2 * np.pi * 0.1 * t + rng.uniform(0, 6))
    shared = np.zeros((1, T, 2))
    da = _subjects(rng, n_sub=5, seconds=seconds, fs=fs, regions=("r0", "r1"), shared=shared)
    carriers = 8.7 + 0.8 * np.arange(5)  # each subject its own alpha frequency: no raw-signal synchrony
    da[:, :, 0] += 3.0 * mod[None] * np.sin(2 * np.pi * carriers[:, None] * t[None])
    isc = sliding_isc(da, window=10, step=5, bands=["alpha", "beta"])
    assert isc.dims == ("time", "region", "band")
    assert float(isc.sel(region="r0", band="alpha").mean()) > 0.5
    assert abs(float(isc.sel(region="r0", band="beta").mean())) < 0.2
    assert abs(float(isc.sel(region="r1", band="alpha").mean())) < 0.2
    # the raw signal shows no synchrony (carriers differ across subjects)
    assert abs(float(sliding_isc(da, window=10, step=5).sel(region="r0").mean())) < 0.1
    both = sliding_isc(da, window=10, step=5, bands=["raw", "alpha"])
    np.testing.assert_allclose(both.sel(band="raw").values, sliding_isc(da, window=10, step=5).values, atol=1e-6)
    np.testing.assert_allclose(both.sel(band="alpha").values, isc.sel(band="alpha").values, atol=1e-6)
    with pytest.raises(InputError, match="gamma"):
        sliding_isc(da.isel(time=slice(None, None, 2)).assign_attrs(sfreq=50.0), window=10, step=5, bands=["gamma"])


@pytest.mark.parametrize("null,method", [("shift", "loo"), ("phase", "loo"), ("shift", "pairwise")])
def test_null_calibration_on_independent_noise(null, method):
    """Independent, autocorrelated noise subjects: p < 0.05 in 3-7 % of windows."""
    rng = np.random.default_rng(11)
    fs, seconds, R = 5.0, 600, 30
    T = int(fs * seconds)
    x = lfilter([1.0], [1.0, -0.7], rng.standard_normal((4, T, R)), axis=1)
    da = xr.DataArray(x, dims=("subject", "time", "region"), coords={"time": np.arange(T) / fs})
    ds = isc_test(da, window=10, step=10, method=method, null=null, n_null=199, n_boot=0, seed=3, progress=False)
    frac = float((ds["p"] < 0.05).mean())
    assert 0.03 <= frac <= 0.07, frac
    assert float((ds["p_fdr"] < 0.05).mean()) < 0.01  # FDR across regions controls false discoveries
    assert np.isfinite(ds["summary_p"]).all()


def test_planted_synchrony_is_significant_and_bootstrap_covers_it():
    rng = np.random.default_rng(4)
    fs, seconds = 20.0, 120
    T = int(fs * seconds)
    shared = np.zeros((1, T, 4))
    shared[0, :, 0] = rng.standard_normal(T)
    da = _subjects(rng, n_sub=8, seconds=seconds, fs=fs, regions=("s", "n1", "n2", "n3"), shared=shared)
    ds = isc_test(da, window=10, step=5, n_null=99, n_boot=99, seed=0, progress=False)
    p_fdr = ds["p_fdr"].sel(region="s")
    assert float((p_fdr < 0.05).mean()) > 0.9
    assert float(ds["summary_p_fdr"].sel(region="s")) < 0.05
    assert float(ds["summary_p"].sel(region=["n1", "n2", "n3"]).min()) > 0.01
    lo, hi = ds["summary_ci"].sel(region="s").values
    assert lo < float(ds["summary"].sel(region="s")) < hi
    assert lo > 0.3  # the true LOO ISC of 8 subjects at 50 % shared variance is ~0.67
    assert float(ds["bootstrap_p"].sel(region="s")) < 0.05
    assert ds["null_mean"].dims == ("time", "region") and abs(float(ds["null_mean"].mean())) < 0.05


def test_subjects_of_different_lengths_trim_with_warning_or_refuse():
    rng = np.random.default_rng(5)
    full = _subjects(rng, n_sub=4, seconds=30, fs=10.0)
    subjects = {str(s): full.sel(subject=s).drop_vars("subject") for s in full.subject.values}
    subjects["sub-02"] = subjects["sub-02"].isel(time=slice(0, 250))  # 25 s instead of 30
    with pytest.warns(ISCWarning, match="sub-02"):
        isc = sliding_isc(subjects, window=10, step=1)
    assert isc.sizes["time"] == 16  # windows of the 25 s all subjects share
    with pytest.raises(InputError, match="sub-02"):
        sliding_isc(subjects, window=10, step=1, lengths="error")
    # the same as NaN padding at the end of one subject in a (subject, time, region) array
    padded = full.copy()
    padded[2, 250:] = np.nan
    with pytest.warns(ISCWarning, match="sub-02"):
        np.testing.assert_allclose(sliding_isc(padded).values, isc.values, atol=1e-6)


def test_bad_input_messages():
    rng = np.random.default_rng(6)
    da = _subjects(rng, n_sub=4, seconds=8, fs=10.0)
    with pytest.raises(InputError, match="longer than the stimulus"):
        sliding_isc(da, window=10, step=1)
    with pytest.raises(InputError, match="at least 3"):
        sliding_isc(_subjects(rng, n_sub=2, seconds=30, fs=10.0), method="loo")
    assert np.isfinite(sliding_isc(_subjects(rng, n_sub=2, seconds=30, fs=10.0), method="pairwise")).all()
    with pytest.raises(InputError, match="method"):
        sliding_isc(da, window=2, method="median")
    with pytest.raises(InputError, match="null"):
        isc_test(da, window=2, null="bootstrap")
    with pytest.raises(InputError, match="dims"):
        sliding_isc(da.rename(region="channel"))
    # a constant (zero-variance) signal: NaN in its windows, a finite ISC elsewhere
    flat = _subjects(rng, n_sub=4, seconds=30, fs=10.0)
    flat[:, :, 0] = 2.0
    flat[1, :120, 1] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        isc = sliding_isc(flat, window=10, step=1)
    assert np.isnan(isc.sel(region="a")).all()
    assert np.isfinite(isc.sel(region=["b", "c"])).all()


def test_a_subject_without_data_is_left_out_with_a_warning():
    rng = np.random.default_rng(7)
    da = _subjects(rng, n_sub=5, seconds=30, fs=10.0)
    gone = da.copy()
    gone[3] = np.nan
    with pytest.warns(ISCWarning, match="sub-03"):
        got = sliding_isc(gone)
    np.testing.assert_allclose(got.values, sliding_isc(da.drop_sel(subject="sub-03")).values, atol=1e-6)


def test_nulls_do_not_depend_on_the_scheduler():
    from xaffect.store import use_scheduler

    rng = np.random.default_rng(8)
    da = _subjects(rng, n_sub=4, seconds=30, fs=10.0)
    with use_scheduler("synchronous"):
        a = isc_test(da, window=10, step=5, n_null=19, n_boot=9, seed=1, progress=False)
    b = isc_test(da, window=10, step=5, n_null=19, n_boot=9, seed=1, progress=False)
    xr.testing.assert_identical(a, b)
    c = isc_test(da, window=10, step=5, n_null=19, n_boot=9, seed=2, progress=False)
    assert not np.array_equal(a["summary_null"].values, c["summary_null"].values)
