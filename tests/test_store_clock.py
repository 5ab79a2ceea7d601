"""The clock: bins by frame centre, onsets are bin centres, no bin mixes stimuli."""

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from xaffect.errors import InputError
from xaffect.store import clock


def _brute_force(values, times, rate, duration):
    nb = int(np.floor(duration * rate + 1e-9))
    out = np.full(nb, np.nan)
    for i in range(nb):
        sel = (times >= i / rate - 1e-9) & (times < (i + 1) / rate - 1e-9)
        if sel.any():
            out[i] = values[sel].mean()
    return out


@settings(max_examples=60, deadline=None)
@given(hop=st.sampled_from([0.02, 0.01, 0.0125, 0.96, 0.32, 2.0]),
       win=st.sampled_from([0.0, 0.025, 0.4, 0.96]),
       rate=st.sampled_from([1.0, 0.5, 2.0, 1 / 1.5]),
       duration=st.floats(3.0, 40.0),
       seed=st.integers(0, 1000))
def test_to_clock_matches_brute_force(hop, win, rate, duration, seed):
    n_frames = int(np.floor((duration - win) / hop)) + 1
    times = clock.frame_times(n_frames, hop=hop, win=win)
    values = np.random.default_rng(seed).standard_normal(n_frames)
    got = clock.to_clock(values, times, rate=rate, duration=duration)
    want = _brute_force(values, times, rate, duration)
    assert got.shape == (int(np.floor(duration * rate + 1e-9)),)
    np.testing.assert_allclose(got, want, equal_nan=True, atol=1e-12)


def test_50hz_frames_with_25ms_window_land_in_their_second():
    # wav2vec2-like: 20 ms hop, 25 ms receptive field -> centres at 12.5 ms + 20 ms k
    times = clock.frame_times(500, hop=0.02, win=0.025)
    values = np.floor(times)  # each frame carries the second its centre is in
    out = clock.to_clock(values, times, rate=1.0, duration=10.0)
    np.testing.assert_array_equal(out, np.arange(10.0))
    # the frame centred at 0.9925 s belongs to bin 0, the one at 1.0125 s to bin 1
    assert times[49] == pytest.approx(0.9925) and times[50] == pytest.approx(1.0125)


def test_fmri_half_hz_clock():
    times = clock.frame_times(100, hop=0.1)  # 10 Hz samples, centres at 0, .1, ...
    out = clock.to_clock(np.arange(100.0), times, rate=0.5, duration=10.0)
    assert out.shape == (5,)
    np.testing.assert_allclose(out, [9.5, 29.5, 49.5, 69.5, 89.5])
    np.testing.assert_allclose(clock.bin_centres(5, 0.5), [1, 3, 5, 7, 9])


def test_sparse_frames_interpolate_or_nan():
    times = np.array([0.5, 2.5, 4.5])  # 0.5 Hz ratings on a 1 Hz clock
    v = np.array([0.0, 2.0, 4.0])
    assert np.isnan(clock.to_clock(v, times, rate=1.0, duration=5.0)[1])
    np.testing.assert_allclose(clock.to_clock(v, times, rate=1.0, duration=5.0, empty="interpolate"),
                               [0, 1, 2, 3, 4])


@settings(max_examples=40, deadline=None)
@given(durations=st.lists(st.floats(2.0, 30.0), min_size=1, max_size=5), rate=st.sampled_from([1.0, 0.5, 2.0]))
def test_concat_never_mixes_stimuli_and_onsets_are_centres(durations, rate):
    items = {}
    for k, d in enumerate(durations):
        times = clock.frame_times(int(d * 50), hop=0.02, win=0.025)
        da = xr.DataArray(np.full((times.size, 2), float(k)), dims=("frame", "unit"), coords={"frame": times})
        items[f"s{k}"] = clock.on_clock(da, rate=rate, duration=d)
    cat = clock.concat_stimuli(items)
    slices = clock.stimulus_slices(cat)
    assert list(slices) == list(items)
    for k, (name, sl) in enumerate(slices.items()):
        part = cat.isel(time=sl)
        assert set(np.unique(part.stimulus.values)) == {name}
        finite = part.values[np.isfinite(part.values)]
        assert np.all(finite == k), "a bin mixes two stimuli"
        np.testing.assert_allclose(part.onset.values, (np.arange(part.sizes["time"]) + 0.5) / rate)
    back = clock.split_stimuli(cat)
    for name in items:
        np.testing.assert_array_equal(back[name].values, items[name].values)


def test_window_mean_labels_by_centre_within_stimulus():
    a = xr.DataArray(np.arange(12.0), dims="time").assign_coords(onset=("time", np.arange(12) + 0.5))
    b = xr.DataArray(100 + np.arange(5.0), dims="time").assign_coords(onset=("time", np.arange(5) + 0.5))
    cat = clock.concat_stimuli({"a": a, "b": b})
    w = clock.window_mean(cat, window=4, step=2, rate=1.0)
    sl = clock.stimulus_slices(w)
    np.testing.assert_allclose(w.onset.values[sl["a"]], [2, 4, 6, 8, 10])
    np.testing.assert_allclose(w.values[sl["a"]], [1.5, 3.5, 5.5, 7.5, 9.5])
    np.testing.assert_allclose(w.values[sl["b"]], [101.5])  # one window fits in 5 s, never crosses into 'a'
    with pytest.raises(InputError, match="whole numbers"):
        clock.window_mean(cat, window=2.5, step=1, rate=1.0)
    with pytest.raises(InputError, match="longer than the stimulus"):
        clock.window_starts(3.0, window=10, step=1)


def test_check_same_clock_names_the_stimulus():
    a = xr.DataArray(np.zeros(5), dims="time").assign_coords(onset=("time", np.arange(5) + 0.5))
    b = xr.DataArray(np.zeros(4), dims="time").assign_coords(onset=("time", np.arange(4) + 0.5))
    with pytest.raises(InputError, match="clip"):
        clock.check_same_clock(clock.concat_stimuli({"clip": a}), clock.concat_stimuli({"clip": b}))
    with pytest.raises(InputError, match="different stimuli"):
        clock.check_same_clock(clock.concat_stimuli({"clip": a}), clock.concat_stimuli({"other": a}))


def test_interpolate_fills_a_last_bin_beyond_the_last_frame():
    # VGGish-like: 0.96 s hop, centres at 0.4875 + 0.96 k; a 24 s clip's bin 23 has no centre
    times = clock.frame_times(24, hop=0.96, win=0.975)
    assert not np.any((times >= 23) & (times < 24))
    vals = np.stack([np.arange(24.0), -np.arange(24.0)], axis=1)
    out = clock.to_clock(vals, times, rate=1.0, duration=24.0, empty="interpolate")
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[-1], vals[-1])  # constant beyond the last frame
    assert np.isnan(clock.to_clock(vals, times, rate=1.0, duration=24.0)[-1]).all()
