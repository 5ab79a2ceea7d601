"""A BIDS fMRI study (laid out like OpenNeuro ds003085) to parcel signals on the 1/TR clock.

Layout read (BIDS 1.x, fMRIPrep derivatives optional)::

    root/sub-01/func/sub-01_task-sad_run-1_bold.nii.gz      raw BOLD
    root/sub-01/func/sub-01_task-sad_run-1_bold.json        RepetitionTime (or inherited, e.g. root/task-sad_bold.json)
    root/sub-01/func/sub-01_task-sad_run-1_events.tsv       onset, duration, trial_type (= stimulus name)
    root/derivatives/fmriprep/sub-01/func/
        sub-01_task-sad_run-1_space-<space>_desc-preproc_bold.nii.gz   used instead of the raw run when present
        sub-01_task-sad_run-1_desc-confounds_timeseries.tsv            motion, drift (cosine), wm/csf regressors

The clock (:mod:`xaffect.store.clock`): volume ``k`` of a run stands for the
middle of its acquisition, ``(k + 1/2) TR`` after the run starts (BIDS onsets
count from the start of the first volume; fMRIPrep's slice-timing correction
refers to mid-volume). A stimulus with onset ``o`` and duration ``d`` gets
``floor(d / TR)`` bins; bin ``i`` holds the volume whose centre, minus ``o``,
falls in ``[i TR, (i + 1) TR)``.

BIDS file discovery uses nilearn's BIDS helpers; the sidecar inheritance
principle (metadata of ``task-x_bold.json`` at the root, overridden by more
specific sidecars) is written here because nilearn keeps it private and
pybids is not a dependency.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..store.clock import bin_centres, to_clock
from .fmri import check_atlas_space, fmri_region_signals, read_fmriprep_confounds

__all__ = ["BoldRun", "find_bold_runs", "read_repetition_time", "read_stimulus_events", "cut_stimulus",
           "bids_subject_signals", "bids_region_signals", "stack_subjects", "run_files"]


@dataclass(frozen=True)
class BoldRun:
    """One BOLD run of a BIDS study.

    Attributes
    ----------
    subject, task : str
        BIDS labels (``sub-``/``task-`` without the prefix).
    run, session : str or None
    raw : Path
        The raw ``*_bold.nii.gz``.
    bold : Path
        The image to read: fMRIPrep's ``desc-preproc`` run when there is one, else ``raw``.
    events : Path or None
        The run's ``*_events.tsv``.
    t_r : float
        RepetitionTime (s) from the sidecars.
    fmriprep : bool
        Whether ``bold`` is an fMRIPrep derivative (with its confounds TSV).
    """

    subject: str
    task: str
    run: str | None
    session: str | None
    raw: Path
    bold: Path
    events: Path | None
    t_r: float
    fmriprep: bool

    @property
    def name(self) -> str:
        """The run's BIDS stem, e.g. ``sub-01_task-sad_run-1``."""
        return self.raw.name.split("_bold.")[0]


def _entities(path: Path) -> dict[str, str]:
    from nilearn.interfaces.bids import parse_bids_filename

    return dict(parse_bids_filename(str(path))["entities"])


def _bold_sidecars(bold: Path, root: Path) -> list[Path]:
    """The ``*_bold.json`` sidecars that apply to a run, least specific first (BIDS inheritance)."""
    ents = _entities(bold)
    parts = bold.relative_to(root).parts
    folders = [root] + [root / Path(*parts[:i]) for i in range(1, len(parts))]
    found = []
    for folder in folders:
        here = []
        for js in sorted(folder.glob("*bold.json")):
            if not (js.name.endswith("_bold.json") or js.name == "bold.json"):
                continue
            own = _entities(js) if "-" in js.name else {}
            if all(ents.get(k) == v for k, v in own.items()):
                here.append((len(own), js))
        found += [js for _, js in sorted(here)]
    return found


