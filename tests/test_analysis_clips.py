"""Clip-level labels per layer: a planted layer is found with an honest p, the permutation null
stays at ~5 %, and unusable labels are refused."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from sklearn.metrics import balanced_accuracy_score

from xaffect.analysis.clips import _balanced_accuracy, clip_label_profile, plot_clip_profile, pool_clips
from xaffect.errors import ConfigError, InputError

QUADRANTS = ["Q1", "Q2", "Q3", "Q4"]


def feature_cube(rng, labels, *, n_layers=5, n_units=8, steps=6, planted_layer=3, strength=1.0, centroids=None):
    """activation (element, time, layer, unit) on the clock; the planted layer's clip means carry the class."""
    n_clips = len(labels)
    if centroids is None:
        centroids = rng.standard_normal((len(QUADRANTS), n_units))
    values = rng.standard_normal((n_clips, steps, n_layers, n_units))
    for c, lab in enumerate(labels):
        values[c, :, planted_layer] += strength * centroids[QUADRANTS.index(lab)]
    clips = [f"clip{c:03d}" for c in range(n_clips)]
    return xr.DataArray(values.reshape(1, n_clips * steps, n_layers, n_units),
                        dims=("element", "time", "layer", "unit"), name="activation",
                        coords={"element": ["original"], "layer": np.arange(1, n_layers + 1),
                                "stimulus": ("time", np.repeat(clips, steps)),
                                "onset": ("time", np.tile(np.arange(steps) + 0.5, n_clips))}), clips


def test_pool_clips_is_a_per_clip_mean_and_std():
    rng = np.random.default_rng(0)
    cube, clips = feature_cube(rng, QUADRANTS * 2)
    pooled = pool_clips(cube, how=("mean", "std"))
    assert pooled.dims == ("stimulus", "layer", "feature") and pooled.sizes["feature"] == 16
    first = cube.isel(element=0, time=slice(0, 6), layer=2).values
    np.testing.assert_allclose(pooled.sel(stimulus="clip000").isel(layer=2).values[:8], first.mean(0))
    np.testing.assert_allclose(pooled.sel(stimulus="clip000").isel(layer=2).values[8:], first.std(0))
    lld = cube.isel(layer=0).rename(unit="descriptor").drop_vars("layer")
    assert pool_clips(lld, element="original").dims == ("stimulus", "feature")
    with pytest.raises(InputError, match="element: 'voice' not in features"):
        pool_clips(cube, element="voice")


def test_vectorised_balanced_accuracy_matches_scikit_learn():
    rng = np.random.default_rng(9)
    truth, pred = rng.integers(0, 4, (30, 5)), rng.integers(0, 4, (30, 5))
    truth[:, 0] = np.where(truth[:, 0] == 3, 2, truth[:, 0])             # a class absent from one column
    with pytest.warns(UserWarning, match="classes not in y_true"):              # column 0, as intended
        expected = [balanced_accuracy_score(truth[:, j], pred[:, j]) for j in range(5)]
    np.testing.assert_allclose(_balanced_accuracy(truth, pred, 4), expected)


def test_planted_layer_is_recovered_against_classical_descriptors():
    rng = np.random.default_rng(1)
    labels = [QUADRANTS[i % 4] for i in range(48)]
    cube, clips = feature_cube(rng, labels, strength=1.2)
    classical = xr.DataArray(rng.standard_normal((48, 6)), dims=("stimulus", "feature"),
                             coords={"stimulus": clips}, name="lld")
    y = xr.DataArray(labels, dims="stimulus", coords={"stimulus": clips}, name="quadrant")
    ds = clip_label_profile(pool_clips(cube), y, classical=classical, n_permutations=99, seed=0)
    assert int(ds.best_layer) == 4 and ds.p_best <= 0.02                 # layer coordinate 4 = index 3
    assert ds.score.sel(layer=4) > 0.6 and ds.attrs["chance"] == 0.25
    assert (ds.p_fwer.drop_sel(layer=4) > 0.05).all()
    assert ds.classical_p > 0.05 and ds.classical_score < ds.best_score
    fig = plot_clip_profile(ds)
    assert fig.axes[0].get_xlabel() == "layer"


