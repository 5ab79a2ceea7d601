"""The ``analyses`` stage: the second seed's analyses as stores, ``analysis.<name>``.

``study.yaml`` asks for each analysis by name in one section; each becomes
one labelled store with provenance and identity (skipped when current)::

    analyses:
      gradient: {map: best, null: moran, noise_map: reliability}   # -> analysis.gradient
      leadlag: {ratings: [enjoyment], lags: [-10, 10]}              # -> analysis.leadlag
      renditions: {features: features.vggish, pairs: [[expressive, mechanical]]}
      clips: {features: features.vggish, classical: features.lld, labels: labels/4q.tsv}
      differential: {a: [rating:emotionality], b: [rating:enjoyment]}

Inputs are stores by name (``scores``, ``regions``, ``targets``,
``features.*``) and the lab's files (gradient, noise map, clip labels), whose
content the workspace hashes into the identity.

Adding an analysis is one entry in :data:`ANALYSES`::

    ANALYSES["differential"] = AnalysisSpec(
        config={...Field(...)...},                       # its keys under analyses.differential
        inputs=lambda study, cfg: [cfg["scores"]],       # stores / files of its identity
        build=build_differential,                        # (study, cfg) -> xarray.Dataset
        section=report_analyses.differential_section,    # (writer, ds, alpha=...) -> None
        help="emotionality vs enjoyment: layer profiles, best layers, region maps")

(in this module's ``ANALYSES`` literal, or registered from elsewhere before
the study is loaded); ``study.yaml`` then accepts ``analyses: {differential: {...}}``
and the report shows its section whenever ``analysis.differential`` exists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..config import REQUIRED, Field, StageSpec
from ..errors import ConfigError, InputError
from ..store.clock import stimulus_slices
from ..surrogates import SURROGATE_KINDS
from . import report_analyses
from .stage_inputs import (_need, clock_signals, feature_cube, hcp_parcel_gradient, layer_map, read_clip_labels,
                           read_region_table, region_reliability)

__all__ = ["STAGES", "ANALYSES", "AnalysisSpec", "run_analyses"]


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis of the ``analyses`` stage: its keys, its inputs, how it is built and reported."""

    config: Mapping[str, Field]
    inputs: Callable[[Any, dict], list]
    build: Callable[[Any, dict], xr.Dataset]
    section: Callable[..., None]
    help: str = ""


# ------------------------------------------------------------------ gradient
GRADIENT_CONFIG = {
    "scores": Field(str, default="scores", help="scores store whose region targets make the layer map"),
    "feature_set": Field((str, None), default=None, help="deep feature set of the map (default: the first)"),
    "element": Field((str, None), default=None, help="element of the map (default: original, else the first)"),
    "map": Field(str, default="best", choices=("best", "centroid"), help="best layer or centroid layer per region"),
    "p_var": Field(str, default="p_fwer", help="p-values deciding the layers a centroid weighs"),
    "alpha": Field(float, default=0.05, help="significance level of the centroid's layers"),
    "gradient_file": Field(Path, default=None, must_exist=True,
                           help="the lab's gradient: CSV/TSV with region, gradient, x, y, z (sphere coordinates) "
                                "(default: brainspace's HCP FC gradient on Schaefer parcels)"),
    "component": Field(int, default=0, help="HCP gradient component (0: the principal gradient, G1)"),
    "hemisphere": Field(str, default="lh", choices=("lh", "rh"), help="hemisphere compared (nulls stay within one)"),
    "noise_map": Field((str, None), default=None, choices=("reliability",),
                       help="noise-structure control: 'reliability' (leave-one-subject-out, from the regions store)"),
    "noise_file": Field(Path, default=None, must_exist=True,
                        help="the lab's noise map instead (tSNR, noise ceiling): CSV/TSV with region, noise"),
    "null": Field(str, default="moran", choices=("moran", "spin"),
                  help="spatial null: Moran spectral randomisation, or spins of the parcel centroids on the sphere"),
    "n_null": Field(int, default=1000, help="null maps"),
    "method": Field(str, default="spearman", choices=("spearman", "pearson"), help="correlation"),
    "seed": Field(int, default=0, help="random seed"),
}


