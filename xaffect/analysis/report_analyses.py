"""The report's sections for the ``analysis.*`` stores.

Gradient alignment, lead-lag, renditions, clip labels, differential encoding.

Each section reads its store (nothing is recomputed), states the claim in
words with its p-value, the null it comes from and the family it is corrected
over, and adds the figure and the table (via the report's writer:
PNG in the page, SVG and CSV beside it). :func:`add_analysis_sections` adds one
section per store present, in the order of
:data:`xaffect.analysis.analyses_stage.ANALYSES`.

A section is ``section(writer, ds, *, alpha)``; the writer (the report's
``_Writer``) offers ``writer.report.add_html(html, title=..., section=...)``,
``writer.figure(fig, title, caption, section)`` and
``writer.table(df, title, section, note=..., rows=..., show=...)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["add_analysis_sections", "gradient_section", "leadlag_section", "renditions_section", "clips_section",
           "differential_section"]

_NULLS = {"spin": "spins of the parcel positions on the sphere", "moran": "Moran spectral randomisation",
          "shift": "circular time shifts within stimulus", "phase": "phase randomisation within stimulus",
          "stimulus": "stimulus permutation"}


def add_analysis_sections(writer: Any, workspace: Any, names: list[str], *, alpha: float) -> list[str]:
    """Add the section of every ``analysis.<name>`` store in ``names``; returns the stores read."""
    from .analyses_stage import ANALYSES

    read = []
    for key, spec in ANALYSES.items():
        store = f"analysis.{key}"
        if store in names:
            spec.section(writer, workspace.open(store).load(), alpha=alpha)
            read.append(store)
    return read


def _close(fig: Any) -> None:
    """Release a figure made through pyplot (the analysis plots use it; the report's own do not)."""
    import matplotlib.pyplot as plt

    plt.close(fig)


def _p(p: float, n: int | None = None, name: str = "p") -> str:
    """``p = 0.0123``, saying so when it is the smallest p that ``n`` resamples can give."""
    floor = n is not None and p <= 1.0 / (int(n) + 1) + 1e-12
    return f"{name} = {p:.3g}" + (f" (the smallest {n} resamples can give)" if floor else "")


# ------------------------------------------------------------------ gradient
def gradient_section(w: Any, ds: xr.Dataset, *, alpha: float) -> None:
    """Gradient alignment: claim, scatter + null figure, region table."""
    from .gradient_plot import plot_gradient_alignment, plot_gradient_surface

    a = ds.attrs
    null = _NULLS.get(a.get("null"), a.get("null"))
    r, p = float(ds["r"]), float(ds["p"])
    what = (f"The {a.get('map')} layer of {a.get('feature_set')} ({a.get('element')}) over {a.get('n_points')} "
            f"regions{' of the ' + a['hemisphere'] + ' hemisphere' if a.get('hemisphere') else ''}")
    verdict = "follows" if p < alpha else "does not detectably follow"
    text = (f"<p><b>Claim.</b> {what} {verdict} the {a.get('gradient')}: {a.get('method', '').capitalize()} "
            f"r = {r:.2f}, {_p(p, a.get('n_null'))} (two-sided; one map against one gradient, so no family to "
            "correct over). "
            f"Null: {a.get('n_null')} maps from {null}, which keep the map's spatial autocorrelation "
            "(a plain permutation of regions would not).</p>")
    if "r_partial" in ds:
        rp, pp = float(ds["r_partial"]), float(ds["p_partial"])
        text += (f"<p><b>Is it noise structure?</b> With the noise map ({a.get('noise')}) partialled out of both: "
                 f"r = {rp:.2f}, {_p(pp, a.get('n_null'))} (Freedman–Lane: the layer map's residual on the noise "
                 f"map randomised by the same null) — the alignment {'survives' if pp < alpha else 'does not survive'} the control.</p>")
    if a.get("n_dropped"):
        text += f"<p>{a['n_dropped']} regions without a {a.get('map')} layer are left out.</p>"
    w.report.add_html(text, title="Gradient alignment: claim", section="Gradient alignment")
    fig = plot_gradient_alignment(ds, title=f"{a.get('map')} layer vs {a.get('gradient')}")
    noise_name = {"reliability": "reliability (noise map)"}.get(a.get("noise"), f"noise ({a.get('noise')})")
    w.figure(fig, "Gradient alignment", f"Left: {a.get('map')} layer per region against the gradient, with the "
             f"least-squares line. Right: r of the {a.get('n_null')} null maps ({null}) with the observed r"
             + (" and, beside it, the partial r under the Freedman–Lane null." if "r_partial" in ds else "."),
             "Gradient alignment")
    from .stage_inputs import SCHAEFER_NAME

    if all(SCHAEFER_NAME.fullmatch(str(r)) for r in ds["region"].values):
        fig = plot_gradient_surface(ds)
        w.figure(fig, "Gradient alignment on the cortex", f"Top: the {a.get('map')} layer per parcel; bottom: "
                 f"the {a.get('gradient')}; on brainspace's conte69 surface (grey: parcels without a value; colour "
                 "scales from the 2nd to the 98th percentile).", "Gradient alignment")
    cols = [v for v in ("layer_map", "gradient", "noise") if v in ds]
    table = ds[cols].to_dataframe().reset_index()[["region", *cols]].rename(
        columns={"layer_map": f"{a.get('map')} layer", "noise": noise_name})
    w.table(table, "Gradient alignment: regions", "Gradient alignment",
            note="The map and the gradient per region (the points of the scatter).")


# ------------------------------------------------------------------ lead-lag
def _one_lag(ds: xr.Dataset, rating: str, region: str) -> xr.Dataset:
    one = ds.sel(rating=rating, region=region, drop=True)
    # a new dict: selections share their parent's attrs dict, and every figure needs its own
    one.attrs = {**ds.attrs, "rating": rating, "region": region, "family": f"lags and {ds.sizes['region']} regions"}
    return one


def leadlag_section(w: Any, ds: xr.Dataset, *, alpha: float) -> None:
    """Lead-lag: per rating, the claim for its strongest region, its cross-correlogram, and every region's peak."""
    from .leadlag import describe_lead_lag, plot_lead_lag

    a = ds.attrs
    n_lags, n_reg = ds.sizes["lag"], ds.sizes["region"]
    family = (f"p: the peak's |r| against the largest |r| over the {n_lags} lags and {n_reg} regions inside each of "
              f"{a.get('n_null')} surrogates ({_NULLS.get(a.get('null'), a.get('null'))} of the region signals) — "
              f"family-wise over regions × lags, per rating; peak-lag interval: {a.get('ci', 0.95):.0%} "
              f"{a.get('bootstrap')} bootstrap")
    claims, rows, figures = [], [], []
    for rating in [str(v) for v in ds["rating"].values]:
        sub = ds.sel(rating=rating)
        order = np.argsort(np.nan_to_num(sub["p_peak"].values, nan=2.0) - 1e-6 * np.abs(sub["peak_r"].values))
        regions = [str(v) for v in sub["region"].values]
        best = regions[order[0]]
        claims.append(describe_lead_lag(_one_lag(ds, rating, best), alpha=alpha))
        figures.append((rating, best))
        for k in order:
            rows.append({"rating": rating, "region": regions[k], "peak lag (s)": float(sub["peak_lag"][k]),
                         "interval (s)": f"[{float(sub['peak_lag_low'][k]):g}, {float(sub['peak_lag_high'][k]):g}]",
                         "r": float(sub["peak_r"][k]), "p": float(sub["p_peak"][k])})
    items = "".join(f"<li>{c}</li>" for c in claims)
    w.report.add_html(f"<p><b>Claims</b> (the strongest region per rating; a positive lag: the region leads):</p>"
                      f"<ul>{items}</ul><p>{family}.</p>", title="Lead–lag: claims", section="Lead–lag")
    for rating, best in figures:
        fig = plot_lead_lag(_one_lag(ds, rating, best), alpha=alpha)
        w.figure(fig, f"Lead-lag: {rating}", f"r(region[t], {rating}[t + lag]) within stimulus for {best} (the "
                 f"region with the smallest p); dashed: the {1 - alpha:.0%} quantile of the max-over-lags-and-regions "
                 "null; shade: the peak lag's interval.", "Lead–lag")
        _close(fig)
    table = pd.DataFrame(rows)
    w.table(table, "Lead-lag: every region's peak", "Lead–lag", show=table[table["p"] < alpha],
            note=f"Peak lag with its interval, r and p per rating and region ({family}); significant rows shown.")


# ---------------------------------------------------------------- renditions
def renditions_section(w: Any, ds: xr.Dataset, *, alpha: float) -> None:
    """Renditions: per pair, the layers closer than misaligned copies, the distance profile and its table."""
    from .renditions import plot_rendition_distance

    a = ds.attrs
    measure = "1 − linear CKA" if a.get("measure") == "cka" else "1 − correlation"
    claims, frames, figures = [], [], []
    for pair in [str(v) for v in ds["pair"].values]:
        sub = ds.sel(pair=pair)
        one = sub.dropna("shift", how="all", subset=["null"]).dropna("window", how="all", subset=["window_distance"])
        one.attrs = {**a, "a": str(sub["a"].values), "b": str(sub["b"].values)}   # its own dict (see _one_lag)
        layers = one["layer"].values
        sig = layers[one["p_fwer"].values < alpha]
        k = int(np.nanargmin(one["relative"].values))
        n_shift = int(sub["n_shifts"])
        claims.append(f"{one.attrs['a']} and {one.attrs['b']}: closer than time-shifted copies at "
                      + (f"layers {', '.join(map(str, sig))}" if sig.size else "no layer")
                      + f" (p_fwer < {alpha}); closest relative to the null at layer {layers[k]} "
                      f"({measure} = {float(one['distance'][k]):.3f}, {float(one['relative'][k]):.2f} × the shifted "
                      f"mean, {_p(float(one['p_fwer'][k]), n_shift, 'p_fwer')}; {n_shift} shifts)")
        figures.append((pair, one, n_shift))
        df = one[["distance", "relative", "p", "p_fwer"]].to_dataframe().reset_index()
        frames.append(df[["layer", "distance", "relative", "p", "p_fwer"]].assign(pair=pair))
    items = "".join(f"<li>{c}</li>" for c in claims)
    w.report.add_html(f"<p><b>Claims:</b></p><ul>{items}</ul><p>p_fwer: each layer's distance against the smallest "
                      "distance over all layers inside each time shift of the second rendition (which keeps each "
                      "rendition's own temporal structure and breaks their alignment) — family-wise over layers; "
                      f"p: per layer.</p>", title="Renditions: claims", section="Renditions")
    for pair, one, n_shift in figures:
        fig = plot_rendition_distance(one)
        w.figure(fig, f"Renditions: {pair}", f"{measure} per layer between {pair} over {float(a.get('window_s', 0)):g} s "
                 f"windows of aligned time (align: {a.get('align')}); grey: the 5–95 % band of {n_shift} time "
                 "shifts of the second rendition; stars: p_fwer < .05.", "Renditions")
        _close(fig)
    table = pd.concat(frames, ignore_index=True)
    w.table(table[["pair", "layer", "distance", "relative", "p", "p_fwer"]], "Renditions: distance per layer",
            "Renditions", rows=30, note=f"{measure} per layer; relative: over the mean of the time-shift null.")


# --------------------------------------------------------------------- clips
def clips_section(w: Any, ds: xr.Dataset, *, alpha: float) -> None:
    """Clip labels: the accuracy profile over layers, the best layer's claim, and deep vs classical."""
    from .clips import plot_clip_profile

    a = ds.attrs
    score = str(a.get("scoring", "score")).replace("_", " ")
    n_perm = a.get("n_permutations")
    text = (f"<p><b>Claim.</b> Clip labels <i>{a.get('labels')}</i> ({a.get('n_clips')} clips, {a.get('n_splits')}-fold "
            f"{'grouped ' if a.get('grouped') else ''}cross-validation, {score}; chance {float(a.get('chance', 0)):.2f}) "
            f"are predicted best from layer {ds['best_layer'].item()} of {a.get('features')}: {score} "
            f"{float(ds['best_score']):.3f}, {_p(float(ds['p_best']), n_perm)} (against the best layer's score inside each of "
            f"{n_perm} label permutations — family-wise over layers, so picking the best layer is paid for).")
    if "classical_score" in ds:
        text += (f" The classical descriptors ({a.get('classical')}): {float(ds['classical_score']):.3f}, "
                 f"{_p(float(ds['classical_p']), n_perm)} (same folds and permutations).")
    text += "</p>"
    if "contest_p" in ds:
        d, c, p = float(ds["contest_deep_score"]), float(ds["contest_classical_score"]), float(ds["contest_p"])
        layers, counts = np.unique(np.asarray(ds["contest_chosen_layer"].values).ravel(), return_counts=True)
        chosen = ", ".join(f"{v} ({n}×)" for v, n in zip(layers, counts))
        ci = (f", difference {float(ds['contest_mean_fold_difference']):.3f} [{float(ds['contest_ci_low']):.3f}, "
              f"{float(ds['contest_ci_high']):.3f}]" if "contest_ci_low" in ds else "")
        verdict = ("predicts them better than" if p < alpha and d > c else
                   "predicts them worse than" if p < alpha else "is not distinguishable from")
        text += (f"<p><b>Deep vs classical.</b> The deep layer (chosen on inner folds of each training set: layer "
                 f"{chosen}) {verdict} the classical descriptors on the held-out clips: {d:.3f} vs {c:.3f}{ci}, "
                 f"{_p(p)} ({a.get('contest_test')}).</p>")
    w.report.add_html(text, title="Clip labels: claims", section="Clip labels")
    fig = plot_clip_profile(ds)
    w.figure(fig, "Clip labels per layer", f"Cross-validated {score} of each layer's clip-pooled features; grey: "
             f"5–95 % of {n_perm} label permutations; dotted: chance; dashed: classical descriptors; stars: "
             "p_fwer < .05.", "Clip labels")
    _close(fig)
    df = ds[["score", "p", "p_fwer"]].to_dataframe().reset_index()[["layer", "score", "p", "p_fwer"]]
    w.table(df, "Clip labels: score per layer", "Clip labels", rows=30,
            note="p: per layer; p_fwer: against the maximum over layers in each permutation.")


# -------------------------------------------------------------- differential
def differential_section(w: Any, ds: xr.Dataset, *, alpha: float) -> None:
    """Differential encoding: one sentence per pair, the paired profiles figure, the per-pair table."""
    from .differential import describe_differential, plot_differential_encoding

    a = ds.attrs
    pairs = [None] if "pair" not in ds.dims else list(range(ds.sizes["pair"]))
    sentences = [describe_differential(ds if i is None else ds.isel(pair=i), alpha=alpha) for i in pairs]
    text = "".join(f"<p><b>Claim.</b> {s}</p>" for s in sentences[:12])
    if "p_crossover" in ds:
        ps = np.atleast_1d(ds["p_crossover"].values)
        ts = np.atleast_1d(ds["crossover_t"].values)
        pair_names = [None] if "pair" not in ds.dims else [str(v) for v in ds["pair"].values]
        text += "".join(f"<p><b>Crossover.</b> {name + ': ' if name else ''}each target gains from its own "
                        f"out-of-fold chosen layer over the other's: t = {t:.2f}, {_p(float(p))} "
                        f"({a.get('crossover_test')}; no floor from few stimuli, conservative).</p>"
                        for name, t, p in list(zip(pair_names, ts, ps))[:12])
    text += (f"<p>{a.get('feature_set')}: per layer, the paired difference r<sub>a</sub> − r<sub>b</sub> over the "
             f"same {a.get('n_folds')} held-out stimuli ({a.get('test')}; {a.get('correction')} over the family "
             f"<i>{a.get('family')}</i>); best layers selected inside each of {a.get('n_boot')} stimulus "
             f"resamples ({a.get('resampling')}).</p>")
    w.report.add_html(text, title="Differential encoding: claims", section="Differential encoding")
    for i in pairs[:4]:
        one = ds if i is None else ds.isel(pair=i)
        fig = plot_differential_encoding(one)
        w.figure(fig, f"Differential encoding: {one['target_a'].item()} vs {one['target_b'].item()}",
                 "Layer profiles of both targets with their intervals, the paired difference with its band, and "
                 "each best layer's bootstrap interval.", "Differential encoding")
        _close(fig)
    cols = [v for v in ("best_a", "best_b", "best_difference", "best_difference_lower", "best_difference_upper",
                        "p_best_differs", "p_profiles_differ", "r_cv_a", "r_cv_b", "p_r_cv") if v in ds]
    df = ds[cols].to_dataframe().reset_index() if "pair" in ds.dims else ds[cols].to_pandas().to_frame().T
    w.table(df, "Differential encoding: per pair", "Differential encoding", rows=30,
            note="p_best_differs: different best layers; p_profiles_differ: the smallest family-corrected "
                 "per-layer p; p_r_cv: selection-honest best scores compared.")
