"""Family-wise inference over windows x regions: temporal clusters and the max-statistic."""

import numpy as np
import pytest
import xarray as xr
from scipy.signal import lfilter
from scipy.stats import binom

from xaffect.errors import InputError
from xaffect.surrogates import circular_shift_each
from xaffect.synchrony import _kernels as K
from xaffect.synchrony import isc_test
from xaffect.synchrony._clusters import window_family_test


def test_clusters_are_runs_of_windows_within_a_stimulus_and_region():
    # 6 windows (two stimuli of 3), 2 regions; the null is +-1 around 0 so z = observed / sd
    obs = np.array([[3.0, 0.0], [3.0, 0.0], [3.0, 0.0], [3.0, 0.0], [0.0, 0.0], [0.0, 3.0]])
    null = np.tile(np.array([1.0, -1.0])[:, None, None], (10, 6, 2))  # 20 surrogates
    null[:, -1, 0] = 0.5 * null[:, -1, 0]
    res = window_family_test(obs, null, np.array(["a", "a", "a", "b", "b", "b"]))
    ids = res["cluster_id"]
    # region 0: windows 0-2 (stimulus a) and window 3 (stimulus b) are two clusters, not one
    assert ids[0, 0] == ids[1, 0] == ids[2, 0] > 0 and ids[3, 0] > 0 and ids[3, 0] != ids[0, 0]
    assert ids[5, 1] > 0 and ids[5, 1] not in (ids[0, 0], ids[3, 0]) and (ids[:5, 1] == 0).all()
    assert (ids[4:, 0] == 0).all()
    np.testing.assert_allclose(res["cluster_mass"][0, 0], 3 * res["z"][0, 0])
    np.testing.assert_allclose(res["cluster_mass"][3, 0], res["z"][3, 0])
    assert np.isnan(res["p_cluster"][4, 0]) and np.isnan(res["cluster_mass"][4, 0])
    # no surrogate has a cluster (its values are within +-1.05 sd): every observed cluster has p = 1 / 21
    np.testing.assert_allclose(res["null_max_mass"], 0.0)
    np.testing.assert_allclose(res["p_cluster"][ids > 0], 1 / 21)
    with pytest.raises(ValueError, match="cluster_alpha"):
        window_family_test(obs, null, np.zeros(6), cluster_alpha=0.7)


def _null_experiment(rng, ar, n_null=39, n_sub=4, n_samples=480, n_regions=3, win=40, hop=20):
    """One dataset of independent subjects (white or AR(1)); any family-wise p <= .05 is a false positive."""
    e = rng.standard_normal((n_sub, n_samples, n_regions))
    x = lfilter([1.0], [1.0, -ar], e, axis=1) if ar else e
    starts = np.arange(0, n_samples - win + 1, hop)
    obs = K.loo_isc(x, starts, win)
    # all surrogates in one kernel call: regions are independent, so draws can sit side by side
    surr = np.concatenate([circular_shift_each(x, rng) for _ in range(n_null)], axis=2)
    null = np.moveaxis(K.loo_isc(surr, starts, win).reshape(starts.size, n_null, n_regions), 1, 0)
    res = window_family_test(obs, null, np.zeros(starts.size))
    p_uncorrected = (1.0 + (null >= obs).sum(axis=0)) / (1.0 + n_null)
    return (np.nanmin(res["p_cluster"], initial=1.0) <= 0.05, np.nanmin(res["p_max"]) <= 0.05,
            p_uncorrected.min() <= 0.05)


@pytest.mark.parametrize("ar", [0.0, 0.9])
def test_family_wise_error_is_nominal_under_the_null(ar):
    """300 null datasets (23 windows x 3 regions each): FWER within the 99.9 % binomial interval of 5 %."""
    rng = np.random.default_rng(2024 + int(10 * ar))
    n = 300
    events = np.array([_null_experiment(rng, ar) for _ in range(n)])
    lo, hi = binom.interval(0.999, n, 0.05)
    cluster, maxstat, uncorrected = events.sum(axis=0)
    assert lo <= cluster <= hi, cluster / n
    assert lo <= maxstat <= hi, maxstat / n
    # the per-window p-values are not a family-wise test: 69 of them find "something" far more often
    assert uncorrected / n > 0.5


def _two_stimuli(rng, fs=10.0, n_sub=6):
    """Stimulus a (120 s): region r1 synchronised during 80-120 s; stimulus b (60 s): r1 during 0-30 s."""
    parts = []
    for name, seconds, (on, off) in (("a", 120, (80, 120)), ("b", 60, (0, 30))):
        n = int(seconds * fs)
        t = np.arange(n) / fs
        x = lfilter([1.0], [1.0, -0.5], rng.standard_normal((n_sub, n, 3)), axis=1)
        sync = (t >= on) & (t < off)
        x[:, sync, 1] += 1.2 * rng.standard_normal(sync.sum())
        parts.append(xr.DataArray(x, dims=("subject", "time", "region"),
                                  coords={"region": ["r0", "r1", "r2"], "time": t,
                                          "stimulus": ("time", [name] * n)}))
    return xr.concat(parts, dim="time")


def test_planted_synchrony_is_found_as_a_cluster_that_stops_at_the_stimulus_boundary():
    ds = isc_test(_two_stimuli(np.random.default_rng(3)), window=10, step=5, n_null=99, n_boot=0, seed=1,
                  progress=False)
    for v in ("p_max", "p_cluster", "cluster_id", "cluster_mass"):
        assert ds[v].dims == ("time", "region")
    assert ds["p_cluster"].attrs["family"] == "windows×regions" and ds["p_max"].attrs["family"] == "windows×regions"
    assert ds["p_cluster"].attrs["null"] == "shift" and ds["p_fdr"].attrs["family"].startswith("regions")
    r1 = ds.sel(region="r1")
    in_a = (r1.stimulus == "a") & (r1.onset >= 85) & (r1.onset <= 115)  # windows wholly in the planted range
    in_b = (r1.stimulus == "b") & (r1.onset <= 25)
    ids_a, ids_b = np.unique(r1.cluster_id[in_a]), np.unique(r1.cluster_id[in_b])
    assert ids_a.size == 1 and ids_a[0] > 0 and ids_b.size == 1 and ids_b[0] > 0 and ids_a[0] != ids_b[0]
    assert float(r1.p_cluster[in_a].max()) < 0.05 and float(r1.p_cluster[in_b].max()) < 0.05
    assert float((r1.p_max[in_a | in_b] < 0.05).mean()) > 0.8
    # nothing family-wise significant outside the planted region and ranges
    others = ds.sel(region=["r0", "r2"])
    assert not (others.p_cluster < 0.05).any() and not (others.p_max < 0.05).any()
    early = (r1.stimulus == "a") & (r1.onset <= 70)
    assert not (r1.p_cluster[early] < 0.05).any()
    with pytest.raises(InputError, match="cluster_alpha"):
        isc_test(_two_stimuli(np.random.default_rng(0)), n_null=9, n_boot=0, cluster_alpha=0.0, progress=False)