def _element(values, requested: str | None, where: str) -> str:
    have = [str(v) for v in values]
    if requested is None:
        return "original" if "original" in have else have[0]
    if requested not in have:
        raise ConfigError(f"{where}.element: {requested!r} is not one of {have}")
    return requested


def _gradient_inputs(study, cfg: dict) -> list:
    from importlib.metadata import version

    files = [str(cfg[k]) for k in ("gradient_file", "noise_file") if cfg[k]]
    hcp = [] if cfg["gradient_file"] else [(f"brainspace:conte69_32k_fc_gradient{cfg['component']}",
                                            f"brainspace-{version('brainspace')}")]
    return [cfg["scores"]] + (["regions"] if cfg["noise_map"] else []) + files + hcp


def build_gradient(study, cfg: dict) -> xr.Dataset:
    """``analysis.gradient``: :func:`~xaffect.analysis.align_with_gradient` of a region layer map, with the maps."""
    from ._scores import deep_feature_sets
    from .gradients import align_with_gradient, parcel_weights

    if cfg["noise_map"] and cfg["noise_file"]:
        raise ConfigError("analyses.gradient: give noise_map or noise_file, not both")
    ws = study.workspace
    _need(ws, cfg["scores"], "analyses.gradient.scores")
    full = ws.open(cfg["scores"])
    sc = full[[v for v in ("r", cfg["p_var"], "null_mean") if v in full]].load()
    deeps = deep_feature_sets(sc)
    fs = cfg["feature_set"] or (deeps[0] if deeps else None)
    if fs not in deeps:
        raise ConfigError(f"analyses.gradient.feature_set: {fs!r} is not a deep feature set of "
                          f"{cfg['scores']!r} (have: {deeps})")
    if cfg["map"] == "centroid" and cfg["p_var"] not in sc:
        raise ConfigError(f"analyses.gradient.p_var: {cfg['p_var']!r} is not in {cfg['scores']!r}")
    el = _element(sc["element"].values, cfg["element"], "analyses.gradient")
    lm = layer_map(sc, feature_set=fs, element=el, kind=cfg["map"], p_var=cfg["p_var"], alpha=cfg["alpha"])
    regions = [str(r) for r in lm["region"].values]
    if cfg["gradient_file"]:
        table = read_region_table(cfg["gradient_file"], column="gradient", what="gradient")
        missing = sorted(set(regions) - set(table["region"].values))
        if missing:
            raise InputError(f"{cfg['gradient_file']}: no gradient for region(s) {missing[:3]} of the layer map")
        table = table.sel(region=regions)
        source = f"gradient of {Path(cfg['gradient_file']).name}"
    else:
        table = hcp_parcel_gradient(regions, hemisphere=cfg["hemisphere"], component=cfg["component"])
        source = table["gradient"].attrs["long_name"]
    if "xyz" not in table:
        raise ConfigError(f"analyses.gradient.gradient_file: {cfg['gradient_file']} has no x, y, z columns; "
                          "the spatial null needs each region's position on the sphere")
    lm = lm.sel(region=table["region"].values)
    noise = None
    if cfg["noise_file"]:
        noise = read_region_table(cfg["noise_file"], column="noise", what="noise map")["noise"]
    elif cfg["noise_map"] == "reliability":
        noise = region_reliability(ws, rate=float(study.rate))
    keep = np.isfinite(lm.values)
    if noise is not None:
        missing = sorted(set(lm["region"].values.astype(str)) - set(noise["region"].values.astype(str)))
        if missing:
            raise InputError(f"analyses.gradient: the noise map has no value for region(s) {missing[:3]}")
        noise = noise.sel(region=lm["region"].values)
        keep &= np.isfinite(noise.values)
    if keep.sum() < 4:
        raise InputError(f"analyses.gradient: {int(keep.sum())} regions have a {cfg['map']} layer; need 4 or more")
    sel = {"region": np.flatnonzero(keep)}
    lm, g, xyz = lm.isel(sel), table["gradient"].isel(sel), np.asarray(table["xyz"].isel(sel).values, float)
    noise = None if noise is None else noise.isel(sel)
    geometry = ({"weights": parcel_weights(xyz)} if cfg["null"] == "moran" else
                {"sphere": xyz / np.linalg.norm(xyz, axis=1, keepdims=True)})
    res = align_with_gradient(lm, g, null=cfg["null"], covariate=noise, n_null=cfg["n_null"],
                              method=cfg["method"], seed=cfg["seed"], **geometry)
    res["layer_map"] = lm
    res["gradient"] = g.rename("gradient")
    if noise is not None:
        res["noise"] = noise.rename("noise")
    res.attrs.update(feature_set=fs, element=el, map=cfg["map"], gradient=source, hemisphere=cfg["hemisphere"],
                     noise=(Path(cfg["noise_file"]).name if cfg["noise_file"] else cfg["noise_map"] or ""),
                     n_dropped=int((~keep).sum()), scores=cfg["scores"])
    return res


