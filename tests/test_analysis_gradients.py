"""Gradient alignment under spatial nulls: planted alignment recovered, nulls at ~5 %, bad maps refused.

Maps are smooth isotropic random fields on a Fibonacci sphere (a rotation of
such a field has the field's distribution, so the spin test is exact there),
plus one check on the real conte69 sphere and HCP gradient from brainspace.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from xaffect.analysis.gradients import (align_with_gradient, fit_moran, load_conte69_sphere, load_hcp_gradient,
                                        load_schaefer_parcels, make_spins, parcel_weights, parcellate,
                                        spatial_correlation)
from xaffect.errors import ConfigError, InputError


def fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    polar, azimuth = np.arccos(1 - 2 * i / n), np.pi * (1 + 5 ** 0.5) * i
    return np.c_[np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)]


SPHERE = fibonacci_sphere(400)
KERNEL = np.exp(8.0 * (SPHERE @ SPHERE.T - 1.0))   # von Mises-Fisher smoothing, ~20 deg


def smooth_field(rng, kernel=KERNEL):
    f = kernel @ rng.standard_normal(kernel.shape[0])
    return (f - f.mean()) / f.std()


def vertex_map(values, name="map"):
    return xr.DataArray(values, dims=("vertex",), coords={"vertex": np.arange(len(values))}, name=name)


@pytest.fixture(scope="module")
def spins():
    return make_spins(SPHERE, n_rotations=99, seed=1)


def test_spin_recovers_planted_alignment(spins):
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(10):
        gradient = smooth_field(rng)
        layer = np.round(4 + 3 * gradient + 3 * smooth_field(rng))        # discrete like a best-layer map
        ds = align_with_gradient(vertex_map(layer), vertex_map(gradient), spins=spins)
        assert ds["r"] > 0.3
        hits += ds["p"].item() < 0.05
    assert hits >= 8


def test_spin_null_is_calibrated_where_plain_permutation_is_not(spins):
    rng = np.random.default_rng(1)
    n, spin_hits, perm_hits = 150, 0, 0
    for k in range(n):
        a, b = smooth_field(rng), smooth_field(rng)
        ds = align_with_gradient(vertex_map(a), vertex_map(b), spins=spins)
        spin_hits += ds["p"].item() < 0.05
        if k < 50:
            permuted = spatial_correlation(np.array([rng.permutation(a) for _ in range(99)]), b)
            perm_hits += (1 + np.sum(np.abs(permuted) >= abs(ds["r"].item()))) / 100 < 0.05
    # 5 % nominal: 99.9 % binomial upper bound for 150 draws
    assert spin_hits <= stats.binom.ppf(0.999, n, 0.05)
    assert perm_hits / 50 > 0.3       # the plain permutation the module refuses


def test_noise_structure_control_removes_a_shared_noise_map(spins):
    rng = np.random.default_rng(2)
    noise = smooth_field(rng)
    layer, gradient = noise + 0.3 * smooth_field(rng), noise + 0.3 * smooth_field(rng)
    ds = align_with_gradient(vertex_map(layer), vertex_map(gradient), spins=spins,
                             covariate=vertex_map(noise, "tsnr"))
    assert ds["p"] < 0.05 and ds["r"] > 0.8
    assert abs(ds["r_partial"]) < ds["r"] / 2
    # a genuine alignment survives the control
    gradient = smooth_field(rng)
    layer = gradient + noise + 0.5 * smooth_field(rng)
    ds = align_with_gradient(vertex_map(layer), vertex_map(gradient), spins=spins,
                             covariate=vertex_map(noise, "tsnr"))
    assert ds["p_partial"] < 0.05 and ds["r_partial"] > 0.5


def test_partial_null_is_calibrated(spins):
    rng = np.random.default_rng(3)
    n, hits = 150, 0
    for _ in range(n):
        noise = smooth_field(rng)
        layer, gradient = noise + 0.5 * smooth_field(rng), noise + 0.5 * smooth_field(rng)
        ds = align_with_gradient(vertex_map(layer), vertex_map(gradient), spins=spins,
                                 covariate=vertex_map(noise), method="pearson")
        hits += ds["p_partial"].item() < 0.05
    assert hits <= stats.binom.ppf(0.999, n, 0.05)


def test_moran_null_for_parcel_maps():
    rng = np.random.default_rng(4)
    centroids = fibonacci_sphere(100)
    kernel = np.exp(8.0 * (centroids @ centroids.T - 1.0))
    weights = fit_moran(parcel_weights(centroids))
    names = [f"parcel{i}" for i in range(100)]

    def parcel_map(v):
        return xr.DataArray(v, dims=("region",), coords={"region": names})

    gradient = smooth_field(rng, kernel)
    ds = align_with_gradient(parcel_map(gradient + 0.7 * smooth_field(rng, kernel)), parcel_map(gradient),
                             null="moran", weights=weights, n_null=99)
    assert ds["p"] < 0.05 and ds["r"] > 0.5
    n, hits = 60, 0
    for k in range(n):
        ds = align_with_gradient(parcel_map(smooth_field(rng, kernel)), parcel_map(smooth_field(rng, kernel)),
                                 null="moran", weights=weights, n_null=99, seed=k)
        hits += ds["p"].item() < 0.05
    assert hits <= stats.binom.ppf(0.999, n, 0.05)
    # parcels given in another order are matched by name
    shuffled = parcel_map(gradient).isel(region=rng.permutation(100))
    ds2 = align_with_gradient(parcel_map(gradient), shuffled, null="moran", weights=weights, n_null=9)
    assert ds2["r"] == pytest.approx(1.0)


def test_real_hcp_gradient_on_the_conte69_sphere():
    g1 = load_hcp_gradient("lh")
    sphere = load_conte69_sphere("lh")
    assert g1.sizes["vertex"] == sphere.shape[0] == 32492 and np.isnan(g1).any()   # medial wall
    keep = np.arange(0, 32492, 40)                              # ~800 vertices keep the test fast
    g, sph = g1.isel(vertex=keep), sphere[keep]
    rng = np.random.default_rng(5)
    layer = np.digitize(g.values, np.nanquantile(g.values, np.linspace(0, 1, 24)[1:-1])).astype(float)
    layer = layer + rng.normal(0, 4, layer.size)
    layer[np.isnan(g.values)] = np.nan
    ds = align_with_gradient(g.copy(data=layer), g, sphere=sph, n_null=99, seed=0)
    assert ds["r"] > 0.5 and ds["p"] < 0.05
    assert ds.attrs["gradient"] == "conte69_32k_fc_gradient0"


def test_real_gradient_on_schaefer_parcels_with_moran():
    parcels = load_schaefer_parcels(200, "lh")
    g1 = parcellate(load_hcp_gradient("lh"), parcels)
    assert g1.sizes["region"] == 100 and np.isfinite(g1).all() and str(g1.region.values[0]) == "schaefer200_lh_001"
    moran = fit_moran(parcel_weights(parcels["centroid"].values))
    rng = np.random.default_rng(6)
    z = (g1 - g1.mean()) / g1.std()
    layer = np.round(12 + 4 * z + rng.normal(0, 4, z.size))              # best layer 1..23-like
    ds = align_with_gradient(layer, g1, null="moran", weights=moran, n_null=199)
    assert ds["r"] > 0.4 and ds["p"] < 0.05
    with pytest.raises(InputError, match="weights: made for 100 parcels but the layer map has 99"):
        align_with_gradient(layer.isel(region=slice(1, None)), g1.isel(region=slice(1, None)), null="moran",
                            weights=moran)


def test_bad_maps_are_refused(spins):
    a = vertex_map(np.zeros(400))
    with pytest.raises(InputError, match="gradient map G1: 300 entries along 'vertex' but the layer map has 400"):
        align_with_gradient(a, xr.DataArray(np.zeros(300), dims="vertex", name="G1"), spins=spins)
    regions = xr.DataArray(np.arange(3.0), dims="region", coords={"region": ["A", "B", "C"]})
    other = xr.DataArray(np.arange(3.0), dims="region", coords={"region": ["A", "B", "D"]}, name="G1")
    with pytest.raises(InputError, match=r"gradient map G1: its 'region' labels do not match.*\['C'\].*\['D'\]"):
        align_with_gradient(regions, other, null="moran", weights=np.ones((3, 3)))
    with pytest.raises(InputError, match="expected dimension"):
        align_with_gradient(a, xr.DataArray(np.zeros(400), dims="parcel"), spins=spins)
    with pytest.raises(InputError, match="sphere: 300 vertices but the layer map has 400"):
        align_with_gradient(a, a, sphere=SPHERE[:300])
    with pytest.raises(InputError, match="covariate map"):
        align_with_gradient(a, a, spins=spins, covariate=xr.DataArray(np.zeros(10), dims="vertex"))
    with pytest.raises(ConfigError, match="plain permutation"):
        align_with_gradient(a, a, null="permutation")
    with pytest.raises(InputError, match="every parcel"):
        align_with_gradient(regions.where(regions > 0), regions, null="moran", weights=np.ones((3, 3)))


def test_fast_spin_spearman_equals_scipy_per_rotation(spins):
    from xaffect.analysis.gradients import _spin_spearman

    rng = np.random.default_rng(7)
    layer = np.round(3 * smooth_field(rng)).astype(float)             # many ties, like a best-layer map
    gradient = smooth_field(rng)
    layer[:40], gradient[200:230] = np.nan, np.nan                      # missing entries move with the spin
    fast = _spin_spearman(layer, gradient, spins[:20])
    for k in range(20):
        m = layer[spins[k]]
        ok = np.isfinite(m) & np.isfinite(gradient)
        assert fast[k] == pytest.approx(stats.spearmanr(m[ok], gradient[ok])[0], abs=1e-12)
