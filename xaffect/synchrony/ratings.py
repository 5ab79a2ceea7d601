"""Continuous ratings as targets on the analysis clock.

Readers give one long table (``stimulus, scale, rater, onset, rating``);
:func:`ratings_to_clock` puts every rater's trace on the clock (mean of the
samples in each bin, linear interpolation for bins that got none) and
averages raters; :func:`rater_agreement` gives the leave-one-out ISC of the
raters, the behavioural noise ceiling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ..store.clock import concat_stimuli, n_bins, to_clock
from . import _kernels as K

__all__ = ["read_liris_ratings", "read_rating_table", "ratings_to_clock", "rater_agreement", "LIRIS_SCALES"]

LIRIS_SCALES = ("arousal", "valence")
_COLUMNS = ("stimulus", "scale", "rater", "onset", "rating", "source")


def _find(folder: Path, movie: str, scale: str) -> Path:
    want = f"{movie}_{scale}.txt".lower()
    hits = [p for p in folder.iterdir() if p.name.lower() == want] if folder.is_dir() else []
    if not hits:
        raise InputError(f"{folder}: no LIRIS-ACCEDE annotation {movie}_{scale.capitalize()}.txt for movie {movie!r}")
    return hits[0]


def _read_liris_file(path: Path) -> pd.DataFrame:
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if len(lines) < 2:
        raise InputError(f"{path}: no annotation rows (expected a header then time/mean/std rows)")
    header = [h.lower() for h in lines[0].split()]
    col = {k: header.index(k) for k in ("time", "mean", "std") if k in header}
    if len(col) < 2:
        col = {"time": 0, "mean": 1, "std": 2}  # positional
    rows = []
    for i, ln in enumerate(lines[1:], start=2):
        parts = ln.split()
        try:
            rows.append((float(parts[col["time"]]), float(parts[col["mean"]]),
                         float(parts[col["std"]]) if "std" in col and len(parts) > col["std"] else np.nan))
        except (ValueError, IndexError):
            raise InputError(f"{path}: line {i}: expected numbers time mean std, got {ln.strip()!r}") from None
    df = pd.DataFrame(rows, columns=["onset", "rating", "std"])
    if (np.diff(df["onset"].to_numpy()) <= 0).any():
        raise InputError(f"{path}: times must increase")
    return df


def read_liris_ratings(folder: str | Path, movies: Mapping[str, str] | Sequence[str], *,
                       scales: Sequence[str] = LIRIS_SCALES) -> pd.DataFrame:
    """Read LIRIS-ACCEDE continuous annotations (``<movie>_Arousal.txt`` ...).

    Each file holds a header and whitespace-separated rows ``time mean std``
    (per-second mean rating over annotators and its standard deviation).

    Parameters
    ----------
    folder : path
        Folder of the annotation files.
    movies : mapping stimulus -> movie name, or list of names (stimulus = movie)
    scales : list of str
        Scales to read (file suffixes, case-insensitive).

    Returns
    -------
    DataFrame
        Columns ``stimulus, scale, rater, onset, rating, std, source``; rater
        is ``"mean"`` (LIRIS-ACCEDE gives no per-rater traces); ``source`` is
        the annotation file (named in errors).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: LIRIS-ACCEDE annotation folder does not exist")
    pairs = movies.items() if isinstance(movies, Mapping) else [(m, m) for m in movies]
    frames = []
    for stim, movie in pairs:
        for scale in scales:
            path = _find(folder, str(movie), str(scale))
            df = _read_liris_file(path)
            df.insert(0, "rater", "mean")
            df.insert(0, "scale", str(scale).lower())
            df.insert(0, "stimulus", str(stim))
            df["source"] = str(path)
            frames.append(df)
    return pd.concat(frames, ignore_index=True)