# ------------------------------------------------------------------ lead-lag
LEADLAG_CONFIG = {
    "ratings": Field((list, None), default=None, item=str, help="rating scales of the targets store (default: all)"),
    "regions": Field((list, None), default=None, item=str, help="regions (default: all; p is family-wise over them)"),
    "lags": Field(list, default=[-10.0, 10.0], item=float, help="smallest and largest lag in seconds (> 0: region leads)"),
    "null": Field(str, default="shift", choices=SURROGATE_KINDS, help="surrogates of the region signals"),
    "n_null": Field(int, default=1000, help="surrogates"),
    "bootstrap": Field(str, default="block", choices=("block", "stimulus"), help="resampling of the peak lag"),
    "block": Field((float, None), default=None, help="bootstrap block in seconds (default: twice the largest lag)"),
    "n_boot": Field(int, default=1000, help="bootstrap resamples"),
    "ci": Field(float, default=0.95, help="level of the peak-lag interval"),
    "seed": Field(int, default=0, help="random seed"),
}


def build_leadlag(study, cfg: dict) -> xr.Dataset:
    """``analysis.leadlag``: :func:`~xaffect.analysis.lead_lag` of region signals and each rating."""
    from .leadlag import lead_lag

    if len(cfg["lags"]) != 2:
        raise ConfigError(f"analyses.leadlag.lags: give [smallest, largest] in seconds, got {cfg['lags']}")
    sig = clock_signals(study.workspace)
    ratings, regions = sig["ratings"], sig["regions"]
    scales = [str(t).split(":", 1)[1] for t in ratings["target"].values]
    names = [str(t).split(":", 1)[1] for t in regions["target"].values]
    for key, want, have in (("ratings", cfg["ratings"], scales), ("regions", cfg["regions"], names)):
        bad = [w for w in (want or []) if w not in have]
        if bad:
            raise ConfigError(f"analyses.leadlag.{key}: {bad[0]!r} is not in the store (have: {have[:8]})")
    reg = regions.assign_coords(target=names).rename(target="region").sel(region=cfg["regions"] or names)
    reg.attrs["clock_rate"] = ratings.attrs.get("clock_rate", regions.attrs.get("clock_rate"))
    out = []
    for scale in cfg["ratings"] or scales:
        y = ratings.sel(target=f"rating:{scale}", drop=True).rename(scale)
        y.attrs["clock_rate"] = reg.attrs["clock_rate"]
        res = lead_lag(reg.rename("regions"), y, lags=tuple(cfg["lags"]), null=cfg["null"], n_null=cfg["n_null"],
                       bootstrap=cfg["bootstrap"], block=cfg["block"], n_boot=cfg["n_boot"], ci=cfg["ci"],
                       seed=cfg["seed"])
        out.append(res.expand_dims(rating=[scale]))
    ds = xr.concat(out, dim="rating", combine_attrs="drop_conflicts")
    ds.attrs.pop("rating", None)
    ds.attrs["region"] = "regions"
    return ds


# ---------------------------------------------------------------- renditions
RENDITIONS_CONFIG = {
    "features": Field((str, None), default=None, help="deep feature store (default: the first with 'activation')"),
    "pairs": Field(list, default=REQUIRED, item=list,
                   help="pairs of stimuli that are renditions of one piece, e.g. [[expressive, mechanical]]"),
    "element": Field((str, None), default=None, help="element compared (default: original, else the first)"),
    "window": Field(float, default=10.0, help="window in seconds"),
    "measure": Field(str, default="cka", choices=("cka", "correlation"), help="1 - linear CKA or 1 - correlation"),
    "align": Field(str, default="none", choices=("none", "dtw"),
                   help="renditions already on aligned time, or put the second on the first's by DTW"),
    "n_null": Field(int, default=1000, help="time shifts of the null (all admissible ones when fewer)"),
    "seed": Field(int, default=0, help="random seed"),
}


