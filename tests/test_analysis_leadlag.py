"""Lead-lag: a planted lag is recovered with its interval, the lag-max null stays at ~5 % on
autocorrelated series, and impossible lag ranges are refused."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr
from scipy import signal, stats

from xaffect.analysis.leadlag import describe_lead_lag, lagged_correlation, lead_lag, plot_lead_lag
from xaffect.errors import ConfigError, InputError

LENGTHS = {"song_a": 240, "song_b": 300, "song_c": 200}


def ar1(rng, n, phi=0.8):
    return signal.lfilter([1.0], [1.0, -phi], rng.standard_normal(n + 100))[100:]


def on_clock(values, name, lengths=LENGTHS, rate=1.0):
    stim = np.concatenate([[k] * n for k, n in lengths.items()])
    onset = np.concatenate([(np.arange(n) + 0.5) / rate for n in lengths.values()])
    return xr.DataArray(values, dims=("time",), name=name, attrs={"clock_rate": rate},
                        coords={"time": np.arange(stim.size), "stimulus": ("time", stim), "onset": ("time", onset)})


def planted(rng, lag, strength=0.6, lengths=LENGTHS):
    """Region AR(1) per stimulus; rating = strength * region shifted by ``lag`` steps + AR(1) noise."""
    xs, ys = [], []
    for n in lengths.values():
        x = ar1(rng, n + abs(lag))
        xs.append(x[abs(lag):] if lag >= 0 else x[:n])
        shifted = x[:n] if lag >= 0 else x[abs(lag):]
        ys.append(strength * shifted + ar1(rng, n))
    return on_clock(np.concatenate(xs), "vmPFC", lengths), on_clock(np.concatenate(ys), "enjoyment", lengths)


def test_kernel_matches_a_direct_within_stimulus_correlation():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(50), rng.standard_normal(50)
    groups = np.repeat(["a", "b"], 25)
    r = lagged_correlation(x, y, groups, np.array([-2, 0, 3]))
    # lag 3, support t in [2, 22) of each stimulus, each stimulus centred on its own
    xa = np.r_[x[2:22] - x[2:22].mean(), x[27:47] - x[27:47].mean()]
    ya = np.r_[y[5:25] - y[5:25].mean(), y[30:50] - y[30:50].mean()]
    assert r[2] == pytest.approx(xa @ ya / np.sqrt((xa @ xa) * (ya @ ya)))


@pytest.mark.parametrize("lag", [4, -3])
def test_planted_lead_is_recovered_with_an_interval(lag):
    region, rating = planted(np.random.default_rng(1), lag)
    ds = lead_lag(region, rating, lags=(-10, 10), n_null=199, n_boot=199, seed=0)
    assert float(ds.peak_lag) == lag
    assert ds.p_peak < 0.01
    assert ds.peak_lag_low <= lag <= ds.peak_lag_high and ds.peak_lag_high - ds.peak_lag_low <= 4
    assert plot_lead_lag(ds).axes[0].get_xlabel().startswith("lag (s)")
    sentence = describe_lead_lag(ds)
    assert (f"region vmPFC precedes rating enjoyment by {lag} s" in sentence) if lag > 0 else \
        (f"rating enjoyment precedes region vmPFC by {-lag} s" in sentence)


@pytest.mark.parametrize("null", ["shift", "phase"])
def test_lag_max_null_is_calibrated_on_autocorrelated_series(null):
    rng = np.random.default_rng(2)
    n, hits, hits_naive = (120 if null == "shift" else 80), 0, 0
    for k in range(n):
        region = on_clock(np.concatenate([ar1(rng, m, 0.9) for m in LENGTHS.values()]), "region")
        rating = on_clock(np.concatenate([ar1(rng, m, 0.9) for m in LENGTHS.values()]), "rating")
        ds = lead_lag(region, rating, lags=(-8, 8), null=null, n_null=99, n_boot=2, seed=k)
        hits += ds.p_peak.item() < 0.05
        # the textbook iid test at the peak lag is what the null guards against
        n_pairs = sum(LENGTHS.values()) - 3 * 16
        t = float(ds.peak_r) * np.sqrt((n_pairs - 2) / (1 - float(ds.peak_r) ** 2))
        hits_naive += 2 * stats.t.sf(abs(t), n_pairs - 2) < 0.05
    assert hits <= stats.binom.ppf(0.999, n, 0.05)
    assert hits >= stats.binom.ppf(0.001, n, 0.05)
    assert hits_naive / n > 0.3


def test_bootstrap_interval_covers_the_planted_lag():
    rng = np.random.default_rng(3)
    n, covered = 30, 0
    for k in range(n):
        region, rating = planted(rng, 2, strength=0.35)
        ds = lead_lag(region, rating, lags=(-6, 6), n_null=9, n_boot=199, seed=k, bootstrap="block")
        covered += ds.peak_lag_low <= 2 <= ds.peak_lag_high
    assert covered / n >= 0.85


def test_stimulus_bootstrap_and_seconds_at_another_rate():
    lengths = {f"s{i}": 120 for i in range(6)}
    region, rating = planted(np.random.default_rng(4), 3, lengths=lengths)
    region = region.assign_attrs(clock_rate=0.5).assign_coords(onset=region.onset * 2)
    rating = rating.assign_attrs(clock_rate=0.5).assign_coords(onset=rating.onset * 2)
    ds = lead_lag(region, rating, lags=(-12, 12), n_null=99, n_boot=99, bootstrap="stimulus")
    assert float(ds.peak_lag) == 6.0 and ds.p_peak < 0.05                    # 3 steps of 2 s
    assert ds.peak_lag_low <= 6 <= ds.peak_lag_high


def test_bad_input_is_refused():
    region, rating = planted(np.random.default_rng(5), 1)
    with pytest.raises(InputError, match=r"longer than stimulus 'song_c' \(200 s\)"):
        lead_lag(region, rating, lags=(-110, 110), n_null=9, n_boot=9)
    with pytest.raises(ConfigError, match="whole clock steps"):
        lead_lag(region, rating, lags=(-2.5, 2), n_null=9, n_boot=9)
    with pytest.raises(ConfigError, match="null: must be one of"):
        lead_lag(region, rating, null="permute", n_null=9, n_boot=9)
    other = rating.isel(time=slice(0, 500))
    with pytest.raises(InputError, match="rating 'enjoyment'"):
        lead_lag(region, other, n_null=9, n_boot=9)
    with pytest.raises(InputError, match="rating 'enjoyment': has missing values"):
        lead_lag(region, rating.where(rating.time != 7), n_null=9, n_boot=9)
    with pytest.raises(InputError, match="rating 'enjoyment': expected dims"):
        lead_lag(region, rating.expand_dims(scale=["a"]), n_null=9, n_boot=9)
    with pytest.raises(InputError, match="region 'vmPFC': expected dims"):
        lead_lag(region.expand_dims(region=["a"], subject=["s"]), rating, n_null=9, n_boot=9)


def test_several_regions_share_one_family_wise_null():
    rng = np.random.default_rng(6)
    region, rating = planted(rng, 4)
    others = [on_clock(np.concatenate([ar1(rng, m) for m in LENGTHS.values()]), "x") for _ in range(3)]
    regions = xr.concat([region] + others, dim="region").assign_coords(region=["vmPFC", "A1", "IFG", "PCC"])
    ds = lead_lag(regions.transpose("time", "region"), rating, lags=(-8, 8), n_null=199, n_boot=99)
    assert ds.r.dims == ("region", "lag") and float(ds.peak_lag.sel(region="vmPFC")) == 4
    assert ds.p_peak.sel(region="vmPFC") < 0.01 and (ds.p_peak.drop_sel(region="vmPFC") > 0.05).all()
    assert "region vmPFC precedes rating enjoyment by 4 s" in describe_lead_lag(ds.sel(region="vmPFC"))
    with pytest.raises(InputError, match="select one region first"):
        describe_lead_lag(ds)
    # under the null, the family-wise rate over 4 regions x 17 lags stays at ~5 %
    n, hits = 60, 0
    for k in range(n):
        noise = xr.concat([on_clock(np.concatenate([ar1(rng, m, 0.9) for m in LENGTHS.values()]), "x")
                           for _ in range(4)], dim="region")
        null_rating = on_clock(np.concatenate([ar1(rng, m, 0.9) for m in LENGTHS.values()]), "rating")
        hits += lead_lag(noise, null_rating, lags=(-8, 8), n_null=99, n_boot=2, seed=k).p_peak.min().item() < 0.05
    assert hits <= stats.binom.ppf(0.999, n, 0.05)