def test_grouped_folds_keep_pieces_together_and_values_are_predicted():
    rng = np.random.default_rng(2)
    cube, clips = feature_cube(rng, QUADRANTS * 10, n_layers=3, planted_layer=1)
    pooled = pool_clips(cube)
    valence = xr.DataArray(pooled.isel(layer=1, feature=0).values + 0.3 * rng.standard_normal(40),
                           dims="stimulus", coords={"stimulus": clips}, name="valence")
    pieces = xr.DataArray(np.repeat([f"piece{i}" for i in range(10)], 4), dims="stimulus",
                          coords={"stimulus": clips})
    ds = clip_label_profile(pooled, valence, groups=pieces, n_permutations=19)
    assert ds.attrs["scoring"] == "r2" and ds.attrs["grouped"]
    assert int(ds.best_layer) == 2 and ds.best_score > 0.3 and ds.p_best == pytest.approx(0.05)


def test_permutation_null_is_calibrated():
    rng = np.random.default_rng(3)
    n, hits = 100, 0
    clips = [f"c{i}" for i in range(30)]
    for k in range(n):
        pooled = xr.DataArray(rng.standard_normal((30, 1, 4)), dims=("stimulus", "layer", "feature"),
                              coords={"stimulus": clips, "layer": [1]})
        # autocorrelated across clips (neighbouring clips of one recording), values not classes
        valence = xr.DataArray(np.cumsum(rng.standard_normal(30)), dims="stimulus", coords={"stimulus": clips})
        ds = clip_label_profile(pooled, valence, n_splits=3, n_permutations=19, seed=k)
        hits += ds.p_best.item() <= 0.05
    assert stats.binom.ppf(0.001, n, 0.05) <= hits <= stats.binom.ppf(0.999, n, 0.05)


def test_bad_labels_are_refused():
    rng = np.random.default_rng(4)
    cube, clips = feature_cube(rng, QUADRANTS * 3, n_layers=2, planted_layer=1)
    pooled = pool_clips(cube)
    one = xr.DataArray(["Q1"] * 12, dims="stimulus", coords={"stimulus": clips}, name="quadrant")
    with pytest.raises(InputError, match="labels 'quadrant': only one class"):
        clip_label_profile(pooled, one)
    partial = xr.DataArray(QUADRANTS * 2, dims="stimulus", coords={"stimulus": clips[:8]}, name="quadrant")
    with pytest.raises(InputError, match=r"no label for clip\(s\) \['clip008'"):
        clip_label_profile(pooled, partial)
    few = xr.DataArray(QUADRANTS * 3, dims="stimulus", coords={"stimulus": clips}, name="quadrant")
    with pytest.raises(InputError, match="fewer clips than n_splits=5"):
        clip_label_profile(pooled, few)
    with pytest.raises(ConfigError, match="element: the cube has elements"):
        pool_clips(xr.concat([cube, cube.assign_coords(element=["voice"])], "element"))


def test_best_layer_p_is_family_wise_under_the_null():
    rng = np.random.default_rng(5)
    n, hits_best, hits_naive = 40, 0, 0
    labels = [QUADRANTS[i % 4] for i in range(32)]
    for k in range(n):
        cube, clips = feature_cube(rng, labels, n_layers=4, n_units=4, steps=2, strength=0.0)
        y = xr.DataArray(labels, dims="stimulus", coords={"stimulus": clips})
        ds = clip_label_profile(pool_clips(cube), y, n_splits=4, n_permutations=19, seed=k)
        hits_best += ds.p_best.item() <= 0.05
        hits_naive += ds.p.min().item() <= 0.05                       # best layer read off uncorrected
    assert hits_best <= stats.binom.ppf(0.999, n, 0.05)
    assert hits_naive > hits_best