def _deep_store(ws, name: str | None, where: str) -> str:
    if name:
        return name
    for n in ws.names():
        if n.startswith("features.") and "/" not in n and "activation" in ws.open(n):
            return n
    raise InputError(f"{where}: no features.* store with 'activation' in {ws.url} (run the features stage)")


def _renditions_inputs(study, cfg: dict) -> list:
    return [_deep_store(study.workspace, cfg["features"], "analyses.renditions.features")]


def build_renditions(study, cfg: dict) -> xr.Dataset:
    """``analysis.renditions``: :func:`~xaffect.analysis.rendition_distance` of each pair, along ``pair``."""
    from .renditions import align_renditions, rendition_distance

    name = _renditions_inputs(study, cfg)[0]
    cube = feature_cube(study.workspace, name, "analyses.renditions.features")
    slices = stimulus_slices(cube)
    el = _element(cube["element"].values, cfg["element"], "analyses.renditions") if "element" in cube.dims else None
    out = []
    for i, pair in enumerate(cfg["pairs"]):
        if len(pair) != 2:
            raise ConfigError(f"analyses.renditions.pairs[{i}]: give two stimuli, got {pair}")
        for s in pair:
            if str(s) not in slices:
                raise ConfigError(f"analyses.renditions.pairs[{i}]: stimulus {s!r} is not in {name!r} "
                                  f"(has: {list(slices)[:8]})")
        a, b = (cube.isel(time=slices[str(s)]).load().rename(str(s)) for s in pair)
        if el is not None:
            a, b = a.sel(element=el, drop=True), b.sel(element=el, drop=True)
        if cfg["align"] == "dtw":
            b = align_renditions(a, b)
        res = rendition_distance(a, b, window=cfg["window"], measure=cfg["measure"], n_null=cfg["n_null"],
                                 rate=float(cube.attrs.get("clock_rate", study.rate)), seed=cfg["seed"])
        # shifts and windows differ between pairs: index them, keep their values as variables
        res = res.assign(shift_steps=("shift", res["shift"].values), window_centre=("window", res["window"].values))
        res = res.assign_coords(shift=np.arange(res.sizes["shift"]), window=np.arange(res.sizes["window"]))
        out.append(res.expand_dims(pair=[f"{pair[0]} vs {pair[1]}"]).assign_coords(
            a=("pair", [str(pair[0])]), b=("pair", [str(pair[1])]), n_shifts=("pair", [res.attrs["n_null"]])))
    ds = xr.concat(out, dim="pair", join="outer", combine_attrs="drop_conflicts")
    for k in ("a", "b", "n_null"):
        ds.attrs.pop(k, None)
    ds.attrs.update(features=name, element=el or "", align=cfg["align"])
    return ds


# --------------------------------------------------------------------- clips
CLIPS_CONFIG = {
    "features": Field((str, None), default=None, help="deep feature store (default: the first with 'activation')"),
    "classical": Field((str, None), default=None, help="classical descriptor store on the same clips, e.g. features.lld"),
    "labels": Field(Path, default=REQUIRED, must_exist=True,
                    help="CSV/TSV with a 'stimulus' column and the label column (one row per clip)"),
    "label": Field(str, default="label", help="label column: classes (text) or static values (numbers)"),
    "group": Field((str, None), default=None, help="column of groups (piece, artist) kept within one fold"),
    "element": Field((str, None), default=None, help="element (default: original, else the first)"),
    "pool": Field(list, default=["mean"], item=str, help="statistics over each clip's time: mean, std"),
    "n_splits": Field(int, default=5, help="cross-validation folds"),
    "n_permutations": Field(int, default=1000, help="label permutations"),
    "contest": Field(bool, default=True, help="also the selection-honest best layer vs classical test"),
    "seed": Field(int, default=0, help="random seed"),
}