def read_repetition_time(bold: str | os.PathLike, root: str | os.PathLike) -> float:
    """RepetitionTime of a BOLD run from its JSON sidecars (BIDS inheritance).

    Parameters
    ----------
    bold : path
        ``*_bold.nii[.gz]`` inside ``root``.
    root : path
        The BIDS root.

    Returns
    -------
    float
        Seconds.

    Raises
    ------
    InputError
        Naming the bold file and the key ``RepetitionTime`` when no sidecar gives it.
    """
    bold, root = Path(bold), Path(root)
    meta: dict[str, Any] = {}
    for js in _bold_sidecars(bold, root):
        try:
            meta.update(json.loads(js.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{js}: unreadable JSON sidecar ({exc})") from None
    t_r = meta.get("RepetitionTime")
    if t_r is None:
        raise InputError(f"{bold}: no RepetitionTime in its JSON sidecars (BIDS key 'RepetitionTime')")
    try:
        t_r = float(t_r)
    except (TypeError, ValueError):
        raise InputError(f"{bold}: RepetitionTime {t_r!r} is not a number") from None
    if not t_r > 0:
        raise InputError(f"{bold}: RepetitionTime must be positive, got {t_r}")
    return t_r


def run_files(runs: Sequence[BoldRun], root: str | os.PathLike) -> list[Path]:
    """Every file the runs' signals depend on (images, sidecars, events, fMRIPrep confounds), for provenance."""
    root = Path(root).expanduser()
    files: list[Path] = []
    for r in runs:
        files += [r.bold, *_bold_sidecars(r.raw, root)]
        if r.events is not None:
            files.append(r.events)
        if r.fmriprep:
            files += sorted(r.bold.parent.glob(f"{r.name}*_desc-confounds_*.tsv"))
    return list(dict.fromkeys(files))


def find_bold_runs(root: str | os.PathLike, *, subjects: Sequence[str] | None = None,
                   tasks: Sequence[str] | None = None, space: str | None = None,
                   derivatives: str | os.PathLike | None = "derivatives/fmriprep") -> list[BoldRun]:
    """Every BOLD run of a BIDS study, with its TR, events and fMRIPrep derivative.

    Parameters
    ----------
    root : path
        The BIDS root (holding ``sub-*/``).
    subjects, tasks : list of str, optional
        Labels to keep (with or without the ``sub-``/``task-`` prefix); default all.
    space : str, optional
        fMRIPrep output space (``space-<space>``) to use; needed when a run has
        preprocessed images in several spaces.
    derivatives : path, optional
        fMRIPrep folder, relative to ``root`` or absolute; None to read raw runs only.

    Returns
    -------
    list of BoldRun
        Sorted by subject, task, run.

    Raises
    ------
    InputError
        No runs, a run without RepetitionTime, or runs of different TRs (naming both files).
    """
    from nilearn.interfaces.bids import get_bids_files

    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"{root}: BIDS root is not a folder")
    subjects = [s.removeprefix("sub-") for s in subjects] if subjects else None
    tasks = [t.removeprefix("task-") for t in tasks] if tasks else None
    deriv = None if derivatives is None else (root / derivatives if not Path(derivatives).is_absolute()
                                              else Path(derivatives))
    raws = []
    for ses_folder in (False, True):  # sub-*/func and sub-*/ses-*/func
        pattern = "sub-*/ses-*/func/*_bold.nii*" if ses_folder else "sub-*/func/*_bold.nii*"
        raws += sorted(root.glob(pattern))
    runs: list[BoldRun] = []
    for raw in raws:
        ents = _entities(raw)
        if "task" not in ents or (subjects and ents.get("sub") not in subjects) or (
                tasks and ents["task"] not in tasks):
            continue
        stem = raw.name.split("_bold.")[0]
        events = raw.parent / f"{stem}_events.tsv"
        prep, is_prep = raw, False
        if deriv is not None and deriv.is_dir():
            filters = [(k, ents[k]) for k in ("ses", "task", "acq", "ce", "dir", "rec", "run", "echo") if k in ents]
            if space:
                filters.append(("space", space))
            found = [Path(p) for p in get_bids_files(str(deriv), file_tag="bold", file_type="nii*",
                                                     sub_label=ents["sub"], modality_folder="func", filters=filters)
                     if "_desc-preproc_" in Path(p).name]
            if len(found) > 1:
                spaces = sorted({_entities(p).get("space", "?") for p in found})
                raise InputError(f"{stem}: fMRIPrep has it in spaces {spaces}; set the space (config key "
                                 f"'bids_space')")
            if found:
                prep, is_prep = found[0], True
        runs.append(BoldRun(subject=ents["sub"], task=ents["task"], run=ents.get("run"), session=ents.get("ses"),
                            raw=raw, bold=prep, events=events if events.exists() else None,
                            t_r=read_repetition_time(raw, root), fmriprep=is_prep))
    if not runs:
        want = f" (subjects {subjects}, tasks {tasks})" if subjects or tasks else ""
        raise InputError(f"{root}: no BOLD run (sub-*/func/*_bold.nii.gz){want}")
    first = runs[0]
    for r in runs[1:]:
        if abs(r.t_r - first.t_r) > 1e-6:
            raise InputError(f"{r.raw}: RepetitionTime {r.t_r:g} s differs from {first.raw.name}'s {first.t_r:g} s "
                             f"(runs of one study must share the 1/TR clock)")
    return runs


def read_stimulus_events(run: BoldRun, stimuli: Sequence[str] | None = None, *,
                         column: str = "trial_type") -> list[tuple[str, float, float]]:
    """The stimuli a run plays, from its ``events.tsv``.

    Parameters
    ----------
    run : BoldRun
    stimuli : list of str, optional
        Stimulus names of the study; rows naming others are ignored (default: keep all).
    column : str
        The events column holding the stimulus name.

    Returns
    -------
    list of (stimulus, onset, duration)
        Seconds from the start of the run.
    """
    import pandas as pd

    if run.events is None:
        raise InputError(f"{run.name}: no events file {run.name}_events.tsv next to {run.raw.name}")
    try:
        table = pd.read_csv(run.events, sep="\t")
    except Exception as exc:  # pandas raises several types for malformed tables
        raise InputError(f"{run.events}: cannot read events TSV ({exc})") from None
    missing = [c for c in ("onset", "duration", column) if c not in table.columns]
    if missing:
        raise InputError(f"{run.events}: no column(s) {', '.join(missing)} (stimulus column: config key "
                         f"'stimulus_column')")
    rows = []
    for _, row in table.iterrows():
        name = str(row[column])
        if stimuli is not None and name not in stimuli:
            continue
        onset, duration = float(row["onset"]), float(row["duration"])
        if not (np.isfinite(onset) and np.isfinite(duration)) or onset < 0 or duration <= 0:
            raise InputError(f"{run.events}: stimulus {name!r} has onset {onset} and duration {duration}")
        rows.append((name, onset, duration))
    if not rows:
        seen = sorted({str(v) for v in table[column]})[:8]
        raise InputError(f"{run.events}: no row of column {column!r} names a stimulus of the study "
                         f"(found {seen})")
    return rows


def cut_stimulus(signals: xr.DataArray, *, onset: float, duration: float, who: str = "run") -> xr.DataArray:
    """One stimulus's part of a run's region signals, on the analysis clock at 1/TR.

    Parameters
    ----------
    signals : xarray.DataArray of shape (time, region)
        One value per volume, attrs ``t_r`` (as :func:`~xaffect.neural.fmri.fmri_region_signals` returns).
    onset, duration : float
        Seconds from the start of the run.
    who : str
        Run and stimulus named in errors.

    Returns
    -------
    xarray.DataArray of shape (time, region)
        ``floor(duration / TR)`` bins; coord ``onset`` (bin centres, s from the stimulus start);
        attrs ``sfreq`` = ``clock_rate`` = 1/TR, ``t_r``, ``stimulus_onset``.
    """
    t_r = float(signals.attrs["t_r"])
    rate = 1.0 / t_r
    n_vol = signals.sizes["time"]
    centres = (np.arange(n_vol) + 0.5) * t_r - onset
    values = to_clock(signals.transpose("time", "region").values, centres, rate=rate, duration=duration)
    if values.shape[0] == 0:
        raise InputError(f"{who}: the stimulus lasts {duration:g} s, shorter than one TR ({t_r:g} s)")
    empty = ~np.isfinite(values).all(axis=1)
    if empty.any():
        raise InputError(f"{who}: the run's {n_vol} volumes ({n_vol * t_r:g} s) do not cover the stimulus "
                         f"(onset {onset:g} s, duration {duration:g} s): bins {np.flatnonzero(empty)[:5].tolist()} "
                         f"have no volume")
    attrs = dict(signals.attrs, sfreq=rate, clock_rate=rate, stimulus_onset=float(onset))
    return xr.DataArray(values.astype(np.float32), dims=("time", "region"),
                        coords={"region": signals["region"].values, "onset": ("time", bin_centres(len(values), rate))},
                        name="signal", attrs=attrs)


def bids_subject_signals(runs: Sequence[BoldRun], atlas: Any, names: Any, *, stimuli: Sequence[str] | None = None,
                         stimulus_column: str = "trial_type",
                         confound_strategy: Sequence[str] = ("motion", "high_pass", "wm_csf"),
                         motion: str = "full", high_pass: float | None = 0.01, detrend: bool = True,
                         standardize: bool = False, durations: Mapping[str, float] | None = None
                         ) -> dict[str, xr.DataArray]:
    """One subject's parcel signals per stimulus, confounds regressed, on the 1/TR clock.

    Parameters
    ----------
    runs : list of BoldRun
        The subject's runs (:func:`find_bold_runs`).
    atlas : path or nibabel image
        Integer labels image on the bold images' voxel grid.
    names : see :func:`~xaffect.neural.fmri.atlas_names`
    stimuli : list of str, optional
        Stimulus names to keep (default: every name in the events' ``stimulus_column``).
    stimulus_column : str
        Events column naming the stimulus.
    confound_strategy : list of str
        fMRIPrep components regressed out when the run has fMRIPrep
        confounds (:func:`~xaffect.neural.fmri.read_fmriprep_confounds`).
        Raw runs get drift removal only (``detrend`` and the cosine ``high_pass``).
    motion : str
        Motion expansion (``basic`` 6, ``derivatives`` 12, ``full`` 24 regressors).
    high_pass : float, optional
        Cosine high-pass (Hz) of nilearn's cleaning; skipped when fMRIPrep's
        cosine regressors are in the confounds.
    detrend, standardize : bool
        As in nilearn's signal cleaning.
    durations : mapping of str to float, optional
        Stimulus durations (s) from the audio; an events duration more than one
        TR away from it is refused (naming the events file).

    Returns
    -------
    dict of str to xarray.DataArray of shape (time, region)
        Stimulus name to its clock-rate signals (see :func:`cut_stimulus`);
        attrs ``confounds`` lists what was regressed out.
    """
    out: dict[str, xr.DataArray] = {}
    where: dict[str, str] = {}
    for run in runs:
        events = read_stimulus_events(run, stimuli, column=stimulus_column)
        for stim, _, duration in events:  # checked before any image is read
            want = (durations or {}).get(stim)
            if want is not None and abs(duration - want) > run.t_r:
                raise InputError(f"{run.events}: stimulus {stim!r} lasts {duration:g} s in the events but "
                                 f"{want:g} s in its audio")
        check_atlas_space(atlas, run.bold, atlas_where=str(atlas) if isinstance(atlas, (str, os.PathLike)) else "atlas",
                          bold_where=str(run.bold))
        confounds, cut_off, used = None, high_pass, ["linear trend" if detrend else None]
        if run.fmriprep:
            confounds = read_fmriprep_confounds(run.bold, strategy=confound_strategy, motion=motion, who=run.name)
            if any(c.startswith("cosine") for c in confounds.columns):
                cut_off = None  # fMRIPrep's cosine regressors already remove the drift
            used += list(confounds.columns)
        if cut_off:
            used.append(f"cosine high-pass {cut_off:g} Hz")
        signals = fmri_region_signals(run.bold, atlas, names, confounds=confounds, t_r=run.t_r, high_pass=cut_off,
                                      detrend=detrend, standardize=standardize, who=run.name)
        for stim, onset, duration in events:
            if stim in out:
                raise InputError(f"{run.name}: stimulus {stim!r} was already played in {where[stim]} "
                                 f"(one run per stimulus and subject)")
            part = cut_stimulus(signals, onset=onset, duration=duration, who=f"{run.name}, stimulus {stim!r}")
            part.attrs.update(run=run.name, bold=str(run.bold), confounds=", ".join(u for u in used if u))
            out[stim], where[stim] = part, run.name
    return out


def bids_region_signals(root: str | os.PathLike, atlas: Any, names: Any, *, stimuli: Sequence[str] | None = None,
                        subjects: Sequence[str] | None = None, tasks: Sequence[str] | None = None,
                        space: str | None = None, derivatives: str | os.PathLike | None = "derivatives/fmriprep",
                        **kwargs: Any) -> dict[str, xr.DataArray]:
    """A BIDS fMRI study's parcel signals, the ``regions`` store's per-stimulus groups.

    Parameters
    ----------
    root : path
        BIDS root.
    atlas, names
        Labels image in the bold images' space, and its region names.
    stimuli, subjects, tasks, space, derivatives
        See :func:`find_bold_runs` and :func:`bids_subject_signals`.
    **kwargs
        Passed to :func:`bids_subject_signals` (``stimulus_column``,
        ``confound_strategy``, ``motion``, ``high_pass``, ``detrend``, ``standardize``).

    Returns
    -------
    dict of str to xarray.DataArray of shape (subject, sample, region)
        float32, attrs ``sfreq`` (1/TR); coord ``onset`` along ``sample`` (bin centres, s).
    """
    runs = find_bold_runs(root, subjects=subjects, tasks=tasks, space=space, derivatives=derivatives)
    by_subject: dict[str, list[BoldRun]] = {}
    for r in runs:
        by_subject.setdefault(f"sub-{r.subject}", []).append(r)
    per_subject = {s: bids_subject_signals(rs, atlas, names, stimuli=stimuli, **kwargs) for s, rs in by_subject.items()}
    return stack_subjects(per_subject)


def stack_subjects(per_subject: Mapping[str, Mapping[str, xr.DataArray]]) -> dict[str, xr.DataArray]:
    """Stack subjects' clock-rate signals per stimulus: (subject, sample, region).

    A stimulus whose subjects differ by more than one bin (events of different
    durations) is refused, naming both subjects.
    """
    stims = list(dict.fromkeys(k for d in per_subject.values() for k in d))
    out = {}
    for stim in stims:
        have = [(s, d[stim]) for s, d in per_subject.items() if stim in d]
        ref_s, ref = have[0]
        for s, a in have[1:]:
            if abs(a.sizes["time"] - ref.sizes["time"]) > 1:
                raise InputError(f"stimulus {stim!r}: {s} has {a.sizes['time']} bins but {ref_s} has "
                                 f"{ref.sizes['time']} (their events give different durations)")
            if list(a["region"].values) != list(ref["region"].values):
                raise InputError(f"stimulus {stim!r}: {s}'s regions differ from {ref_s}'s")
        n = min(a.sizes["time"] for _, a in have)
        data = np.stack([a.values[:n] for _, a in have]).astype(np.float32)
        out[stim] = xr.DataArray(data, dims=("subject", "sample", "region"),
                                 coords={"subject": [s for s, _ in have], "region": ref["region"].values,
                                         "onset": ("sample", ref["onset"].values[:n])},
                                 name="signal", attrs={k: ref.attrs[k] for k in ("sfreq", "t_r", "clock_rate")})
    return out
