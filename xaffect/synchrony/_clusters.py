"""Family-wise inference over windows x regions for sliding-window ISC (pure array kernels).

Two corrections over the whole family of (window, region) tests, both from
the same surrogate datasets, with the selection (the largest value, the
largest cluster) made inside every surrogate, as permutation inference over
a search requires (Nichols & Holmes 2002, Hum Brain Mapp 15:1; Maris &
Oostenveld 2007, J Neurosci Methods 164:177):

* **max-statistic**: each (window, region) ISC is standardised against its
  null (mean and standard deviation over the surrogates and the observed
  map, pooled so every map is treated alike); ``p_max`` is the fraction of
  surrogates whose largest standardised value anywhere reaches the observed
  one (single-step, strong FWER control).
* **temporal clusters**: windows whose standardised ISC exceeds the
  cluster-forming threshold ``z > Phi^-1(1 - cluster_alpha)`` form clusters of
  contiguous windows within one stimulus and one region; a cluster's mass is
  the sum of its standardised values; ``p_cluster`` compares it with the
  largest cluster mass anywhere in each surrogate (weak FWER control of the
  cluster claim: "this run of windows holds synchrony", not every window in
  it). Regions have no adjacency here, so clusters are one-dimensional (time),
  as in the seed's "cluster-level P" for time courses.

Written here because MNE's ``permutation_cluster_test`` draws its own sign
flips or label permutations, while ISC needs circularly shifted (or phase
randomised) subjects whose surrogate ISC maps are computed by the caller.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

__all__: list[str] = []


def standardise(observed: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardise observed and surrogate maps by their pooled mean and sd per cell.

    Parameters
    ----------
    observed : array of shape (n_windows, n_regions)
    null : array of shape (n_null, n_windows, n_regions)

    Returns
    -------
    (array of shape (n_windows, n_regions), array of shape (n_null, n_windows, n_regions))
        NaN where a cell is NaN or its pooled sd is 0.
    """
    n_ok = (~np.isnan(null)).sum(axis=0) + ~np.isnan(observed)
    with np.errstate(invalid="ignore", divide="ignore"):
        s1 = np.nansum(null, axis=0, dtype=np.float64) + np.nan_to_num(observed)
        s2 = np.nansum(np.square(null, dtype=np.float64), axis=0) + np.nan_to_num(observed) ** 2
        mean = s1 / n_ok
        sd = np.sqrt(np.maximum(s2 / n_ok - mean ** 2, 0.0) * n_ok / np.maximum(n_ok - 1, 1))
        sd = np.where(sd > 0, sd, np.nan)
        return (observed - mean) / sd, ((null - mean) / sd).astype(np.float32)


def _runs(above: np.ndarray, new_segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label runs of True along windows, per leading index and region.

    Parameters
    ----------
    above : bool array of shape (..., n_windows, n_regions)
    new_segment : bool array of shape (n_windows,)
        True where a stimulus starts (runs never continue across it).

    Returns
    -------
    labels : int array of the shape of ``above``
        0 outside runs; runs numbered 1.. in (leading index, region, window) order.
    n_runs : int array of shape above.shape[:-2]
    """
    prev = np.zeros_like(above)
    prev[..., 1:, :] = above[..., :-1, :]
    prev[..., new_segment, :] = False
    start = np.swapaxes(above & ~prev, -1, -2)  # (..., region, window): runs numbered region by region
    labels = np.cumsum(start.ravel()).reshape(start.shape) * np.swapaxes(above, -1, -2)
    n_runs = start.reshape(start.shape[: -2] + (-1,)).sum(axis=-1)
    return np.swapaxes(labels, -1, -2), n_runs


def window_family_test(observed: np.ndarray, null: np.ndarray, stimulus: np.ndarray, *,
                       cluster_alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Max-statistic and temporal-cluster p-values over windows x regions.

    Parameters
    ----------
    observed : array of shape (n_windows, n_regions)
        ISC of every window (all stimuli concatenated) and region.
    null : array of shape (n_null, n_windows, n_regions)
        The same from each surrogate dataset (draw ``i`` of every stimulus
        forms surrogate dataset ``i``).
    stimulus : array of shape (n_windows,)
        Stimulus of each window; clusters never cross a change of stimulus.
    cluster_alpha : float
        Cluster-forming threshold as a one-sided normal tail probability of
        the standardised ISC.

    Returns
    -------
    dict
        ``z (n_windows, n_regions)`` standardised ISC; ``p_max`` its
        max-statistic p; ``cluster_id`` (int, 0 outside clusters, observed
        clusters numbered from 1 region by region), ``cluster_mass`` and
        ``p_cluster`` of the cluster holding each window (NaN outside);
        ``null_max (n_null,)`` and ``null_max_mass (n_null,)``; and
        ``threshold`` (the cluster-forming z).
    """
    if not 0.0 < cluster_alpha < 0.5:
        raise ValueError(f"cluster_alpha: must be in (0, 0.5), got {cluster_alpha}")
    stim = np.asarray(stimulus).astype(str)
    new_segment = np.r_[True, stim[1:] != stim[:-1]]
    n_null = null.shape[0]
    z, zn = standardise(observed, null)
    thr = float(norm.isf(cluster_alpha))
    # max-statistic over the whole family, one maximum per surrogate
    flat = zn.reshape(n_null, -1)
    with np.errstate(invalid="ignore"):
        null_max = np.where(np.isnan(flat).all(axis=1), -np.inf, np.nanmax(np.where(np.isnan(flat), -np.inf, flat),
                                                                              axis=1))
    ranked = np.sort(null_max)
    ge = n_null - np.searchsorted(ranked, np.nan_to_num(z, nan=np.inf), side="left")
    p_max = np.where(np.isnan(z), np.nan, (1.0 + ge) / (1.0 + n_null))
    # cluster masses: observed clusters and the largest cluster of each surrogate
    with np.errstate(invalid="ignore"):
        above_n = zn > thr
        above = z > thr
    lab_n, runs_n = _runs(above_n, new_segment)
    mass_n = np.bincount(lab_n.ravel(), weights=np.where(above_n, zn, 0.0).ravel(), minlength=runs_n.sum() + 1)[1:]
    null_max_mass = np.zeros(n_null)
    np.maximum.at(null_max_mass, np.repeat(np.arange(n_null), runs_n), mass_n)
    labels, n_obs = _runs(above, new_segment)
    mass = np.bincount(labels.ravel(), weights=np.where(above, z, 0.0).ravel(), minlength=int(n_obs) + 1)
    ranked = np.sort(null_max_mass)
    p_of = (1.0 + n_null - np.searchsorted(ranked, mass, side="left")) / (1.0 + n_null)
    inside = labels > 0
    return {
        "z": z, "p_max": p_max, "cluster_id": labels.astype(np.int32),
        "cluster_mass": np.where(inside, mass[labels], np.nan), "p_cluster": np.where(inside, p_of[labels], np.nan),
        "null_max": null_max, "null_max_mass": null_max_mass, "threshold": thr,
    }