def read_rating_table(path: str | Path, *, stimulus: str | None = None, scale: str = "rating") -> pd.DataFrame:
    """Read a generic CSV/TSV of continuous ratings.

    Parameters
    ----------
    path : path
        Columns ``onset`` (seconds from the stimulus start), ``rating`` and
        ``rater``; optional ``stimulus`` and ``scale`` (column names are
        case-insensitive; the separator is guessed).
    stimulus : str, optional
        Stimulus of every row when the file has no ``stimulus`` column.
    scale : str
        Scale of every row when the file has no ``scale`` column.

    Returns
    -------
    DataFrame
        Columns ``stimulus, scale, rater, onset, rating, source`` (``source``
        is ``path``, named in errors).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: rating file does not exist")
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ("," if path.suffix.lower() == ".csv" else None)
    try:
        df = pd.read_csv(path, sep=sep, engine="python")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot parse as CSV/TSV ({exc})") from None
    df.columns = [re.sub(r"\s+", "", str(c)).lower() for c in df.columns]
    missing = [c for c in ("onset", "rating", "rater") if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (have: {', '.join(df.columns)})")
    if "stimulus" not in df.columns:
        if stimulus is None:
            raise InputError(f"{path}: no 'stimulus' column; say which stimulus this file rates")
        df["stimulus"] = stimulus
    if "scale" not in df.columns:
        df["scale"] = scale
    for c in ("onset", "rating"):
        vals = pd.to_numeric(df[c], errors="coerce")
        bad = vals.isna() & df[c].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{path}: row {i + 2}: {c} {df[c].iloc[i]!r} is not a number")
        df[c] = vals
    if (df["onset"] < 0).any():
        raise InputError(f"{path}: negative onsets (onset is seconds from the stimulus start)")
    for c in ("stimulus", "scale", "rater"):
        df[c] = df[c].astype(str)
    df["source"] = str(path)
    return df[list(_COLUMNS)].reset_index(drop=True)


def _check_onsets_fit(sub: pd.DataFrame, duration: float, stimulus: str) -> None:
    """Refuse a rating file whose onsets, all but the first, lie past the stimulus end.

    That is the signature of onsets written in milliseconds (or samples):
    taken as seconds they would put every rating but the one at 0 after the
    stimulus, and the clock would silently hold one interpolated value.
    """
    by_source = sub.groupby("source", sort=False) if "source" in sub else [("the rating table", sub)]
    for source, part in by_source:
        onsets = np.unique(part["onset"].to_numpy(float))
        if onsets.size >= 2 and (onsets[1:] > duration).all():
            hint = (f"; in milliseconds they would end at {onsets[-1] / 1000:.3f} s, so divide them by 1000"
                    if onsets[-1] / 1000.0 <= duration * 1.05 + 1.0 else "")
            raise InputError(f"{source}: rating onsets for stimulus {stimulus!r} run from {onsets[0]:g} to "
                             f"{onsets[-1]:g} but the stimulus lasts {duration:.3f} s: all but the first are past "
                             f"its end; onsets must be seconds from the stimulus start{hint}")


def _duration(times: np.ndarray) -> float:
    if times.size > 1:
        return float(times.max() + np.median(np.diff(np.sort(np.unique(times)))))
    return float(times.max()) + 1.0


def ratings_to_clock(table: pd.DataFrame, *, rate: float = 1.0, durations: Mapping[str, float] | None = None,
                     stimuli: Sequence[str] | None = None, scales: Sequence[str] | None = None) -> xr.Dataset:
    """Put per-rater rating traces on the analysis clock.

    Parameters
    ----------
    table : DataFrame
        Columns ``stimulus, scale, rater, onset, rating`` (optional ``std``).
    rate : float
        Clock rate in Hz.
    durations : mapping stimulus -> seconds, optional
        Stimulus durations (default: last onset plus one rating interval). A
        rating file (``source`` column) whose onsets all but the first lie
        past its stimulus's end (onsets in milliseconds) is refused.
    stimuli, scales : list of str, optional
        Order (and subset) of stimuli and scales (default: as they appear).

    Returns
    -------
    Dataset
        ``rating (time, scale)`` (mean over raters), ``rating_rater (rater,
        time, scale)`` (when there are per-rater traces), ``rating_std (time,
        scale)`` (across raters, or from the file); coordinates ``stimulus``,
        ``onset``; attr ``clock_rate``.
    """
    if table.empty:
        raise InputError("ratings: the rating table is empty")
    stimuli = list(stimuli) if stimuli is not None else list(pd.unique(table["stimulus"]))
    scales = list(scales) if scales is not None else list(pd.unique(table["scale"]))
    raters = list(pd.unique(table["rater"]))
    for s in scales:
        if s not in set(table["scale"]):
            raise InputError(f"ratings: no ratings for scale {s!r} (have: {', '.join(pd.unique(table['scale']))})")
    per_rater = raters != ["mean"]
    parts = {}
    for stim in stimuli:
        sub = table[table["stimulus"] == stim]
        if sub.empty:
            raise InputError(f"ratings: no ratings for stimulus {stim!r}")
        dur = (durations or {}).get(stim) or _duration(sub["onset"].to_numpy())
        if durations and stim in durations:
            _check_onsets_fit(sub, float(dur), stim)
        nb = n_bins(dur, rate)
        if nb < 1:
            raise InputError(f"stimulus {stim!r}: shorter ({dur:.3f} s) than one clock bin at {rate} Hz")
        cube = np.full((len(raters), nb, len(scales)), np.nan)
        std = np.full((nb, len(scales)), np.nan)
        for j, sc in enumerate(scales):
            for i, rater in enumerate(raters):
                tr = sub[(sub["scale"] == sc) & (sub["rater"] == rater)].dropna(subset=["rating"])
                if tr.empty:
                    continue
                t = tr["onset"].to_numpy(float)
                cube[i, :, j] = to_clock(tr["rating"].to_numpy(float), t, rate=rate, duration=dur,
                                         empty="interpolate")
                if not per_rater and "std" in tr:
                    std[:, j] = to_clock(tr["std"].to_numpy(float), t, rate=rate, duration=dur, empty="interpolate")
        with np.errstate(invalid="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(cube, axis=0)
                if per_rater:
                    std = np.nanstd(cube, axis=0)
        ds = xr.Dataset({"rating": (("time", "scale"), mean.astype(np.float32)),
                         "rating_std": (("time", "scale"), std.astype(np.float32))},
                        coords={"scale": scales, "onset": ("time", (np.arange(nb) + 0.5) / rate)})
        if per_rater:
            ds["rating_rater"] = (("rater", "time", "scale"), cube.astype(np.float32))
            ds = ds.assign_coords(rater=[str(r) for r in raters])
        parts[stim] = ds
    out = concat_stimuli(parts)
    out.attrs["clock_rate"] = float(rate)
    return out


def rater_agreement(rating_rater: xr.DataArray) -> xr.Dataset:
    """Inter-rater agreement: leave-one-out ISC of the raters.

    Per stimulus and scale, each rater's clock trace is correlated with the
    mean of the other raters (raters without a complete trace for that
    stimulus are left out), and the correlations are averaged through
    Fisher's z; stimuli are then averaged the same way.

    Parameters
    ----------
    rating_rater : DataArray of dims (rater, time, scale)
        With a ``stimulus`` coordinate along time.

    Returns
    -------
    Dataset
        ``agreement (stimulus_name, scale)`` and ``noise_ceiling (scale)``; NaN
        where fewer than two raters rated.
    """
    da = rating_rater.transpose("rater", "time", "scale")
    names = np.asarray(da["stimulus"].values).astype(str)
    stims = list(pd.unique(names))
    agree = np.full((len(stims), da.sizes["scale"]), np.nan)
    values = np.asarray(da.values, dtype=np.float64)
    for k, stim in enumerate(stims):
        x = values[:, names == stim]  # (rater, time, scale)
        valid = ~np.isnan(x).any(axis=1)
        if x.shape[1] < 3:
            continue
        r = K.loo_direct(x, valid, min_subjects=2)
        agree[k] = K.fisher_mean(r, axis=0)
    ceiling = K.fisher_mean(agree, axis=0)
    return xr.Dataset({"agreement": (("stimulus_name", "scale"), agree), "noise_ceiling": (("scale",), ceiling)},
                      coords={"stimulus_name": stims, "scale": da["scale"].values})
