"""The ``encode`` stage: feature stores + target stores -> the ``scores`` store.

Targets, in the store contract's names:

* ``ratings``: ``targets.rating (time, scale)`` -> ``rating:<scale>``;
* ``synchrony``: ``synchrony.isc (time, region[, band])`` on its window clock
  -> ``isc:<region>[:<band>]`` (features and covariates are averaged over the
  same windows first);
* ``regions``: ``regions/<stimulus>.signal (subject, sample, region)`` ->
  ``region:<region>``: the **subject mean** of each region's signal, put on
  the analysis clock (mean of the samples whose times fall in each bin).

Each target kind is fitted as its own grid (its own clock); ``p_fdr`` and
``p_fwer`` are over the whole search of one kind (feature set x layer x
element x target, named in each variable's ``family`` attr); other families
come from :func:`xaffect.encoding.family_pvalues`. Reduced feature sets
(``features.X.pcaK``) are by default refitted inside each outer fold from
``features.X`` (``pca_fit: train``); ``pca_fit: all`` uses the stored PCA,
fitted on every stimulus as the seed did.
"""

from __future__ import annotations

import re
from typing import Any

import xarray as xr

from ..config import Field, StageSpec
from ..errors import ConfigError, InputError
from ..store.clock import concat_stimuli, frame_times, on_clock, split_stimuli, stimulus_slices
from ._grid import fit_grid
from ._ridge import DEFAULT_ALPHAS

__all__ = ["STAGES", "run_encode", "load_targets"]

TARGET_KINDS = ("ratings", "synchrony", "regions")

CONFIG = {
    "feature_sets": Field((list, None), default=None, item=str,
                          help="feature stores to use (default: every features.* store, reduced ones included)"),
    "elements": Field((list, None), default=None, item=str, help="elements (default: all)"),
    "layers": Field((list, None), default=None, item=int, help="layers (default: all)"),
    "targets": Field(list, default=list(TARGET_KINDS), item=str,
                     help="target kinds: ratings, synchrony, regions (those present by default)"),
    "covariates": Field((str, None), default="auto",
                        help="covariate store ('auto': 'covariates' if present; null: none)"),
    "delays": Field(list, default=[0.0], item=float,
                    help="FIR delays in seconds, built within each stimulus (e.g. [4, 5, 6] for fMRI; need not be "
                         "whole samples: 5 s at TR 2 s is interpolated, see delay_interpolation)"),
    "delay_interpolation": Field(str, default="cubic", choices=("cubic", "linear", "none"),
                                 help="delays that are not whole samples: 'cubic' spline within each stimulus "
                                      "(default; 1.8 % RMS error at 5 s / TR 2 s on HRF-shaped features), 'linear' "
                                      "(8.2 %, never overshoots), 'none' (refuse them)"),
    "alphas": Field((list, None), default=None, item=float, help="ridge penalties (default 1e-5..1e5)"),
    "cv": Field((str, int), default="loso", help="outer folds: 'loso' or a number of contiguous blocks"),
    "gap": Field((int, None), default=None, help="blocked cv: samples dropped each side of the test block"),
    "n_perm": Field(int, default=1000, help="null surrogates (0: none)"),
    "null": Field(str, default="auto", choices=("auto", "stimulus", "shift", "phase"),
                  help="null surrogates: 'stimulus' (targets of another stimulus; calibrated for drifting "
                       "ratings, needs >= 5 stimuli), 'shift'/'phase' within stimulus; 'auto': stimulus if possible"),
    "detrend": Field((str, None), default=None, choices=(None, "linear", "cosine"),
                     help="within-stimulus drift removal of targets, features and covariates before fitting "
                          "(changes the estimand; not a calibration fix for null: shift)"),
    "high_pass": Field((float, None), default=None, help="cut-off in Hz for detrend: cosine (e.g. 0.0078)"),
    "pca_fit": Field(str, default="train", choices=("train", "all"),
                     help="reduced (features.X.pcaK) sets: PCA refitted on the training stimuli of each fold "
                          "('train') or the stored PCA fitted on all stimuli, as the seed did ('all')"),
    "seed": Field(int, default=0, help="seed of the null surrogates"),
    "scoring": Field(str, default="neg_mse", choices=("neg_mse", "r", "r2"), help="inner-CV criterion"),
    "backend": Field(str, default="numpy", choices=("numpy", "torch"), help="array library of the ridge kernels"),
    "device": Field(str, default="cpu", help="'cpu', or 'cuda' / 'cuda:N' with backend: torch"),
    "dtype": Field(str, default="float64", choices=("float64", "float32"),
                   help="precision of the ridge kernels (float32: ~2x faster, scores within float32 round-off)"),
    "n_targets_batch": Field((int, None), default=None,
                             help="targets per batch inside each task (bounds memory for voxelwise grids)"),
}


