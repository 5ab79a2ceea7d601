"""Calibration of the default null (stimulus permutation) on drifting targets, and of declared families.

Targets are independent of the features by construction; every bound below is
a binomial interval of about +-3.4 standard errors around alpha for the rate of
p <= alpha (with 99 nulls p is a multiple of 1/100, and P(p <= alpha) = alpha for
an exact null; p < alpha would be .04). Seeds are fixed, so a run is
deterministic; the width is what makes the bound honest rather than tuned.
The fuller table (every null x target kind x feature kind, with
delays and covariates) is ``benchmarks/bench_calibration.py``.
"""

import warnings

import numpy as np
import pytest
import xarray as xr

from xaffect.encoding import family_pvalues, fit_grid

S, T = 8, 60


def _series(rng, kind, n_cols):
    e = rng.standard_normal((S, T, n_cols))
    if kind == "randomwalk":
        x = np.cumsum(e, axis=1)
    elif kind == "white":
        x = e
    else:
        phi = float(kind[2:])
        x = np.empty_like(e)
        x[:, 0] = e[:, 0] / np.sqrt(1 - phi ** 2)
        for t in range(1, T):
            x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x.reshape(S * T, n_cols)


def _coords():
    return dict(time=np.arange(S * T), stimulus=("time", np.repeat([f"s{i}" for i in range(S)], T)),
                onset=("time", np.tile(np.arange(T) + 0.5, S)))


def _grid(F, Y, **kw):
    feats = {"f": xr.DataArray(F[None, :, None, :], dims=("element", "time", "layer", "unit"),
                               coords=dict(element=["original"], layer=[0], **_coords()), attrs={"clock_rate": 1.0})}
    tg = xr.DataArray(Y, dims=("time", "target"), coords=dict(target=[f"t{i}" for i in range(Y.shape[1])],
                                                               **_coords()), attrs={"clock_rate": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_grid(feats, tg, n_perm=99, alphas=[0.1, 10.0, 1000.0], progress=False, **kw)


@pytest.fixture(scope="module")
def null_pvalues():
    """p-values of the default null, 600 per target kind, autocorrelated features (AR(0.9))."""
    out = {}
    for k, kind in enumerate(("white", "ar0.9", "ar0.99", "randomwalk")):
        ps = []
        for rep in range(2):
            rng = np.random.default_rng([k, rep])
            ds = _grid(_series(rng, "ar0.9", 3), _series(rng, kind, 300), seed=rep)
            assert ds.attrs["null"] == "stimulus"                  # the default for >= 5 stimuli, LOSO
            ps.append(ds["p"].values.ravel())
        out[kind] = np.concatenate(ps)
    return out


@pytest.mark.parametrize("kind", ["white", "ar0.9", "ar0.99", "randomwalk"])
def test_default_null_is_calibrated_for_drifting_targets(null_pvalues, kind):
    p = null_pvalues[kind]
    assert p.size == 600 and np.isfinite(p).all()
    assert 0.02 <= np.mean(p <= 0.05) <= 0.08                       # 600 p: +-3.4 s.e. of .05 is +-.03


def test_default_null_pooled_rates(null_pvalues):
    p = np.concatenate(list(null_pvalues.values()))                # 2400 p: +-3.4 s.e. of .05 is +-.015
    assert 0.035 <= np.mean(p <= 0.05) <= 0.065
    assert np.mean(p <= 0.01) <= 0.018


def test_planted_effect_on_drifting_targets_is_recovered():
    rng = np.random.default_rng(9)
    F = _series(rng, "ar0.9", 3)
    Y = _series(rng, "randomwalk", 40) + 1.5 * F[:, :1]
    ds = _grid(F, Y)
    assert np.mean(ds["p"].values < 0.05) > 0.8
    assert float(ds["p_fwer"].min()) < 0.05


def _family_scores(rng, n_rep=2000, n_layer=4, n_target=5, n_perm=99, planted=None):
    """Scores-like stores whose observed r is one more exchangeable draw of the null (correlated cells)."""
    shared = rng.standard_normal((n_rep, 1, 1, 1, n_perm + 1))
    Z = 0.6 * shared + 0.8 * rng.standard_normal((n_rep, n_layer, 1, n_target, n_perm + 1))
    obs, null = Z[..., 0], Z[..., 1:]
    if planted is not None:
        obs[planted] += 5.0
    dims = ("feature_set", "layer", "element", "target")
    coords = dict(feature_set=np.arange(n_rep), layer=np.arange(n_layer), element=["original"],
                  target=[f"t{i}" for i in range(n_target)])
    p = (1 + (null >= obs[..., None]).sum(-1)) / (1 + n_perm)
    return xr.Dataset({"r_mean": (dims, obs), "p": (dims, p), "null": (dims + ("perm",), null)}, coords=coords)


def test_family_fwer_and_fdr_hold_under_the_null_and_find_a_planted_test():
    rng = np.random.default_rng(10)
    ds = _family_scores(rng)
    fam = ("layer", "element", "target")                            # each feature_set index is one replicate
    fw = family_pvalues(ds, fam, method="fwer")
    fd = family_pvalues(ds, fam, method="fdr")
    assert fw.attrs["family"] == "layer x element x target" and fw.attrs["n_tests"] == 20
    any_fw = (fw <= 0.05).any(fam).values.mean()
    any_fd = (fd <= 0.05).any(fam).values.mean()
    any_raw = (ds["p"] <= 0.05).any(fam).values.mean()
    assert 0.035 <= any_fw <= 0.065                                 # 2000 replicates: +-3.4 s.e.
    assert any_fd <= 0.065 and any_raw > 0.3                        # uncorrected: far above alpha
    planted = _family_scores(np.random.default_rng(11), n_rep=200, planted=(slice(None), 2, 0, 3))
    pf = family_pvalues(planted, fam)
    assert (pf.sel(layer=2, target="t3") <= 0.05).mean() > 0.95
    assert (pf.drop_sel(layer=2) <= 0.05).any(("layer", "element", "target")).mean() < 0.1


def test_family_pvalues_selection_and_subfamilies_match_brute_force():
    from xaffect.encoding import fwer_maxstat

    ds = _family_scores(np.random.default_rng(12), n_rep=3)
    sub = family_pvalues(ds, ("layer",), method="fwer", target=["t0", "t2"])
    assert sub.dims == ("feature_set", "layer", "element", "target") and list(sub["target"].values) == ["t0", "t2"]
    ref = fwer_maxstat(ds["r_mean"].values, ds["null"].values, family_axes=(1,))[..., [0, 2]]
    np.testing.assert_allclose(sub.values, ref)
    with pytest.raises(Exception, match=r"family: \['band'\] are not dims"):
        family_pvalues(ds, ("band",))
