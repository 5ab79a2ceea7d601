"""Alignment of a layer map with a cortical gradient, under a spatial null.

The seed study compares its best/centroid-layer map with the principal
gradient of resting-state connectivity (Margulies et al. 2016, PNAS 113:12574,
"G1") and asks whether the match is "just fMRI noise structure". Neighbouring
vertices and parcels are correlated, so a plain permutation of the map is
badly anti-conservative; the nulls here keep the spatial autocorrelation:

* **spin test** for vertex maps on a sphere (Alexander-Bloch et al. 2018,
  NeuroImage 178:540): the map is rotated rigidly on the sphere, with
  brainspace's :class:`~brainspace.null_models.SpinPermutations`;
* **Moran spectral randomisation** for parcel maps (Wagner & Dray 2015,
  Methods Ecol. Evol. 6:1169), with brainspace's
  :class:`~brainspace.null_models.MoranRandomization` on a weight matrix
  between parcels (inverse distance of their centroids, :func:`parcel_weights`).

The noise-structure control is the partial correlation of the layer map with
the gradient given a noise map (noise ceiling, tSNR). Its null follows
Freedman & Lane (1984): the layer map's residual on the noise map is spun (or
Moran-randomised) and added back to the fitted part, so the null keeps the
part of the layer map the noise map explains.

Layering: :func:`spatial_correlation` (kernel, many null maps at once),
:func:`make_spins` / :func:`make_moran_surrogates` (brainspace), and
:func:`align_with_gradient` (xarray in, :class:`xarray.Dataset` out).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats

from ..errors import ConfigError, InputError

__all__ = ["spatial_correlation", "make_spins", "fit_moran", "make_moran_surrogates", "parcel_weights",
           "load_hcp_gradient", "load_conte69_sphere", "load_schaefer_parcels", "parcellate", "align_with_gradient", "ALIGNMENT_METHODS"]

ALIGNMENT_METHODS = ("spearman", "pearson")
_BATCH = 100  # null maps per batch: 100 x 32k float64 = 26 MB


def _rank(x: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis, NaN kept NaN."""
    return stats.rankdata(x, axis=-1, nan_policy="omit")