def _deep_and_classical(rng, n_clips, deep_strength, classical_strength, n_layers=3, planted=1):
    labels = [QUADRANTS[i % 4] for i in range(n_clips)]
    centroids = rng.standard_normal((4, 6))                 # one class signal, shared: equal information
    cube, clips = feature_cube(rng, labels, n_layers=n_layers, n_units=6, steps=1, planted_layer=planted,
                               strength=deep_strength, centroids=centroids)
    lld = rng.standard_normal((n_clips, 6)) + classical_strength * centroids[[QUADRANTS.index(q) for q in labels]]
    classical = xr.DataArray(lld, dims=("stimulus", "feature"), coords={"stimulus": clips}, name="lld")
    return pool_clips(cube), xr.DataArray(labels, dims="stimulus", coords={"stimulus": clips}, name="quadrant"), \
        classical


def test_deep_beats_classical_with_the_layer_chosen_inside():
    from xaffect.analysis.clips import deep_vs_classical_clips

    pooled, y, classical = _deep_and_classical(np.random.default_rng(6), 80, 1.5, 0.2)
    ds = deep_vs_classical_clips(pooled, y, classical, n_splits=4, inner_splits=3, n_repeats=3)
    assert ds.difference > 0.2 and ds.p < 0.01 and ds.deep_wins > ds.classical_wins
    assert ds.ci_low > 0 and ds.fold_difference.dims == ("repeat", "fold") and ds.fold_difference.size == 12
    assert (ds.chosen_layer == 2).all()                               # index 1 = layer coordinate 2
    assert ds.attrs["test_train_ratio"] == pytest.approx(1 / 3) and "Bouckaert" in ds.attrs["test"]


def test_deep_beats_classical_on_values_with_grouped_repeats():
    from xaffect.analysis.clips import deep_vs_classical_clips

    rng = np.random.default_rng(8)
    pooled, _, classical = _deep_and_classical(rng, 48, 0.0, 0.0, n_layers=3)
    valence = xr.DataArray(pooled.isel(layer=2).values @ rng.standard_normal(6) + 0.5 * rng.standard_normal(48),
                           dims="stimulus", coords={"stimulus": pooled["stimulus"].values}, name="valence")
    pieces = xr.DataArray(np.repeat([f"piece{i}" for i in range(12)], 4), dims="stimulus",
                          coords={"stimulus": pooled["stimulus"].values})
    ds = deep_vs_classical_clips(pooled, valence, classical, groups=pieces, n_splits=4, inner_splits=3, n_repeats=3)
    assert ds.attrs["scoring"] == "r2" and ds.p < 0.01 and ds.mean_fold_difference > 0
    assert (ds.chosen_layer == 3).all() and ds.deep_score > 0.5
    # the repeats reshuffle the grouped folds: not three copies of one split
    assert np.unique(ds.fold_difference.values.round(12)).size > 4
    with pytest.raises(ConfigError, match="n_repeats: expected an integer >= 1"):
        deep_vs_classical_clips(pooled, valence, classical, n_repeats=0)


def test_deep_vs_classical_null_is_calibrated():
    """Equally informative layers and descriptors: "deep differs" ~5 % (McNemar on clips gave 8 %)."""
    from xaffect.analysis.clips import deep_vs_classical_clips

    rng = np.random.default_rng(7)
    n, ps = 100, []
    for k in range(n):
        # both deep layers and the descriptors equally informative: whichever layer is chosen, no difference
        pooled, y, classical = _deep_and_classical(rng, 40, 0.6, 0.6, n_layers=2, planted=[0, 1])
        ps.append(deep_vs_classical_clips(pooled, y, classical, n_splits=4, inner_splits=2, n_repeats=3,
                                          alphas=np.logspace(-1, 3, 3), seed=k).p.item())
    hits = int((np.asarray(ps) < 0.05).sum())
    assert hits <= stats.binom.ppf(0.999, n, 0.05), hits
    # the p-values spread over (0, 1) rather than piling at 1 (a test that cannot reject)
    assert np.mean(np.asarray(ps) < 0.5) >= 0.3, np.quantile(ps, [0.1, 0.5, 0.9])