def _clips_inputs(study, cfg: dict) -> list:
    deep = _deep_store(study.workspace, cfg["features"], "analyses.clips.features")
    return [deep] + ([cfg["classical"]] if cfg["classical"] else []) + [str(cfg["labels"])]


def _pooled(ws, name: str, clips: list[str], element: str | None, how: list[str], labels_file: Path) -> xr.DataArray:
    from .clips import pool_clips

    cube = feature_cube(ws, name, "analyses.clips")
    have = set(stimulus_slices(cube))
    missing = [c for c in clips if c not in have]
    if missing:
        raise InputError(f"{labels_file}: clip(s) {missing[:3]} are not in store {name!r}")
    keep = np.flatnonzero(np.isin(np.asarray(cube["stimulus"].values).astype(str), clips))
    el = _element(cube["element"].values, element, "analyses.clips") if "element" in cube.dims else None
    return pool_clips(cube.isel(time=keep).load(), element=el, how=tuple(how))


def build_clips(study, cfg: dict) -> xr.Dataset:
    """``analysis.clips``: :func:`~xaffect.analysis.clip_label_profile` (+ ``contest_*``: deep vs classical)."""
    from .clips import clip_label_profile, deep_vs_classical_clips

    ws = study.workspace
    deep = _clips_inputs(study, cfg)[0]
    labels, groups = read_clip_labels(cfg["labels"], label=cfg["label"], group=cfg["group"])
    clips = [str(c) for c in labels["stimulus"].values]
    pooled = _pooled(ws, deep, clips, cfg["element"], cfg["pool"], cfg["labels"])
    classical = None
    if cfg["classical"]:
        classical = _pooled(ws, cfg["classical"], clips, cfg["element"], cfg["pool"], cfg["labels"])
    res = clip_label_profile(pooled, labels, classical=classical, groups=groups, n_splits=cfg["n_splits"],
                             n_permutations=cfg["n_permutations"], seed=cfg["seed"])
    if classical is not None and cfg["contest"]:
        con = deep_vs_classical_clips(pooled, labels, classical, groups=groups, n_splits=cfg["n_splits"],
                                      seed=cfg["seed"])
        res = res.merge(con.rename({v: f"contest_{v}" for v in con.data_vars}))
        res.attrs["contest_test"] = con.attrs["test"]
    res.attrs.update(features=deep, classical=cfg["classical"] or "", labels_file=Path(cfg["labels"]).name)
    return res


# -------------------------------------------------------------- differential
DIFFERENTIAL_CONFIG = {
    "scores": Field(str, default="scores", help="scores store holding both targets"),
    "a": Field(list, default=REQUIRED, item=str,
               help="side a's targets, e.g. [rating:emotionality] (a list of region: targets makes a region map)"),
    "b": Field(list, default=REQUIRED, item=str, help="side b's targets, paired with a's position by position"),
    "feature_set": Field((str, None), default=None, help="deep feature set compared (default: the only deep one)"),
    "element": Field((str, None), default=None, help="element of side a (default: the only one)"),
    "element_b": Field((str, None), default=None, help="element of side b (default: side a's)"),
    "method": Field(str, default="fwer", choices=("fwer", "fdr", "none"),
                    help="correction over the family: Holm, Benjamini-Hochberg or none"),
    "n_boot": Field(int, default=2000, help="stimulus bootstrap resamples of the best layers"),
    "seed": Field(int, default=0, help="random seed"),
}