def _residualise(x: np.ndarray, z: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Residuals of each row of ``x`` on ``[1, z]`` over the entries ``ok`` (NaN elsewhere).

    Closed-form simple regression per row, vectorised over rows (``x, z, ok`` of shape (n_maps, n_points)).
    """
    x, z = np.where(ok, x, np.nan), np.where(ok, z, np.nan)
    xc = x - np.nanmean(x, axis=-1, keepdims=True)
    zc = z - np.nanmean(z, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.nansum(xc * zc, -1, keepdims=True) / np.nansum(zc * zc, -1, keepdims=True)
    return xc - slope * zc


def spatial_correlation(x: np.ndarray, y: np.ndarray, *, covariate: np.ndarray | None = None,
                        method: str = "spearman") -> np.ndarray:
    """Correlation of each map in ``x`` with ``y``, over the entries where both are finite.

    Parameters
    ----------
    x : array of shape (n_maps, n_points) or (n_points,)
        Maps (e.g. a layer map and its spun copies); NaN marks missing
        entries (medial wall, a spin landing on it).
    y : array of shape (n_points,)
        The reference map (the gradient).
    covariate : array of shape (n_points,) or (n_maps, n_points), optional
        A map partialled out of both (noise ceiling, tSNR).
    method : {"spearman", "pearson"}
        Spearman ranks over the entries used by each map.

    Returns
    -------
    array of shape (n_maps,) (a float for 1-D ``x``)
    """
    if method not in ALIGNMENT_METHODS:
        raise ConfigError(f"method: must be one of {ALIGNMENT_METHODS}, got {method!r}")
    one = np.ndim(x) == 1
    x = np.atleast_2d(np.asarray(x, dtype=float))
    y = np.broadcast_to(np.asarray(y, dtype=float), x.shape)
    ok = np.isfinite(x) & np.isfinite(y)
    if covariate is not None:
        z = np.broadcast_to(np.asarray(covariate, dtype=float), x.shape)
        ok &= np.isfinite(z)
    x, y = np.where(ok, x, np.nan), np.where(ok, y, np.nan)
    if method == "spearman":
        x, y = _rank(x), _rank(y)
        if covariate is not None:
            z = _rank(np.where(ok, z, np.nan))
    if covariate is not None:
        x, y = _residualise(x, z, ok), _residualise(y, z, ok)
    n = ok.sum(1)
    xc = np.where(ok, x - np.nanmean(x, 1, keepdims=True), 0.0)
    yc = np.where(ok, y - np.nanmean(y, 1, keepdims=True), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(1) / np.sqrt((xc ** 2).sum(1) * (yc ** 2).sum(1))
    r[n < 3] = np.nan
    return float(r[0]) if one else r


def _masked_ranks(codes: np.ndarray, mask: np.ndarray, n_codes: int) -> np.ndarray:
    """Average ranks of coded values among the entries ``mask`` of each row (NaN elsewhere).

    ``codes (n_maps, n_points)`` are dense codes of the values (``np.unique``'s
    inverse, so code order is value order). A rank is then a count: per row,
    a histogram of the codes in the mask and its cumulative sum give every
    value's average rank, ties included, in O(n_points) without a sort. The
    spin test needs this because every rotation leaves a different set of
    vertices defined (the medial wall moves); re-sorting each null map is
    what makes a per-rotation ``spearmanr`` loop slow.
    """
    rows = np.arange(codes.shape[0])[:, None]
    flat = (rows * n_codes + codes)[mask]
    counts = np.bincount(flat, minlength=codes.shape[0] * n_codes).reshape(codes.shape[0], n_codes)
    below = np.cumsum(counts, axis=1) - counts
    avg = below + (counts + 1) / 2.0
    return np.where(mask, avg[np.broadcast_to(rows, codes.shape), codes], np.nan)


def _spin_spearman(x: np.ndarray, g: np.ndarray, spins: np.ndarray) -> np.ndarray:
    """Spearman correlation of every spun copy ``x[spins[k]]`` with ``g``, exact, by :func:`_masked_ranks`."""
    fx, fg = np.isfinite(x), np.isfinite(g)
    ux, cx = np.unique(np.where(fx, x, np.inf), return_inverse=True)
    ug, cg = np.unique(np.where(fg, g, np.inf), return_inverse=True)
    out = []
    for a in range(0, spins.shape[0], _BATCH):
        sp = spins[a:a + _BATCH]
        mask = fx[sp] & fg[None, :]
        rx = _masked_ranks(cx[sp], mask, ux.size)
        rg = _masked_ranks(np.broadcast_to(cg, sp.shape), mask, ug.size)
        out.append(_pearson_rows(rx, rg, mask))
    return np.concatenate(out)


def _pearson_rows(x: np.ndarray, y: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching rows over the entries ``ok``."""
    n = ok.sum(1, keepdims=True)
    xc = np.where(ok, x - np.where(ok, x, 0).sum(1, keepdims=True) / n, 0.0)
    yc = np.where(ok, y - np.where(ok, y, 0).sum(1, keepdims=True) / n, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(1) / np.sqrt((xc ** 2).sum(1) * (yc ** 2).sum(1))
    r[n[:, 0] < 3] = np.nan
    return r


def make_spins(sphere: np.ndarray, *, n_rotations: int = 1000, seed: int = 0) -> np.ndarray:
    """Indices of the rotated map for ``n_rotations`` random rotations of a sphere.

    Parameters
    ----------
    sphere : array of shape (n_vertices, 3)
        Vertex coordinates on a sphere centred at 0 (e.g. conte69's, from
        :func:`load_conte69_sphere`).
    n_rotations : int
    seed : int

    Returns
    -------
    int32 array of shape (n_rotations, n_vertices)
        ``x[spins[k]]`` is map ``x`` rotated by rotation ``k`` (nearest vertex).
    """
    from brainspace.null_models import SpinPermutations

    sphere = np.asarray(sphere, dtype=float)
    if sphere.ndim != 2 or sphere.shape[1] != 3:
        raise InputError(f"sphere: expected vertex coordinates of shape (n_vertices, 3), got {sphere.shape}")
    spin = SpinPermutations(n_rep=int(n_rotations), random_state=int(seed)).fit(sphere)
    return spin.spin_lh_.astype(np.int32)          # half the memory of int64; 32k vertices fit easily


def parcel_weights(centroids: np.ndarray) -> np.ndarray:
    """Spatial weights between parcels: inverse Euclidean distance of their centroids, 0 on the diagonal.

    Parameters
    ----------
    centroids : array of shape (n_parcels, 3)

    Returns
    -------
    array of shape (n_parcels, n_parcels)
    """
    from scipy.spatial.distance import cdist

    c = np.asarray(centroids, dtype=float)
    d = cdist(c, c)
    if (d[~np.eye(len(c), dtype=bool)] == 0).any():
        raise InputError("centroids: two parcels share a centroid; spatial weights undefined")
    with np.errstate(divide="ignore"):
        w = 1.0 / d
    np.fill_diagonal(w, 0.0)
    return w


def fit_moran(weights: np.ndarray):
    """Moran eigenvector maps of a parcel weight matrix (brainspace), to reuse across maps.

    Parameters
    ----------
    weights : array of shape (n_parcels, n_parcels)
        Symmetric spatial weights (:func:`parcel_weights`).

    Returns
    -------
    brainspace.null_models.MoranRandomization
        Fitted (``mem_`` of shape (n_parcels, n_components)).
    """
    from brainspace.null_models import MoranRandomization

    w = np.asarray(weights, dtype=float)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or not np.allclose(w, w.T):
        raise InputError(f"weights: expected a symmetric (n_parcels, n_parcels) matrix, got shape {w.shape}")
    return MoranRandomization(procedure="singleton", tol=1e-6).fit(w)


def make_moran_surrogates(x: np.ndarray, weights, *, n: int = 1000, seed: int = 0) -> np.ndarray:
    """Moran spectral randomisation surrogates of a parcel map (brainspace).

    Parameters
    ----------
    x : array of shape (n_parcels,)
        No NaN.
    weights : array of shape (n_parcels, n_parcels) or fitted MoranRandomization
        Spatial weights (:func:`parcel_weights`) or their :func:`fit_moran`.
    n : int
    seed : int

    Returns
    -------
    array of shape (n, n_parcels)
    """
    x = np.asarray(x, dtype=float)
    if not np.isfinite(x).all():
        raise InputError("Moran randomisation needs a map without missing parcels; drop them first")
    msr = weights if hasattr(weights, "mem_") else fit_moran(weights)
    msr.set_params(n_rep=int(n), random_state=int(seed))
    return np.asarray(msr.randomize(x)).reshape(int(n), x.size)


def load_conte69_sphere(hemisphere: str = "lh") -> np.ndarray:
    """The conte69 32k sphere that brainspace ships, array of shape (32492, 3)."""
    from brainspace.datasets import load_conte69
    from brainspace.mesh.mesh_elements import get_points

    if hemisphere not in ("lh", "rh"):
        raise ConfigError(f"hemisphere: must be 'lh' or 'rh', got {hemisphere!r}")
    lh, rh = load_conte69(as_sphere=True)
    return np.asarray(get_points(lh if hemisphere == "lh" else rh))


def load_hcp_gradient(hemisphere: str = "lh", *, component: int = 0) -> xr.DataArray:
    """The HCP functional-connectivity gradient brainspace ships (``conte69_32k_fc_gradient<k>``).

    Component 0 is the principal gradient (Margulies et al. 2016, G1).

    Returns
    -------
    DataArray of shape (vertex: 32492,)
        NaN on the medial wall.
    """
    from brainspace.datasets import load_gradient

    if hemisphere not in ("lh", "rh"):
        raise ConfigError(f"hemisphere: must be 'lh' or 'rh', got {hemisphere!r}")
    lh, rh = load_gradient("fc", idx=int(component), join=False)
    g = np.asarray(lh if hemisphere == "lh" else rh, dtype=float)
    return xr.DataArray(g, dims=("vertex",), coords={"vertex": np.arange(g.size)},
                        name=f"conte69_32k_fc_gradient{component}", attrs={"hemisphere": hemisphere})


def load_schaefer_parcels(n_parcels: int = 400, hemisphere: str = "lh") -> xr.Dataset:
    """A Schaefer parcellation of conte69 32k as brainspace ships it, with parcel centroids on the sphere.

    Parameters
    ----------
    n_parcels : {100, 200, 300, 400}
        Parcels over both hemispheres (half in ``hemisphere``).
    hemisphere : {"lh", "rh"}

    Returns
    -------
    xarray.Dataset
        ``label (vertex)`` (0 on the medial wall) and ``centroid (region, axis)``
        (mean sphere position of the parcel's vertices, for :func:`parcel_weights`);
        regions are named ``schaefer<n>_<hemisphere>_<k>``.
    """
    from brainspace.datasets import load_parcellation

    if n_parcels not in (100, 200, 300, 400):
        raise ConfigError(f"n_parcels: brainspace ships Schaefer 100, 200, 300, 400, got {n_parcels}")
    lh, rh = load_parcellation("schaefer", scale=int(n_parcels), join=False)
    labels = np.asarray(lh if hemisphere == "lh" else rh)
    sphere = load_conte69_sphere(hemisphere)
    ids = np.unique(labels[labels > 0])
    centroid = np.stack([sphere[labels == k].mean(0) for k in ids])
    names = [f"schaefer{n_parcels}_{hemisphere}_{k:03d}" for k in ids]
    return xr.Dataset({"label": ("vertex", labels), "centroid": (("region", "axis"), centroid)},
                      coords={"region": names, "label_id": ("region", ids), "axis": ["x", "y", "z"]})


def parcellate(vertex_map: xr.DataArray, parcels: xr.Dataset) -> xr.DataArray:
    """Mean of a vertex map within each parcel (NaN vertices ignored), brainspace's ``reduce_by_labels``.

    Parameters
    ----------
    vertex_map : DataArray of shape (vertex,)
    parcels : Dataset from :func:`load_schaefer_parcels`

    Returns
    -------
    DataArray of shape (region,)
    """
    from brainspace.utils.parcellation import reduce_by_labels

    if vertex_map.dims != ("vertex",) or vertex_map.sizes["vertex"] != parcels.sizes["vertex"]:
        raise InputError(f"vertex map {vertex_map.name!r}: {dict(vertex_map.sizes)} does not fit a parcellation "
                         f"of {parcels.sizes['vertex']} vertices")
    means = reduce_by_labels(np.asarray(vertex_map.values, float), parcels["label"].values,
                             target_labels=parcels["label_id"].values, red_op=lambda v, w: np.nanmean(v))
    return xr.DataArray(means, dims=("region",), coords={"region": parcels["region"].values},
                        name=vertex_map.name, attrs=dict(vertex_map.attrs))


def _match(layer_map: xr.DataArray, other: xr.DataArray, what: str) -> xr.DataArray:
    """``other`` on the points of ``layer_map`` (same dim, same labels), else a clear error."""
    if layer_map.ndim != 1:
        raise InputError(f"layer map: expected one spatial dimension, got dims {layer_map.dims}")
    dim = layer_map.dims[0]
    if other.dims != (dim,):
        raise InputError(f"{what}: expected dimension ({dim!r},) like the layer map, got {other.dims}")
    if dim in layer_map.coords and dim in other.coords:
        a = np.asarray(layer_map[dim].values).astype(str)
        b = np.asarray(other[dim].values).astype(str)
        missing, extra = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        if missing or extra or a.size != b.size:
            raise InputError(f"{what} {other.name or ''!s}: its {dim!r} labels do not match the layer map's "
                             f"({len(missing)} missing, e.g. {[str(v) for v in missing[:3]]}; {len(extra)} extra, e.g. {[str(v) for v in extra[:3]]}; "
                             f"{b.size} vs {a.size} entries)")
        return other.sel({dim: layer_map[dim].values})
    if other.sizes[dim] != layer_map.sizes[dim]:
        raise InputError(f"{what} {other.name or ''!s}: {other.sizes[dim]} entries along {dim!r} but the "
                         f"layer map has {layer_map.sizes[dim]}")
    return other


def _null_maps(x: np.ndarray, z: np.ndarray | None, *, null: str, spins: np.ndarray | None,
               weights: np.ndarray | None, n_null: int, seed: int, method: str) -> np.ndarray:
    """Null copies of ``x`` (n_null, n_points); with a covariate, Freedman-Lane: fitted + randomised residual."""
    ok = np.isfinite(x) & (np.isfinite(z) if z is not None else True)
    base, fitted = x, np.zeros_like(x)
    if z is not None:
        xs, zs = (_rank(np.where(ok, x, np.nan)), _rank(np.where(ok, z, np.nan))) if method == "spearman" \
            else (np.where(ok, x, np.nan), np.where(ok, z, np.nan))
        resid = _residualise(xs[None], zs[None], ok[None])[0]
        base, fitted = resid, xs - resid
    if null == "spin":
        return fitted + base[spins]
    return fitted + make_moran_surrogates(base, weights, n=n_null, seed=seed)


def align_with_gradient(layer_map: xr.DataArray, gradient: xr.DataArray, *, null: str = "spin",
                        sphere: np.ndarray | None = None, spins: np.ndarray | None = None,
                        weights: np.ndarray | None = None, covariate: xr.DataArray | None = None,
                        n_null: int = 1000, method: str = "spearman", seed: int = 0) -> xr.Dataset:
    """Correlate a best/centroid-layer map with a gradient, with a spatial null.

    Parameters
    ----------
    layer_map : DataArray of shape (point,)
        One value per vertex (``null="spin"``) or parcel (``null="moran"``);
        NaN for points without a value (medial wall, parcels without a layer).
    gradient : DataArray of shape (point,)
        Same dimension and labels as ``layer_map`` (e.g. :func:`load_hcp_gradient`).
    null : {"spin", "moran"}
        Spin test (vertex maps; needs ``sphere`` or ``spins``) or Moran spectral
        randomisation (parcel maps; needs ``weights``, no NaN in the map).
    sphere : array of shape (n_points, 3), optional
        Sphere coordinates of the points, for ``null="spin"``.
    spins : int array of shape (n_null, n_points), optional
        Precomputed :func:`make_spins` (reuse them across maps).
    weights : array of shape (n_points, n_points) or fitted MoranRandomization, optional
        Spatial weights between parcels (:func:`parcel_weights`), or their
        :func:`fit_moran` (reuse it across maps).
    covariate : DataArray of shape (point,), optional
        Noise ceiling / tSNR map partialled out (the "noise structure" control).
    n_null : int
    method : {"spearman", "pearson"}
    seed : int

    Returns
    -------
    xarray.Dataset
        ``r`` (correlation), ``p`` (two-sided, ``(1 + #|null| >= |r|) / (n_null + 1)``),
        ``null (null_map,)``; with a covariate also ``r_partial``, ``p_partial``,
        ``null_partial``. Attrs: ``null``, ``method``, ``n_points``.
    """
    if null not in ("spin", "moran"):
        raise ConfigError(f"null: must be 'spin' or 'moran', got {null!r} (a plain permutation ignores "
                          "spatial autocorrelation)")
    gradient = _match(layer_map, gradient, "gradient map")
    x = np.asarray(layer_map.values, dtype=float)
    g = np.asarray(gradient.values, dtype=float)
    z = None if covariate is None else np.asarray(_match(layer_map, covariate, "covariate map").values, float)
    n_pts = x.size
    if null == "spin":
        if spins is None:
            if sphere is None:
                raise ConfigError("null='spin' needs sphere (n_points, 3) or precomputed spins")
            sphere = np.asarray(sphere)
            if sphere.shape[0] != n_pts:
                raise InputError(f"sphere: {sphere.shape[0]} vertices but the layer map has {n_pts}")
            spins = make_spins(sphere, n_rotations=n_null, seed=seed)
        spins = np.asarray(spins)
        if spins.ndim != 2 or spins.shape[1] != n_pts:
            raise InputError(f"spins: shape {spins.shape} does not fit a map of {n_pts} points")
        n_null = spins.shape[0]
    else:
        if weights is None:
            raise ConfigError("null='moran' needs weights (n_parcels, n_parcels), e.g. parcel_weights(centroids)")
        n_w = weights.mem_.shape[0] if hasattr(weights, "mem_") else np.shape(weights)[0]
        if n_w != n_pts:
            raise InputError(f"weights: made for {n_w} parcels but the layer map has {n_pts}")
        if not (np.isfinite(x).all() and np.isfinite(g).all()):
            raise InputError("null='moran': the layer map and the gradient must have a value in every parcel")
    out = {}
    for tag, cov in (("", None),) + ((("_partial", z),) if z is not None else ()):
        r = spatial_correlation(x, g, covariate=cov, method=method)
        nulls = []
        if null == "spin" and cov is None and method == "spearman":
            nulls.append(_spin_spearman(x, g, spins))                  # fast exact path, same values
            n_null_left = 0
        else:
            n_null_left = n_null
        step = _BATCH if null == "spin" else n_null   # Moran: one eigendecomposition for all maps
        for a in range(0, n_null_left, step):
            b = min(n_null, a + step)
            sub = spins[a:b] if null == "spin" else None
            maps = _null_maps(x, cov, null=null, spins=sub, weights=weights, n_null=b - a, seed=seed + a,
                              method=method)
            nulls.append(spatial_correlation(maps, g, covariate=cov, method=method))
        nd = np.concatenate(nulls)
        p = (1 + np.sum(np.abs(nd) >= abs(r) - 1e-12)) / (nd.size + 1)
        out[f"r{tag}"] = xr.DataArray(r)
        out[f"p{tag}"] = xr.DataArray(p)
        out[f"null{tag}"] = xr.DataArray(nd, dims=("null_map",))
    ds = xr.Dataset(out)
    ds.attrs.update(null=null, method=method, n_points=int(n_pts), n_null=int(n_null),
                    gradient=str(gradient.name or ""), covariate=str(getattr(covariate, "name", "") or ""))
    return ds