def _pca_in_folds(ws, fsets: list[str], names: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    """Reduced sets to refit inside the folds: ({set name: components}, {reduced store: full store})."""
    pca, parents = {}, {}
    for n in fsets:
        m = re.fullmatch(r"(features\..+)\.pca(\d+)", n)
        if m and m.group(1) in names:
            pca[n.removeprefix("features.")] = int(m.group(2))
            parents[n] = m.group(1)
        elif m:
            raise InputError(f"encode.pca_fit: 'train' refits {n!r} inside the folds from {m.group(1)!r}, which "
                             "is not in the workspace (use pca_fit: all to use the stored PCA)")
    return pca, parents


def _reorder(obj, order: list[str], what: str):
    parts = split_stimuli(obj)
    missing = [s for s in order if s not in parts]
    if missing:
        raise InputError(f"{what}: no data for stimuli {missing} that the features have")
    return concat_stimuli({s: parts[s] for s in order})


def _ratings(ws) -> xr.DataArray:
    ds = ws.open("targets")
    if "rating" not in ds:
        raise InputError("targets store: no 'rating (time, scale)' variable")
    da = ds["rating"].transpose("time", "scale")
    da = da.assign_coords(scale=[f"rating:{s}" for s in da["scale"].values]).rename(scale="target")
    da.attrs = dict(ds.attrs, **da.attrs)
    return da


def _synchrony(ws) -> xr.DataArray:
    ds = ws.open("synchrony")
    if "isc" not in ds:
        raise InputError("synchrony store: no 'isc (time, region)' variable")
    da = ds["isc"]
    attrs = dict(ds.attrs, **da.attrs)
    if "window" not in attrs or "step" not in attrs:
        raise InputError("synchrony store: 'isc' has no 'window'/'step' attrs (the window clock)")
    if "band" in da.dims:
        da = da.transpose("time", "region", "band")
        names = [f"isc:{r}:{b}" for r in da["region"].values for b in da["band"].values]
        da = xr.DataArray(da.values.reshape(da.sizes["time"], -1), dims=("time", "target"),
                          coords={"target": names, **{k: v for k, v in da.coords.items() if v.dims == ("time",)}})
    else:
        da = da.transpose("time", "region")
        da = da.assign_coords(region=[f"isc:{r}" for r in da["region"].values]).rename(region="target")
    da = da.drop_vars([c for c in da.coords if c not in ("time", "target", "stimulus", "onset")])
    da.attrs = {k: attrs[k] for k in ("window", "step", "clock_rate") if k in attrs}
    return da


def _regions(ws, rate: float, lengths: dict[str, int]) -> xr.DataArray:
    tree = ws.open("regions")
    parts = {}
    for stim, n_bins in lengths.items():
        if f"/{stim}" not in tree.groups:
            raise InputError(f"regions store: no group for stimulus {stim!r}")
        ds = tree[stim].to_dataset()
        sig = ds["signal"]
        sfreq = float(ds.attrs.get("sfreq", sig.attrs.get("sfreq", 0)) or 0)
        if sfreq <= 0:
            raise InputError(f"regions store, stimulus {stim!r}: no 'sfreq' attr")
        mean = sig.mean("subject").transpose("sample", "region").load()
        n = mean.sizes["sample"]
        if n / sfreq * rate < n_bins - 1e-9:
            raise InputError(f"regions store, stimulus {stim!r}: {n / sfreq:.2f} s of signal, shorter than the "
                             f"features' {n_bins / rate:.2f} s")
        times = frame_times(n, hop=1.0 / sfreq)
        parts[stim] = on_clock(mean, rate=rate, duration=n_bins / rate, dim="sample", times=times)
    da = concat_stimuli(parts)
    da = da.assign_coords(region=[f"region:{r}" for r in da["region"].values]).rename(region="target")
    da.attrs = {"clock_rate": float(rate)}
    return da.transpose("time", "target")


def load_targets(ws, kinds, *, rate: float, order: list[str], lengths: dict[str, int],
                 explicit: bool) -> dict[str, xr.DataArray]:
    """Target arrays ``(time, target)`` by kind, in the features' stimulus order."""
    out = {}
    stores = {"ratings": "targets", "synchrony": "synchrony", "regions": "regions"}
    for kind in kinds:
        if kind not in stores:
            raise ConfigError(f"encode.targets: unknown kind {kind!r} (use {', '.join(TARGET_KINDS)})")
        if stores[kind] not in ws:
            if explicit:
                raise InputError(f"encode.targets: {kind!r} asked for but the workspace has no "
                                 f"{stores[kind]!r} store")
            continue
        if kind == "ratings":
            out[kind] = _reorder(_ratings(ws), order, "targets store")
        elif kind == "synchrony":
            da = _synchrony(ws)
            out[kind] = _reorder(da, order, "synchrony store")
            out[kind].attrs.update(da.attrs)
        else:
            out[kind] = _regions(ws, rate, lengths)
    if not out:
        raise InputError("encode: no target stores in the workspace (need targets, synchrony or regions)")
    return out


def run_encode(study, *, force: bool = False, progress: bool = True) -> list[str]:
    """Fit the ridge grid of ``study`` and write the ``scores`` store."""
    cfg = study.section("encode")
    ws = study.workspace
    names = ws.names()
    fsets = cfg["feature_sets"] or [n for n in names if n.startswith("features.") and "/" not in n]
    if not fsets:
        raise InputError("encode: no features.* stores in the workspace (run the features stage first)")
    for n in fsets:
        if n not in names:
            raise ConfigError(f"encode.feature_sets: no store {n!r} (have {[m for m in names if 'features' in m]})")
    cov_name = cfg["covariates"]
    if cov_name == "auto":
        cov_name = "covariates" if "covariates" in names else None
    elif cov_name is not None and cov_name not in names:
        raise ConfigError(f"encode.covariates: no store {cov_name!r}")
    pca, parents = _pca_in_folds(ws, fsets, names) if cfg["pca_fit"] == "train" else ({}, {})
    explicit = "targets" in (study.config.get("encode") or {}) and cfg["targets"] != list(TARGET_KINDS)
    kinds = cfg["targets"]
    target_stores = [s for k, s in (("ratings", "targets"), ("synchrony", "synchrony"), ("regions", "regions"))
                     if k in kinds and s in names]
    inputs = list(fsets) + sorted(set(parents.values())) + target_stores + ([cov_name] if cov_name else [])
    params = {k: v for k, v in cfg.items()}
    params["alphas"] = [float(a) for a in (cfg["alphas"] or DEFAULT_ALPHAS)]
    params["covariates"] = cov_name
    if not force and ws.is_current("scores", stage="encode", params=params, inputs=inputs):
        return ["scores"]

    features = {n.removeprefix("features."): ws.open(parents.get(n, n)) for n in fsets}
    ref = next(iter(features.values()))
    order = list(stimulus_slices(ref))
    lengths = {k: v.stop - v.start for k, v in stimulus_slices(ref).items()}
    rate = float(ref.attrs.get("clock_rate", study.rate))
    targets = load_targets(ws, kinds, rate=rate, order=order, lengths=lengths, explicit=explicit)
    cov = None
    if cov_name:
        cds = ws.open(cov_name)
        if "visual" not in cds:
            raise InputError(f"{cov_name} store: no 'visual (time, descriptor)' variable")
        cov = _reorder(cds["visual"], order, f"{cov_name} store")
        cov.attrs = dict(cds.attrs)
    results, delay_samples = [], {}
    for kind, tg in targets.items():
        ds = fit_grid(features, tg, covariates=cov, delays=cfg["delays"],
                      delay_interpolation=cfg["delay_interpolation"], cv=cfg["cv"], gap=cfg["gap"],
                      alphas=params["alphas"], scoring=cfg["scoring"], n_perm=cfg["n_perm"], null=cfg["null"],
                      detrend=cfg["detrend"], high_pass=cfg["high_pass"], pca=pca, seed=cfg["seed"],
                      elements=cfg["elements"], layers=cfg["layers"], progress=progress, backend=cfg["backend"],
                      device=cfg["device"], dtype=cfg["dtype"], n_targets_batch=cfg["n_targets_batch"])
        ds = ds.assign_coords(target_kind=("target", [kind] * ds.sizes["target"]))
        delay_samples[kind] = ds.attrs["delay_samples"]      # kinds on different clocks differ
        results.append(ds)
    scores = xr.concat(results, dim="target", combine_attrs="drop_conflicts", join="outer")
    scores.attrs["target_kinds"] = list(targets)
    scores.attrs["delay_samples_by_kind"] = delay_samples
    scores.attrs["region_targets"] = "subject mean of each region's signal on the analysis clock"
    ws.write("scores", scores, stage="encode", params=params, inputs=inputs, progress=progress,
             description="ridge grid: r per feature set x layer x element x target x held-out fold",
             metadata={"feature_sets": list(features), "n_perm": int(cfg["n_perm"])})
    return ["scores"]


STAGES: dict[str, Any] = {
    "encode": StageSpec(config=CONFIG, run=run_encode,
                        help="nested cross-validated ridge grid -> scores",
                        requires=("features", "targets")),
}
