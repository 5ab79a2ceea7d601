"""The ``regions`` stage: EEG or fMRI recordings to the ``regions`` store.

``study.yaml``::

    regions:
      kind: eeg                       # or fmri
      recordings:                     # one item per file
        - {subject: sub-01, path: eeg/sub-01.fif}          # stimuli cut by annotations
        - {subject: sub-02, path: eeg/sub-02.vhdr}
        - {subject: sub-03, path: seed/3_20140603.mat}     # SEED: clip N -> seed_clips[N-1]
        - {subject: sub-04, path: eeg/s4-clip01.edf, stimulus: clip01}  # whole file = one stimulus
      subjects_dir: anatomy           # FreeSurfer SUBJECTS_DIR
      subject: xaffect-synth          # written there on first use; or fsaverage
      parc: aparc
      method: eLORETA
      mode: mean_flip
      preprocess: {l_freq: 0.5, h_freq: 45, notch: 50, resample: 100, ica: 15}

    regions:                          # fMRI
      kind: fmri
      recordings: [{subject: sub-01, path: bold/sub-01_clip01_bold.nii.gz, stimulus: clip01,
                    confounds: bold/sub-01_clip01_confounds.tsv}]
      atlas: atlas/labels.nii.gz
      atlas_names: atlas/names.txt

The store is a DataTree with one group per stimulus holding
``signal (subject, sample, region)`` (float32, attrs ``sfreq``). Subjects run
in parallel as dask tasks; the store is skipped when its identity is current.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..config import REQUIRED, Field, StageSpec
from ..errors import ConfigError, InputError
from .preprocess import PREPROCESS_DEFAULTS

__all__ = ["STAGES", "CLI_COMMANDS", "build_regions"]

_RECORDING = {
    "subject": Field(str, default=REQUIRED, help="subject id, e.g. sub-01"),
    "path": Field(Path, default=REQUIRED, must_exist=True, help="EEG file (any MNE format, SEED .mat) or BOLD NIfTI"),
    "format": Field(str, default=None, help="fif | edf | bdf | brainvision | eeglab | seed (default: from extension)"),
    "stimulus": Field(str, default=None, help="the whole recording is this stimulus (else: annotations)"),
    "confounds": Field(Path, default=None, must_exist=True, help="fMRI confounds TSV"),
}
_PREPROCESS = {
    "l_freq": Field((float, None), default=PREPROCESS_DEFAULTS["l_freq"], help="high-pass edge (Hz)"),
    "h_freq": Field((float, None), default=PREPROCESS_DEFAULTS["h_freq"], help="low-pass edge (Hz)"),
    "notch": Field((float, list, None), default=None, help="line-noise frequencies (Hz)"),
    "reference": Field((str, None), default="average", choices=("average", None), help="average reference"),
    "resample": Field((float, None), default=None, help="new sampling rate (Hz)"),
    "bad_channels": Field((str, list, None), default="auto", help="auto | list of names | null"),
    "bad_z": Field(float, default=5.0, help="robust z threshold of the bad-channel detector"),
    "bad_corr": Field((float, None), default=0.4, help="minimum correlation with another channel"),
    "interpolate": Field(bool, default=True, help="interpolate bad channels"),
    "ica": Field((int, float, None), default=None, help="ICA components (null: no ICA)"),
    "ica_method": Field(str, default="fastica", choices=("fastica", "infomax", "picard")),
    "ica_exclude": Field((str, list), default="eog", help="eog | list of component indices"),
    "seed": Field(int, default=0, help="ICA random state"),
}
CONFIG = {
    "kind": Field(str, default="eeg", choices=("eeg", "fmri"), help="eeg | fmri"),
    "recordings": Field(list, default=None, item=_RECORDING,
                        help="list of {subject, path[, stimulus, format]} (fMRI: or `bids`)"),
    "seed_clips": Field(list, default=None, help="SEED: stimulus name of clip 1, 2, … (default: study order)"),
    "subjects_dir": Field(Path, default=None, help="FreeSurfer SUBJECTS_DIR"),
    "subject": Field(str, default="fsaverage", help="anatomy: fsaverage or xaffect-synth (written if missing)"),
    "parc": Field(str, default="aparc", help="annotation (aparc: 68 Desikan–Killiany regions)"),
    "method": Field(str, default="eLORETA", choices=("eLORETA", "sLORETA", "dSPM", "MNE")),
    "mode": Field(str, default="mean_flip", choices=("mean_flip", "mean", "pca_flip", "max", "auto")),
    "snr": Field(float, default=3.0, help="lambda2 = 1/snr**2"),
    "noise_cov": Field((str, list), default="ad-hoc", help="ad-hoc | identity | [tmin, tmax] baseline"),
    "spacing": Field(str, default="oct5", help="source spacing"),
    "bem": Field(str, default="auto", help="auto | sphere | path to a BEM solution"),
    "preprocess": Field((dict, None), default=None, item=_PREPROCESS, help="EEG preprocessing steps"),
    "atlas": Field(Path, default=None, must_exist=True, help="fMRI labels image"),
    "atlas_names": Field((Path, list), default=None, help="fMRI region names (file or list)"),
    "confound_columns": Field(list, default=None, help="fMRI confound columns to regress (default: all)"),
    "t_r": Field((float, None), default=None, help="fMRI repetition time (default: header)"),
    "high_pass": Field((float, None), default=0.01, help="fMRI high-pass (Hz)"),
    "detrend": Field(bool, default=True),
    "standardize": Field(bool, default=False),
    "bids": Field(Path, default=None, must_exist=True, help="fMRI: BIDS root (bold runs, events.tsv, JSON sidecars)"),
    "bids_space": Field(str, default=None, help="fMRI: fMRIPrep space-<label> of the preprocessed runs"),
    "bids_derivatives": Field(str, default="derivatives/fmriprep", help="fMRI: fMRIPrep folder (relative to bids)"),
    "bids_subjects": Field(list, default=None, help="fMRI: BIDS subjects to read (default all)"),
    "bids_tasks": Field(list, default=None, help="fMRI: BIDS tasks to read (default all)"),
    "stimulus_column": Field(str, default="trial_type", help="fMRI: events.tsv column naming the stimulus"),
    "confound_strategy": Field(list, default=("motion", "high_pass", "wm_csf"),
                               help="fMRI: fMRIPrep confound components (nilearn load_confounds)"),
    "motion": Field(str, default="full", choices=("basic", "derivatives", "power2", "full"),
                    help="fMRI: motion regressors 6/12/12/24"),
}


def _stimulus_durations(study: Any) -> dict[str, float]:
    """Durations (s) of the stimuli, from the ``stems`` store when there is one."""
    ws = study.workspace
    if "stems" not in ws:
        return {}
    out = {}
    for s in study.stimuli:
        try:
            g = ws.open("stems", group=s.name)
            out[s.name] = g.sizes["sample"] / float(g.attrs.get("sr") or g["audio"].attrs["sr"])
        except (KeyError, OSError, ValueError):
            continue
    return out


class _Anatomy:
    """Forward models shared between subjects with the same sensors (thread-safe)."""

    def __init__(self, cfg: Mapping[str, Any]):
        from .source import region_labels

        self.cfg = cfg
        self.lock = threading.Lock()
        self.forwards: dict[Any, Any] = {}
        self.labels = region_labels(subjects_dir=cfg["subjects_dir"], subject=cfg["subject"], parc=cfg["parc"])

    def __getstate__(self) -> dict:
        # shipped to dask workers with each subject's task: the labels and the
        # forward models made so far travel, the lock is made anew there
        return {"cfg": self.cfg, "forwards": dict(self.forwards), "labels": self.labels}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.lock = threading.Lock()

    def forward(self, info: Any) -> Any:
        from .source import forward_model

        key = tuple((ch["ch_name"], *np.round(ch["loc"][:3], 6)) for ch in info["chs"])
        with self.lock:
            if key not in self.forwards:
                self.forwards[key] = forward_model(info, subjects_dir=self.cfg["subjects_dir"],
                                                   subject=self.cfg["subject"], spacing=self.cfg["spacing"],
                                                   bem=self.cfg["bem"])
            return self.forwards[key]


def _eeg_subject(subject: str, recs: list[dict], cfg: Mapping[str, Any], stimuli: list[str],
                 durations: Mapping[str, float], anatomy: _Anatomy) -> tuple[dict[str, xr.DataArray], Any]:
    """Read, clean and source-localise one subject's recordings.

    Returns stimulus -> (time, region), and the cross-talk (region, region_source)
    of the subject's inverse (mean over its channel sets; None without a linear region filter).
    """
    from .crosstalk import region_crosstalk
    from .io import annotation_index, read_eeg, read_seed_mat, segment_stimuli
    from .preprocess import preprocess
    from .source import region_signals

    pre = cfg["preprocess"]
    segments: dict[str, Any] = {}
    for rec in recs:
        who = f"subject {subject} ({Path(rec['path']).name})"
        fmt = rec["format"] or ("seed" if str(rec["path"]).lower().endswith(".mat") else None)
        if fmt == "seed":
            clips = read_seed_mat(rec["path"])
            names = cfg["seed_clips"] or stimuli
            for n, raw in clips.items():
                if n - 1 < len(names) and names[n - 1] in stimuli:
                    segments[names[n - 1]] = raw
            continue
        raw = read_eeg(rec["path"], format=fmt)
        if rec["stimulus"]:
            if rec["stimulus"] not in stimuli:
                raise InputError(f"{who}: stimulus {rec['stimulus']!r} is not in the study")
            want = durations.get(rec["stimulus"])
            if want is not None and raw.times[-1] + 1 / raw.info["sfreq"] + 1e-6 < want:
                raise InputError(f"{who}: recording lasts {raw.times[-1]:.2f} s, shorter than stimulus "
                                 f"{rec['stimulus']!r} ({want:.2f} s)")
            segments[rec["stimulus"]] = raw
        else:
            todo = [s for s in stimuli if s in annotation_index(raw)]
            if not todo:
                raise InputError(f"{who}: no annotation names a stimulus of the study ({', '.join(stimuli[:5])})")
            segments.update(segment_stimuli(raw, todo, who=who, durations=durations))
    out = {}
    filters: dict = {}  # one region filter per channel set, reused across this subject's stimuli
    crosstalks: list = []  # the cross-talk of each new region filter
    noise_cov = cfg["noise_cov"] if isinstance(cfg["noise_cov"], str) else tuple(cfg["noise_cov"])
    for name, seg in segments.items():
        who = f"subject {subject}, stimulus {name}"
        if pre is not None:
            seg, _ = preprocess(seg, **pre, who=who)
        fwd, before = anatomy.forward(seg.info), set(filters)
        sig = region_signals(seg, subjects_dir=cfg["subjects_dir"], subject=cfg["subject"],
                             forward=fwd, labels=anatomy.labels, parc=cfg["parc"],
                             method=cfg["method"], mode=cfg["mode"], snr=cfg["snr"],
                             noise_cov=noise_cov, who=who, cache=filters)
        out[name] = sig.compute(scheduler="sync") if hasattr(sig.data, "dask") else sig
        crosstalks += [region_crosstalk(*filters[k], fwd, anatomy.labels) for k in set(filters) - before]
    return out, (sum(crosstalks) / len(crosstalks) if crosstalks else None)


def _fmri_subject(subject: str, recs: list[dict], cfg: Mapping[str, Any], stimuli: list[str]) -> dict[str, xr.DataArray]:
    from .fmri import fmri_region_signals

    out = {}
    for rec in recs:
        stim = rec["stimulus"] or (stimuli[0] if len(stimuli) == 1 else None)
        if stim is None or stim not in stimuli:
            raise InputError(f"subject {subject} ({Path(rec['path']).name}): fMRI recordings must name a "
                             f"stimulus of the study, got {rec['stimulus']!r}")
        out[stim] = fmri_region_signals(rec["path"], cfg["atlas"], cfg["atlas_names"], confounds=rec["confounds"],
                                        confound_columns=cfg["confound_columns"], t_r=cfg["t_r"],
                                        high_pass=cfg["high_pass"], detrend=cfg["detrend"],
                                        standardize=cfg["standardize"], who=f"subject {subject}")
    return out


def build_regions(study: Any, cfg: Mapping[str, Any], *, progress: bool = True,
                  crosstalk: dict | None = None) -> xr.DataTree:
    """Compute every subject's region signals (in parallel) and assemble the ``regions`` tree.

    ``crosstalk``, when given, is filled with subject -> the region cross-talk
    (region, region_source) of that subject's EEG inverse
    (:func:`~xaffect.neural.crosstalk.region_crosstalk`).
    """
    import dask

    from ..store.compute import compute

    stimuli = [s.name for s in study.stimuli]
    by_subject: dict[str, list[dict]] = {}
    for rec in cfg["recordings"] or []:
        by_subject.setdefault(rec["subject"], []).append(rec)
    if cfg["kind"] == "fmri" and cfg["bids"] is not None and cfg["recordings"]:
        raise ConfigError("regions: give fMRI `recordings` or `bids`, not both")
    if not by_subject and not (cfg["kind"] == "fmri" and cfg["bids"] is not None):
        raise ConfigError("regions.recordings: missing required key (or `bids` for fMRI)")
    if cfg["kind"] == "eeg":
        anatomy = _Anatomy(cfg)
        durations = _stimulus_durations(study)
        tasks = [dask.delayed(_eeg_subject, pure=False)(s, r, cfg, stimuli, durations, anatomy)
                 for s, r in by_subject.items()]
    else:
        if cfg["atlas"] is None or cfg["atlas_names"] is None:
            raise ConfigError("regions: kind fmri needs `atlas` and `atlas_names`")
        if cfg["bids"] is not None:  # a BIDS study: runs, TRs and events from the folder (neural.bids_fmri)
            by_subject = _bids_runs(cfg)
            durations = _stimulus_durations(study)
            tasks = [dask.delayed(_bids_subject, pure=False)(r, cfg, stimuli, durations) for r in by_subject.values()]
        else:
            tasks = [dask.delayed(_fmri_subject, pure=False)(s, r, cfg, stimuli) for s, r in by_subject.items()]
    outs = list(compute(*tasks, desc="regions: subjects", progress=progress))
    if cfg["kind"] == "eeg":
        if crosstalk is not None:
            crosstalk.update({s: ct for s, (_, ct) in zip(by_subject, outs) if ct is not None})
        outs = [sig for sig, _ in outs]
    results = dict(zip(by_subject, outs))
    rates = {s: next(iter(r.values())).attrs["sfreq"] for s, r in results.items() if r}
    if len(set(rates.values())) > 1:
        first = next(iter(rates))
        odd = next(s for s, f in rates.items() if f != rates[first])
        raise InputError(f"subject {odd}: sampling rate {rates[odd]:g} Hz differs from subject {first}'s "
                         f"{rates[first]:g} Hz (set regions.preprocess.resample)")
    groups: dict[str, xr.Dataset] = {}
    for stim in stimuli:
        have = [(s, r[stim]) for s, r in results.items() if stim in r]
        if not have:
            continue
        n = min(a.sizes["time"] for _, a in have)
        regions = have[0][1]["region"].values
        for s, a in have:
            if list(a["region"].values) != list(regions):
                raise InputError(f"subject {s}: regions differ from subject {have[0][0]}'s")
        sig = np.stack([a.values[:n] for _, a in have]).astype(np.float32)
        ds = xr.Dataset({"signal": (("subject", "sample", "region"), sig)},
                        coords={"subject": [s for s, _ in have], "region": [str(r) for r in regions]},
                        attrs={"sfreq": float(have[0][1].attrs["sfreq"]), "stimulus": stim})
        ds["signal"].attrs["sfreq"] = ds.attrs["sfreq"]
        groups[stim] = ds.chunk({"subject": 1})
    if not groups:
        raise InputError("regions: no recording covers any stimulus of the study")
    root = xr.Dataset(attrs={"kind": cfg["kind"], "sfreq": float(next(iter(groups.values())).attrs["sfreq"]),
                             "parc": cfg["parc"] if cfg["kind"] == "eeg" else str(cfg["atlas"]),
                             "method": cfg["method"] if cfg["kind"] == "eeg" else "nilearn-labels-mean",
                             "mode": cfg["mode"] if cfg["kind"] == "eeg" else "mean"})
    return xr.DataTree.from_dict({"/": root, **{f"/{k}": v for k, v in groups.items()}})


def _config(study: Any) -> dict:
    cfg = dict(study.section("regions"))
    if cfg["kind"] == "eeg":
        pre = cfg["preprocess"]
        if pre is not None:
            cfg["preprocess"] = {**{k: PREPROCESS_DEFAULTS[k] for k in _PREPROCESS}, **pre}
        if cfg["subject"] == "xaffect-synth":
            from .synthetic_subject import synthetic_subject

            if cfg["subjects_dir"] is None:
                raise ConfigError("regions.subjects_dir: needed to write the synthetic subject")
            synthetic_subject(cfg["subjects_dir"], cfg["subject"])
    return cfg


def _bids_runs(cfg: Mapping[str, Any]) -> dict[str, list]:
    from .bids_fmri import find_bold_runs

    by_subject: dict[str, list] = {}
    for run in find_bold_runs(cfg["bids"], subjects=cfg["bids_subjects"], tasks=cfg["bids_tasks"],
                              space=cfg["bids_space"], derivatives=cfg["bids_derivatives"]):
        by_subject.setdefault(f"sub-{run.subject}", []).append(run)
    return by_subject


def _bids_subject(runs: list, cfg: Mapping[str, Any], stimuli: list[str],
                  durations: Mapping[str, float]) -> dict[str, xr.DataArray]:
    from .bids_fmri import bids_subject_signals

    return bids_subject_signals(runs, cfg["atlas"], cfg["atlas_names"], stimuli=stimuli,
                                stimulus_column=cfg["stimulus_column"], confound_strategy=cfg["confound_strategy"],
                                motion=cfg["motion"], high_pass=cfg["high_pass"], detrend=cfg["detrend"],
                                standardize=cfg["standardize"], durations=durations)


def _inputs(cfg: Mapping[str, Any]) -> list[Any]:
    files: list[Any] = []
    if cfg["kind"] == "fmri" and cfg["bids"] is not None:
        from .bids_fmri import run_files

        files += run_files([r for rs in _bids_runs(cfg).values() for r in rs], cfg["bids"])
    for rec in cfg["recordings"] or []:
        files.append(rec["path"])
        if rec.get("confounds"):
            files.append(rec["confounds"])
    if cfg["kind"] == "fmri":
        files.append(cfg["atlas"])
        if isinstance(cfg["atlas_names"], Path):
            files.append(cfg["atlas_names"])
    elif cfg["subjects_dir"] is not None:
        sdir = Path(cfg["subjects_dir"]) / cfg["subject"]
        files += [p for p in (sdir / "label" / f"{h}.{cfg['parc']}.annot" for h in ("lh", "rh")) if p.exists()]
        files += [p for p in (sdir / "surf" / f"{h}.white" for h in ("lh", "rh")) if p.exists()]
    return files


def run(study: Any, *, force: bool = False, progress: bool = True) -> list[str]:
    """Write the ``regions`` store (skipped when current)."""
    cfg = _config(study)
    params = {k: v for k, v in cfg.items()}
    params["stimuli"] = [s.name for s in study.stimuli]
    inputs = _inputs(cfg)
    ws = study.workspace
    # the cross-talk store comes with linear region filters of an EEG inverse (see neural.crosstalk)
    with_crosstalk = cfg["kind"] == "eeg" and cfg["mode"] in ("mean_flip", "mean") and isinstance(cfg["noise_cov"], str)
    if not force and ws.is_current("regions", stage="regions", params=params, inputs=inputs) and (
            not with_crosstalk or ws.is_current("crosstalk", stage="regions", params=params, inputs=inputs)):
        return ["regions"]
    crosstalk: dict = {}
    tree = build_regions(study, cfg, progress=progress, crosstalk=crosstalk)
    ws.write("regions", tree, stage="regions", params=params, inputs=inputs, progress=progress,
             description=f"{cfg['kind'].upper()} region signals (subject, sample, region) per stimulus")
    if crosstalk:
        from .crosstalk import crosstalk_dataset

        ct = crosstalk_dataset(crosstalk, attrs={k: cfg[k] for k in ("method", "mode", "snr", "parc", "subject")})
        ws.write("crosstalk", ct, stage="regions", params=params, inputs=inputs, progress=progress,
                 description="region cross-talk (subject, region, region_source) of the EEG inverse used")
    return ["regions"]


def _cli_commands() -> list:
    import click

    @click.command("synthetic-subject")
    @click.argument("subjects_dir", type=click.Path(file_okay=False))
    @click.option("--subject", default="xaffect-synth", show_default=True)
    @click.option("--overwrite", is_flag=True)
    def synthetic_subject_cmd(subjects_dir: str, subject: str, overwrite: bool) -> None:
        """Write a small FreeSurfer-format subject (68 Desikan–Killiany labels) into SUBJECTS_DIR."""
        from .synthetic_subject import synthetic_subject

        click.echo(synthetic_subject(subjects_dir, subject, overwrite=overwrite))

    return [synthetic_subject_cmd]


STAGES = {"regions": StageSpec(config=CONFIG, run=run, help="EEG/fMRI recordings to region signals")}
CLI_COMMANDS = _cli_commands()
