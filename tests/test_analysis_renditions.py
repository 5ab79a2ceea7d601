"""Renditions: layers where two versions of a piece share their representation are found
(closer than time-shifted copies), the time-shift null stays at ~5 %, bad input is refused."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr
from scipy import signal, stats

from xaffect.analysis.renditions import plot_rendition_distance, rendition_distance, window_distance
from xaffect.errors import ConfigError, InputError


def smooth(rng, n, layers, units, phi=0.8):
    return signal.lfilter([1.0], [1.0, -phi], rng.standard_normal((n + 50, layers, units)), axis=0)[50:]


def cube(values, name):
    return xr.DataArray(values, dims=("time", "layer", "unit"), name=name, attrs={"clock_rate": 1.0},
                        coords={"layer": np.arange(1, values.shape[1] + 1)})


def linear_cka(x, y):
    """Textbook feature-space formula (Kornblith et al. 2019, eq. 4), the reference for the Gram-space kernel."""
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def test_kernel_matches_textbook_cka_and_correlation():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((30, 2, 7)), rng.standard_normal((30, 2, 7))
    d = window_distance(a, b, window=10)
    assert d.shape == (2, 3)
    assert d[1, 2] == pytest.approx(1 - linear_cka(a[20:30, 1], b[20:30, 1]))
    c = window_distance(a, b, window=10, measure="correlation")
    wa, wb = a[10:20, 0] - a[10:20, 0].mean(0), b[10:20, 0] - b[10:20, 0].mean(0)
    assert c[0, 1] == pytest.approx(1 - np.corrcoef(wa.ravel(), wb.ravel())[0, 1])
    assert window_distance(a, a, window=10).max() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("measure", ["cka", "correlation"])
def test_planted_layer_similarity_is_recovered(measure):
    rng = np.random.default_rng(1)
    n, layers, units = 300, 5, 6
    expressive = smooth(rng, n, layers, units)
    # mechanical rendition: shares early layers, diverges with depth, the last layer unrelated
    mix = np.array([0.9, 0.7, 0.5, 0.3, 0.0])[None, :, None]
    mechanical = mix * expressive + np.sqrt(1 - mix ** 2) * smooth(rng, n, layers, units)
    ds = rendition_distance(cube(expressive, "expressive"), cube(mechanical, "mechanical"), window=20,
                            measure=measure, n_null=199)
    d = ds.distance.values
    assert d[0] < d[1] < d[2] < d[4]                                 # distance grows with depth
    assert (ds.p_fwer.sel(layer=[1, 2, 3]) < 0.05).all()
    assert ds.p.sel(layer=5) > 0.05 and 0.8 < float(ds.relative.sel(layer=5)) < 1.2
    fig = plot_rendition_distance(ds)
    assert fig.axes[0].get_xlabel() == "layer"


def test_time_shift_null_is_calibrated():
    rng = np.random.default_rng(2)
    n_rep, hits, hits_fwer = 80, 0, 0
    for k in range(n_rep):
        a, b = smooth(rng, 120, 3, 6), smooth(rng, 120, 3, 6)
        ds = rendition_distance(cube(a, "a"), cube(b, "b"), window=8, n_null=99, seed=k)
        hits += ds.p.values[0] < 0.05
        hits_fwer += ds.p_fwer.min().item() < 0.05
    assert stats.binom.ppf(0.001, n_rep, 0.05) <= hits <= stats.binom.ppf(0.999, n_rep, 0.05)
    assert hits_fwer <= stats.binom.ppf(0.999, n_rep, 0.05)


def test_bad_input_is_refused():
    rng = np.random.default_rng(3)
    a = cube(rng.standard_normal((60, 2, 4)), "expressive")
    with pytest.raises(InputError, match="'expressive' and 'mechanical' are not on aligned time"):
        rendition_distance(a, cube(rng.standard_normal((50, 2, 4)), "mechanical"))
    with pytest.raises(InputError, match="different units"):
        rendition_distance(a, cube(rng.standard_normal((60, 2, 5)), "mechanical"))
    with pytest.raises(InputError, match="shorter than three windows"):
        rendition_distance(a, a.rename("b"), window=25)
    with pytest.raises(ConfigError, match="whole clock steps"):
        rendition_distance(a, a.rename("b"), window=2.5)
    with pytest.raises(ConfigError, match="measure"):
        rendition_distance(a, a.rename("b"), measure="rsa")
    with pytest.raises(InputError, match="expected dims"):
        rendition_distance(a.isel(layer=0), a.isel(layer=0))


def test_dtw_alignment_undoes_a_tempo_change():
    from scipy.interpolate import interp1d

    from xaffect.analysis.renditions import align_renditions

    rng = np.random.default_rng(4)
    n, layers, units = 240, 3, 6
    expressive = smooth(rng, n, layers, units, phi=0.9)
    # mechanical: the same music at a steady tempo, i.e. expressive time warped (n -> 200 steps)
    warp = np.cumsum(1 + 0.5 * np.sin(np.linspace(0, 3 * np.pi, 200)))
    warp = (warp - warp[0]) / (warp[-1] - warp[0]) * (n - 1)
    mechanical = interp1d(np.arange(n), expressive, axis=0)(warp) + 0.1 * rng.standard_normal((200, layers, units))
    a, b = cube(expressive, "expressive"), cube(mechanical, "mechanical")
    guide_a, guide_b = expressive[:, 0], mechanical[:, 0]                 # an outside guide (like chroma)
    aligned = align_renditions(a, b, guide_a=guide_a, guide_b=guide_b)
    assert aligned.sizes == a.sizes and aligned.name == "mechanical"
    ds = rendition_distance(a, aligned, window=20, n_null=99)
    assert (ds.p_fwer < 0.05).all() and (ds.relative < 0.5).all()
    cropped = rendition_distance(a.isel(time=slice(0, 200)), b, window=20, n_null=99)    # unaligned
    assert (ds.distance < cropped.distance).all()
    with pytest.raises(InputError, match="guides: shapes"):
        align_renditions(a, b, guide_a=guide_a[:10], guide_b=guide_b)
