"""Per-layer PCA against scikit-learn, lazily over a dask cube."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from sklearn.decomposition import PCA

from xaffect.errors import InputError
from xaffect.features import apply_pca, fit_pca, reduce_layers


def test_fit_pca_matches_sklearn():
    rs = np.random.RandomState(0)
    X = rs.randn(200, 6) @ rs.randn(6, 40) + 0.1 * rs.randn(200, 40)
    mean, comps, var, ratio = fit_pca(X, 5)
    ref = PCA(5, svd_solver="full").fit(X)
    np.testing.assert_allclose(var, ref.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(ratio, ref.explained_variance_ratio_, rtol=1e-8)
    np.testing.assert_allclose(np.abs(comps @ ref.components_.T), np.eye(5), atol=1e-8)
    np.testing.assert_allclose(np.abs(apply_pca(X, mean, comps)), np.abs(ref.transform(X)), atol=1e-8)
    assert fit_pca(X, 6)[3].sum() > 0.99  # six planted directions hold nearly all variance


def _cube(rs, ne=3, nt=60, nl=4, nu=20):
    data = rs.randn(ne, nt, nl, nu).astype(np.float32)
    data[:, :, 2, 8:] = np.nan  # a narrower layer, NaN-padded
    # a planted shared direction in layer 1
    latent = rs.randn(ne, nt)
    data[:, :, 1, :] += 10 * latent[..., None] * np.linspace(1, 2, nu)
    arr = da.from_array(data, chunks=(1, 30, 1, nu))
    return xr.DataArray(arr, dims=("element", "time", "layer", "unit"),
                        coords={"element": ["original", "voice", "soundtrack"], "layer": np.arange(nl),
                                "onset": ("time", np.arange(nt) + 0.5)}), data, latent


def test_reduce_layers_per_element_and_joint():
    rs = np.random.RandomState(1)
    cube, data, latent = _cube(rs)
    red = reduce_layers(cube, n_components=5, progress=False)
    assert red["activation"].dims == ("element", "time", "layer", "component")
    assert red["activation"].shape == (3, 60, 4, 5)
    assert red["explained_variance_ratio"].dims == ("element", "layer", "component")
    for e in range(3):
        ref = PCA(5, svd_solver="full").fit(data[e, :, 0])
        np.testing.assert_allclose(red["explained_variance_ratio"].values[e, 0], ref.explained_variance_ratio_,
                                   rtol=1e-5)
        ref2 = PCA(5, svd_solver="full").fit(data[e, :, 2, :8])  # padding left out
        np.testing.assert_allclose(np.abs(red["activation"].values[e, :, 2]), np.abs(ref2.transform(data[e, :, 2, :8])),
                                   rtol=1e-4, atol=1e-4)
        # the planted direction is component 0 of layer 1
        assert abs(np.corrcoef(red["activation"].values[e, :, 1, 0], latent[e])[0, 1]) > 0.99
    joint = reduce_layers(cube, n_components=5, joint=True, progress=False)
    assert joint["explained_variance_ratio"].dims == ("layer", "component")
    stacked = data[:, :, 3].reshape(-1, 20)
    ref = PCA(5, svd_solver="full").fit(stacked)
    np.testing.assert_allclose(np.abs(joint["activation"].values[:, :, 3].reshape(-1, 5)),
                               np.abs(ref.transform(stacked)), rtol=1e-4, atol=1e-4)


def test_more_components_than_rank_are_nan_and_bad_input():
    rs = np.random.RandomState(2)
    cube, _, _ = _cube(rs)
    red = reduce_layers(cube, n_components=12, progress=False)
    assert np.isnan(red["activation"].values[:, :, 2, 8:]).all()  # layer 2 has 8 units
    assert np.isfinite(red["activation"].values[:, :, 2, :8]).all()
    with pytest.raises(InputError, match="n_components"):
        reduce_layers(cube, n_components=0)
    with pytest.raises(InputError, match="lacks dims"):
        reduce_layers(cube.isel(element=0), n_components=2)


def test_randomized_solver_matches_the_exact_one_on_a_layer_like_spectrum():
    from scipy.linalg import subspace_angles

    rs = np.random.RandomState(2)
    n, p = 520, 120                                                  # > 500 rows: 'auto' is randomized
    X = (rs.randn(n, p) * np.arange(1, p + 1) ** -1.0) @ np.linalg.qr(rs.randn(p, p))[0]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):                                # tiny products: threads only contend
        _, c_auto, _, r_auto = fit_pca(X, 12)                       # auto -> randomized at this size
        _, c_full, _, r_full = fit_pca(X, 12, svd_solver="full")
    assert np.degrees(subspace_angles(c_full.T, c_auto.T)).max() < 0.1               # measured 0.056 deg
    np.testing.assert_allclose(r_auto, r_full, rtol=1e-5)
    np.testing.assert_allclose(np.abs(np.sum(c_auto * c_full, 1)), 1.0, atol=1e-5)
    assert (c_auto[np.arange(12), np.abs(c_auto).argmax(1)] > 0).all()   # sign convention kept
