"""Stages ``synchrony`` (regions -> sliding ISC) and ``targets`` (rating files -> clock)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click
import numpy as np
import pandas as pd
import xarray as xr

from ..config import Field, StageSpec
from ..errors import ConfigError, InputError, StoreError
from .isc import METHODS, NULLS, ISCWarning, _run
from .ratings import LIRIS_SCALES, rater_agreement, ratings_to_clock, read_liris_ratings, read_rating_table

__all__ = ["STAGES", "CLI_COMMANDS", "run_synchrony", "run_targets", "build_synchrony", "build_targets"]

SYNCHRONY_CONFIG = {
    "input": Field(str, default="regions",
                   help="store of region signals (per stimulus: signal (subject, sample, region))"),
    "window": Field(float, default=10.0, help="window length in seconds (whole clock bins)"),
    "step": Field(float, default=1.0, help="step between windows in seconds (whole clock bins)"),
    "method": Field(str, default="loo", choices=METHODS, help="leave-one-out or pairwise ISC"),
    "bands": Field(list, default=None, item=str,
                   help="ISC of the Hilbert envelope of these bands (delta theta alpha beta gamma; "
                        "raw = the signal itself) along a band dimension"),
    "null": Field(str, default="shift", choices=NULLS, help="surrogates: circular time-shift or phase randomisation"),
    "n_null": Field(int, default=200, help="surrogate datasets for p-values (0: none)"),
    "n_boot": Field(int, default=200, help="subject bootstrap resamples for the summary ISC (0: none)"),
    "cluster_alpha": Field(float, default=0.05,
                           help="cluster-forming threshold (one-sided normal tail of the null-standardised ISC) "
                                "of the temporal cluster test over windows x regions"),
    "seed": Field(int, default=0, help="random seed"),
    "lengths": Field(str, default="trim", choices=("trim", "error"),
                     help="subjects of different lengths: trim to the shortest (with a warning) or refuse"),
}

TARGETS_CONFIG = {
    "liris": Field(Path, default=None, must_exist=True,
                   help="LIRIS-ACCEDE continuous annotation folder (<movie>_Arousal.txt, <movie>_Valence.txt)"),
    "movies": Field(dict, default=None, help="stimulus -> LIRIS-ACCEDE movie name (default: the stimulus name)"),
    "table": Field(Path, default=None, must_exist=True,
                   help="CSV/TSV with columns onset, rating, rater[, stimulus][, scale]"),
    "files": Field(dict, default=None, help="stimulus -> CSV/TSV of its ratings (onset, rating, rater[, scale])"),
    "scales": Field(list, default=None, item=str,
                    help="scales to keep, in order (default: all; LIRIS: arousal, valence)"),
    "scale": Field(str, default="rating", help="scale name for tables without a 'scale' column"),
    "durations": Field(str, default="auto", choices=("auto", "stems", "ratings"),
                       help="stimulus durations from the stems store, from the ratings, or stems when present"),
}


# ----------------------------------------------------------------- synchrony
def _check_clock(cfg: dict, rate: float, where: str) -> None:
    for key in ("window", "step"):
        v = cfg[key] * rate
        if cfg[key] <= 0 or abs(v - round(v)) > 1e-6:
            raise ConfigError(f"{where}.{key}: {cfg[key]} s must be a positive whole number of clock bins "
                              f"at {rate} Hz (features are averaged over the same windows)")


def _sfreq(ds: xr.Dataset, stim: str) -> float:
    fs = ds.attrs.get("sfreq", ds["signal"].attrs.get("sfreq"))
    if fs is None:
        raise InputError(f"regions store, stimulus {stim!r}: no 'sfreq' attribute")
    return float(fs)


def build_synchrony(study, cfg: dict, *, progress: bool = True) -> xr.Dataset:
    """Compute the synchrony Dataset from the study's region signals.

    Parameters
    ----------
    study : xaffect.study.Study
    cfg : dict
        Validated ``synchrony`` section.

    Returns
    -------
    Dataset
        As :func:`xaffect.synchrony.isc_test`, with attr ``clock_rate``.
    """
    ws = study.workspace
    if cfg["input"] not in ws:
        raise StoreError(f"synchrony: no {cfg['input']!r} store in {ws.url} (run the regions stage first)")
    tree = ws.open(cfg["input"])
    groups = [p.lstrip("/") for p in tree.groups if p != "/"]
    order = [s.name for s in study.stimuli if s.name in groups]
    if not order:
        raise InputError(f"synchrony: the {cfg['input']!r} store has none of the study's stimuli "
                         f"(store: {', '.join(groups) or 'empty'})")
    stimuli, regions = {}, None
    for stim in order:
        ds = tree[stim].to_dataset()
        if "signal" not in ds:
            raise InputError(f"{cfg['input']} store, stimulus {stim!r}: no 'signal' variable")
        sig = ds["signal"].transpose("subject", "sample", "region")
        reg = [str(r) for r in sig["region"].values]
        if regions is None:
            regions = reg
        elif reg != regions:
            raise InputError(f"{cfg['input']} store, stimulus {stim!r}: regions differ from stimulus {order[0]!r}")
        stimuli[stim] = (np.asarray(sig.values), _sfreq(ds, stim),
                         [str(s) for s in sig["subject"].values])
    out = _run(stimuli, regions, window=cfg["window"], step=cfg["step"], method=cfg["method"], bands=cfg["bands"],
               null=cfg["null"], n_null=cfg["n_null"], n_boot=cfg["n_boot"], seed=cfg["seed"],
               lengths=cfg["lengths"], progress=progress, cluster_alpha=cfg["cluster_alpha"])
    out.attrs["clock_rate"] = float(study.rate)
    out.attrs["bands"] = list(cfg["bands"] or [])
    return out


def run_synchrony(study, *, force: bool = False, progress: bool = True) -> list[str]:
    """Stage ``synchrony``: write the ``synchrony`` store from ``regions``."""
    cfg = dict(study.section("synchrony"))
    _check_clock(cfg, study.rate, "synchrony")
    if cfg["n_null"] < 0 or cfg["n_boot"] < 0:
        raise ConfigError("synchrony.n_null / n_boot: must be >= 0")
    if not 0.0 < cfg["cluster_alpha"] < 0.5:
        raise ConfigError(f"synchrony.cluster_alpha: must be in (0, 0.5), got {cfg['cluster_alpha']}")
    params = {**cfg, "rate": float(study.rate)}
    ws = study.workspace
    if not force and ws.is_current("synchrony", stage="synchrony", params=params, inputs=[cfg["input"]]):
        return ["synchrony"]
    ds = build_synchrony(study, cfg, progress=progress)
    ws.write("synchrony", ds, stage="synchrony", params=params, inputs=[cfg["input"]], progress=progress,
             description=f"sliding-window {cfg['method']} ISC ({cfg['window']:g} s / {cfg['step']:g} s) per region")
    return ["synchrony"]


# ------------------------------------------------------------------- targets
def _rating_sources(study, cfg: dict) -> tuple[pd.DataFrame, list]:
    given = [k for k in ("liris", "table", "files") if cfg[k]]
    if len(given) != 1:
        raise ConfigError("targets: give exactly one of liris (folder), table (one CSV/TSV) or files "
                          f"(stimulus -> CSV/TSV); got {', '.join(given) or 'none'}")
    names = [s.name for s in study.stimuli]
    if cfg["liris"]:
        movies = {str(k): str(v) for k, v in (cfg["movies"] or {n: n for n in names}).items()}
        unknown = [k for k in movies if k not in names]
        if unknown:
            raise ConfigError(f"targets.movies: {unknown[0]!r} is not a stimulus of the study")
        table = read_liris_ratings(cfg["liris"], movies, scales=cfg["scales"] or LIRIS_SCALES)
        return table, [str(cfg["liris"])]
    if cfg["table"]:
        table = read_rating_table(cfg["table"], scale=cfg["scale"])
        return table, [str(cfg["table"])]
    frames, inputs = [], []
    for stim, path in cfg["files"].items():
        if str(stim) not in names:
            raise ConfigError(f"targets.files: {stim!r} is not a stimulus of the study")
        p = study.resolve(path)
        frames.append(read_rating_table(p, stimulus=str(stim), scale=cfg["scale"]))
        inputs.append(str(p))
    return pd.concat(frames, ignore_index=True), inputs


def _stem_durations(study) -> dict[str, float]:
    ws = study.workspace
    tree = ws.open("stems")
    out = {}
    for s in study.stimuli:
        if f"/{s.name}" in tree.groups:
            ds = tree[s.name].to_dataset()
            sr = ds.attrs.get("sr", ds["audio"].attrs.get("sr"))
            if sr:
                out[s.name] = ds.sizes["sample"] / float(sr)
    return out


def build_targets(study, cfg: dict) -> tuple[xr.Dataset, list]:
    """Read the configured ratings and put them on the study's clock.

    Returns
    -------
    (Dataset, inputs)
        ``rating (time, scale)``, ``rating_std``, ``rating_rater (rater, time,
        scale)`` when per-rater traces exist, ``noise_ceiling (scale)``,
        ``agreement (stimulus_name, scale)``; and the input references.
    """
    table, inputs = _rating_sources(study, cfg)
    names = [s.name for s in study.stimuli]
    extra = sorted(set(table["stimulus"]) - set(names))
    if extra:
        raise InputError(f"targets: ratings for stimulus {extra[0]!r}, which is not in the study")
    rated = [n for n in names if n in set(table["stimulus"])]
    unrated = [n for n in names if n not in rated]
    if unrated:
        warnings.warn(f"targets: no ratings for stimulus(es) {', '.join(unrated)}; left out", ISCWarning, stacklevel=2)
    durations = None
    ws = study.workspace
    if cfg["durations"] == "stems" or (cfg["durations"] == "auto" and "stems" in ws):
        if "stems" not in ws:
            raise StoreError("targets.durations: 'stems' asked for but there is no stems store (run stems first)")
        durations = _stem_durations(study)
        inputs = [*inputs, "stems"]
    scales = cfg["scales"]
    if scales and cfg["liris"]:
        scales = [s.lower() for s in scales]
    ds = ratings_to_clock(table, rate=study.rate, durations=durations, stimuli=rated, scales=scales)
    if "rating_rater" in ds:
        agree = rater_agreement(ds["rating_rater"])
        ds["noise_ceiling"] = agree["noise_ceiling"].astype(np.float32)
        ds["agreement"] = agree["agreement"].astype(np.float32)
        ds["noise_ceiling"].attrs["description"] = "leave-one-out inter-rater ISC (Fisher mean over stimuli)"
    else:
        ds["noise_ceiling"] = ("scale", np.full(ds.sizes["scale"], np.nan, dtype=np.float32))
        ds["noise_ceiling"].attrs["description"] = "unknown: only mean ratings were given (no per-rater traces)"
    ds.attrs["clock_rate"] = float(study.rate)
    return ds, inputs


def run_targets(study, *, force: bool = False, progress: bool = True) -> list[str]:
    """Stage ``targets``: write the ``targets`` store from rating files."""
    cfg = dict(study.section("targets"))
    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.items()}
    params["rate"] = float(study.rate)
    ws = study.workspace
    srcs = [str(cfg[k]) for k in ("liris", "table") if cfg[k]] + [
        str(study.resolve(p)) for p in (cfg["files"] or {}).values()]
    use_stems = cfg["durations"] == "stems" or (cfg["durations"] == "auto" and "stems" in ws)
    ident_inputs = srcs + (["stems"] if use_stems else [])
    if not force and srcs and ws.is_current("targets", stage="targets", params=params, inputs=ident_inputs):
        return ["targets"]
    ds, inputs = build_targets(study, cfg)
    ws.write("targets", ds, stage="targets", params=params, inputs=inputs, progress=progress,
             description=f"continuous ratings on the clock ({', '.join(map(str, ds['scale'].values))})")
    return ["targets"]


# ----------------------------------------------------------------------- CLI
@click.command("plot-synchrony")
@click.argument("study_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", help="Folder for the PNG files.")
@click.option("--band", default=None, help="Band to show (band-envelope ISC).")
def plot_command(study_file: str, out_dir: str, band: str | None) -> None:
    """Plot the synchrony (region x time ISC) and targets (rating traces) stores of STUDY_FILE."""
    from ..errors import XaffectError
    from ..study import load_study
    from .plots import plot_isc, plot_ratings

    try:
        ws = load_study(study_file).workspace
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        done = []
        if "synchrony" in ws:
            plot_isc(ws.open("synchrony"), band=band).savefig(out / "synchrony.png", dpi=120)
            done.append(str(out / "synchrony.png"))
        if "targets" in ws:
            plot_ratings(ws.open("targets")).savefig(out / "targets.png", dpi=120)
            done.append(str(out / "targets.png"))
        if not done:
            raise StoreError(f"{ws.url}: neither a synchrony nor a targets store to plot")
    except XaffectError as exc:
        click.echo(f"xaffect: error: {exc}", err=True)
        raise SystemExit(2) from None
    click.echo("\n".join(done))


STAGES = {
    "synchrony": StageSpec(config=SYNCHRONY_CONFIG, run=run_synchrony, requires=("regions",),
                           help="sliding-window inter-subject correlation per region, with surrogate nulls"),
    "targets": StageSpec(config=TARGETS_CONFIG, run=run_targets,
                         help="continuous ratings (LIRIS-ACCEDE or CSV/TSV) on the clock, "
                              "with the inter-rater noise ceiling"),
}
CLI_COMMANDS = [plot_command]