def build_differential(study, cfg: dict) -> xr.Dataset:
    """``analysis.differential``: :func:`~xaffect.analysis.differential_encoding` of the pairs ``a`` vs ``b``."""
    from .differential import differential_encoding

    ws = study.workspace
    _need(ws, cfg["scores"], "analyses.differential.scores")
    if len(cfg["a"]) != len(cfg["b"]) or not cfg["a"]:
        raise ConfigError(f"analyses.differential.b: give as many targets as in a ({len(cfg['a'])}), got "
                          f"{len(cfg['b'])}")
    full = ws.open(cfg["scores"])
    sc = full[["r"]].load()
    try:
        res = differential_encoding(sc, list(cfg["a"]), list(cfg["b"]), feature_set=cfg["feature_set"],
                                    element=cfg["element"], element_b=cfg["element_b"], method=cfg["method"],
                                    n_boot=cfg["n_boot"], seed=cfg["seed"])
    except InputError as e:  # name the config section the key lives in
        raise InputError(f"analyses.differential.{e}") from None
    res.attrs["scores"] = cfg["scores"]
    # with few held-out stimuli the swap test has a floor (2 / 2**n_folds); the crossover of out-of-fold chosen
    # layers (corrected t) has none, so it is stored beside it for every pair
    from .crossover import crossover_layer_test

    cross = [crossover_layer_test(sc, a, b, feature_set=res.attrs["feature_set"], element=res.attrs["element_a"])
             for a, b in zip(cfg["a"], cfg["b"])] if res.attrs["element_a"] == res.attrs["element_b"] else []
    if cross:
        dims = ("pair",) if "pair" in res.dims else ()
        pick = (lambda v: np.asarray(v)) if dims else (lambda v: v[0])
        res["crossover_t"] = (dims, pick([c["t"] for c in cross]))
        res["p_crossover"] = (dims, pick([c["p"] for c in cross]))
        res.attrs["crossover_test"] = cross[0]["test"]
    return res


# ----------------------------------------------------------------- registry
#: The analyses the stage knows, by their key under ``analyses:``; each writes ``analysis.<key>``.
ANALYSES: dict[str, AnalysisSpec] = {
    "gradient": AnalysisSpec(GRADIENT_CONFIG, _gradient_inputs, build_gradient, report_analyses.gradient_section,
                             "layer map vs a cortical gradient, spatial null and noise-structure control"),
    "leadlag": AnalysisSpec(LEADLAG_CONFIG, lambda study, cfg: ["targets", "regions"], build_leadlag,
                            report_analyses.leadlag_section, "region signals leading or following ratings"),
    "renditions": AnalysisSpec(RENDITIONS_CONFIG, _renditions_inputs, build_renditions,
                               report_analyses.renditions_section, "two renditions of a piece, layer by layer"),
    "clips": AnalysisSpec(CLIPS_CONFIG, _clips_inputs, build_clips, report_analyses.clips_section,
                          "clip-level labels predicted from each layer vs classical descriptors"),
    "differential": AnalysisSpec(DIFFERENTIAL_CONFIG, lambda study, cfg: [cfg["scores"]], build_differential,
                                 report_analyses.differential_section,
                                 "two targets (emotionality vs enjoyment): layer profiles, best layers, region maps"),
}


def _jsonable(cfg: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.items()}


def run_analyses(study, *, force: bool = False, progress: bool = True) -> list[str]:
    """Stage ``analyses``: write ``analysis.<name>`` for each analysis asked for; each skips when current."""
    sec = study.section("analyses")
    ws = study.workspace
    written = []
    asked = {name: cfg for name, cfg in sec.items() if cfg is not None}
    if not asked:
        raise ConfigError(f"{study.path.name}: analyses: name at least one analysis ({', '.join(ANALYSES)}), "
                          "e.g. 'gradient: {}' for its defaults")
    for name, cfg in asked.items():
        spec = ANALYSES[name]
        params = {"analysis": name, **_jsonable(cfg), "rate": float(study.rate)}
        ws.run_stage(f"analysis.{name}", lambda spec=spec, cfg=cfg: spec.build(study, cfg), stage="analyses",
                     params=params, inputs=spec.inputs(study, cfg), force=force, progress=progress,
                     description=f"{name}: {spec.help}")
        written.append(f"analysis.{name}")
    return written


class _AnalysesSchema(Mapping):
    """The ``analyses`` section's schema, read from :data:`ANALYSES` when used: a registered analysis is a key.

    Each key takes a mapping of that analysis' keys (``gradient: {}`` for its defaults).
    """

    def __getitem__(self, name: str) -> Field:
        spec = ANALYSES[name]
        return Field(dict, default=None, item=spec.config, help=f"{spec.help} -> analysis.{name}")

    def __iter__(self):
        return iter(ANALYSES)

    def __len__(self) -> int:
        return len(ANALYSES)


CONFIG = _AnalysesSchema()

STAGES = {"analyses": StageSpec(config=CONFIG, run=run_analyses, help="second-seed analyses -> analysis.* stores",
                                requires=())}
