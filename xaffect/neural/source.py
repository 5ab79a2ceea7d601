"""EEG source localisation to atlas regions through MNE's forward and inverse models.

The reference path is MNE's own: ``apply_inverse_raw`` then
``extract_label_time_course``. For the linear label modes (``mean_flip``,
``mean``) xaffect composes both into one ``(region, channel)`` matrix — the
*region filter* — by passing an identity "recording" through exactly that
MNE path, then applies the filter to the recording block by block with dask.
No ``(source, time)`` array is ever built, which is where the speed and
memory gain comes from (``benchmarks/bench_inverse.py``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from .simulate import simulate_raw  # noqa: F401  (re-exported: it lived here)

__all__ = ["forward_model", "region_labels", "make_inverse", "region_filter", "apply_region_filter", "region_signals",
           "simulate_raw", "LINEAR_MODES", "METHODS"]

#: Label modes that are linear in the data (the fused path applies).
LINEAR_MODES = ("mean_flip", "mean")
#: Inverse methods MNE provides for ``apply_inverse_raw``.
METHODS = ("eLORETA", "sLORETA", "dSPM", "MNE")
_MODES = ("mean_flip", "mean", "pca_flip", "max", "auto")
_V = "error"  # MNE log level inside library calls


# ------------------------------------------------------------------ anatomy
def _subject_dir(subjects_dir: str | os.PathLike | None, subject: str, *, fetch: bool = False) -> Path:
    if subjects_dir is None:
        subjects_dir = os.environ.get("SUBJECTS_DIR")
        if subjects_dir is None:
            raise InputError("subjects_dir: not given and SUBJECTS_DIR is not set "
                             "(use xaffect.neural.synthetic_subject or mne.datasets.fetch_fsaverage)")
    root = Path(subjects_dir).expanduser()
    sdir = root / subject
    if not (sdir / "surf").is_dir() and fetch and subject == "fsaverage":
        import mne

        mne.datasets.fetch_fsaverage(subjects_dir=root, verbose=_V)
    if not (sdir / "surf").is_dir():
        raise InputError(f"subject {subject!r}: not found in subjects_dir {root} (no {sdir / 'surf'}); "
                         "write one with xaffect.neural.synthetic_subject or fetch fsaverage "
                         "with mne.datasets.fetch_fsaverage")
    return sdir


@functools.lru_cache(maxsize=8)
def _source_space(subjects_dir: str, subject: str, spacing: str, mtime: float) -> Any:
    import mne

    return mne.setup_source_space(subject, spacing=spacing, subjects_dir=subjects_dir, add_dist=False,
                                  verbose=_V)


def region_labels(*, subjects_dir: str | os.PathLike | None, subject: str = "fsaverage",
                  parc: str = "aparc") -> list:
    """The labels of annotation ``parc`` of ``subject`` (``aparc``: 68 Desikan–Killiany regions).

    Returns
    -------
    list of mne.Label
        Sorted by name; ``unknown`` and ``corpuscallosum`` patches are left out.
    """
    import mne

    sdir = _subject_dir(subjects_dir, subject)
    for hemi in ("lh", "rh"):
        f = sdir / "label" / f"{hemi}.{parc}.annot"
        if not f.is_file():
            raise InputError(f"subject {subject!r}: annotation {parc!r} missing ({f})")
    labels = mne.read_labels_from_annot(subject, parc, subjects_dir=str(sdir.parent), verbose=_V)
    labels = [lab for lab in labels if not lab.name.startswith(("unknown", "corpuscallosum", "???"))]
    return sorted(labels, key=lambda lab: lab.name)


def _check_positions(info: Any, who: str) -> None:
    import mne

    picks = mne.pick_types(info, eeg=True, exclude=())
    if len(picks) == 0:
        raise InputError(f"{who}: no EEG channels")
    missing = [info["ch_names"][p] for p in picks
               if not np.all(np.isfinite(info["chs"][p]["loc"][:3])) or not np.any(info["chs"][p]["loc"][:3])]
    if missing:
        raise InputError(f"{who}: channel(s) without a position: {', '.join(missing[:10])}"
                         f"{' …' if len(missing) > 10 else ''} (set a montage, or drop them)")


def forward_model(info: Any, *, subjects_dir: str | os.PathLike | None, subject: str = "fsaverage",
                  spacing: str = "oct5", bem: str | os.PathLike | None = "auto", trans: Any = "auto",
                  mindist: float = 5.0, fetch: bool = False, src: Any = None) -> Any:
    """The EEG forward solution of ``subject``'s cortex for the sensors in ``info``.

    Parameters
    ----------
    info : mne.Info
        Measurement info with EEG channel positions (a montage).
    subjects_dir : path or None
        FreeSurfer subjects folder (None: ``$SUBJECTS_DIR``).
    subject : str
        ``"fsaverage"`` (the real template) or e.g. a
        :func:`xaffect.neural.synthetic_subject`.
    spacing : str
        Source spacing (``"oct5"``: 1 026 sources per hemisphere; ``"oct6"``
        is MNE's usual choice for real data).
    bem : path, "sphere" or "auto"
        A BEM solution file, ``"sphere"`` (a sphere model fitted to the
        montage) or ``"auto"``: ``bem/<subject>-5120-5120-5120-bem-sol.fif``
        if the subject has one, else the sphere.
    trans : str, mne.Transform or "auto"
        Head↔MRI transform; ``"auto"``: ``"fsaverage"`` for fsaverage, else
        identity (MRI and head coordinates coincide, as for the synthetic subject).
    mindist : float
        Minimum distance (mm) of sources from the inner skull.
    fetch : bool
        Download fsaverage with ``mne.datasets.fetch_fsaverage`` if missing.
    src : mne.SourceSpaces, optional
        A source space of ``subject`` to use instead of setting one up with
        ``spacing`` (e.g. from ``mne.read_source_spaces``).

    Returns
    -------
    mne.Forward
        Free-orientation forward solution (n_channels × 3·n_sources).
    """
    import mne

    sdir = _subject_dir(subjects_dir, subject, fetch=fetch)
    _check_positions(info, f"subject {subject!r} forward model")
    info = mne.pick_info(info, mne.pick_types(info, eeg=True, exclude=()))
    surf = sdir / "surf" / "lh.white"
    if src is None:
        src = _source_space(str(sdir.parent), subject, spacing, surf.stat().st_mtime if surf.exists() else 0.0)
    elif not isinstance(src, mne.SourceSpaces):
        raise InputError(f"src: expected an mne.SourceSpaces, got {type(src).__name__}")
    if trans == "auto":
        trans = "fsaverage" if subject == "fsaverage" else mne.transforms.Transform("head", "mri")
    if bem == "auto":
        cand = sdir / "bem" / f"{subject}-5120-5120-5120-bem-sol.fif"
        bem = str(cand) if cand.is_file() else "sphere"
    if bem == "sphere":
        bem = mne.make_sphere_model(r0="auto", head_radius="auto", info=info, verbose=_V)
    elif bem is not None and not isinstance(bem, mne.bem.ConductorModel):
        if not Path(bem).is_file():
            raise InputError(f"bem: {bem} does not exist")
        bem = str(bem)
    return mne.make_forward_solution(info, trans=trans, src=src.copy(), bem=bem, eeg=True, meg=False,
                                     mindist=mindist, verbose=_V)


# ------------------------------------------------------------------ inverse
def _reference_info(info: Any, ch_names: Sequence[str] | None = None) -> Any:
    """EEG channels of ``info`` (good ones, or ``ch_names``) with an average-reference projector."""
    import mne

    if ch_names is None:
        picks = mne.pick_types(info, eeg=True, exclude="bads")
    else:
        picks = mne.pick_channels(info["ch_names"], list(ch_names), ordered=True)
    info = mne.pick_info(info, picks)
    has_avg = any("Average EEG reference" in p["desc"] for p in info["projs"])
    if not has_avg and not info["custom_ref_applied"]:
        eye = mne.io.RawArray(np.zeros((len(info["ch_names"]), 1)), info, verbose=_V)
        eye.set_eeg_reference("average", projection=True, verbose=_V)
        info = eye.info
    return info


def _noise_cov(noise_cov: Any, info: Any, raw: Any = None) -> Any:
    import mne

    if noise_cov is None or (isinstance(noise_cov, str) and noise_cov in ("ad-hoc", "adhoc")):
        return mne.make_ad_hoc_cov(info, verbose=_V)
    if isinstance(noise_cov, str) and noise_cov == "identity":
        n = len(info["ch_names"])
        return mne.Covariance(np.eye(n) * 1e-12, info["ch_names"], [], info["projs"], nfree=1, verbose=_V)
    if isinstance(noise_cov, mne.Covariance):
        return noise_cov
    if isinstance(noise_cov, (list, tuple)) and len(noise_cov) == 2:
        if raw is None:
            raise InputError("noise_cov: a baseline (tmin, tmax) needs the recording")
        tmin, tmax = map(float, noise_cov)
        if isinstance(raw, mne.BaseEpochs):  # the baseline of every epoch (times relative to each event)
            return mne.compute_covariance(raw.copy().pick(info["ch_names"]), tmin=tmin, tmax=tmax, verbose=_V)
        return mne.compute_raw_covariance(raw, tmin=tmin, tmax=tmax, picks=info["ch_names"], verbose=_V)
    raise InputError(f"noise_cov: expected 'ad-hoc', 'identity', [tmin, tmax] or an mne.Covariance, "
                     f"got {noise_cov!r}")


def make_inverse(info: Any, forward: Any, *, noise_cov: Any = None, loose: float = 0.2, depth: float = 0.8,
                 raw: Any = None) -> Any:
    """An inverse operator for ``forward`` (average-referenced EEG of ``info``).

    Parameters
    ----------
    info : mne.Info
    forward : mne.Forward
    noise_cov : "ad-hoc", "identity", (tmin, tmax) baseline seconds or mne.Covariance
    loose, depth : float
        As in ``mne.minimum_norm.make_inverse_operator``.
    raw : mne.io.Raw or mne.Epochs, optional
        The recording, for a baseline covariance (of epochs: over each
        epoch's ``(tmin, tmax)``).

    Returns
    -------
    mne.minimum_norm.InverseOperator
    """
    from mne.minimum_norm import make_inverse_operator

    fwd_names = [n for n in forward["info"]["ch_names"] if n in info["ch_names"] and n not in info["bads"]]
    info = _reference_info(info, fwd_names)
    cov = _noise_cov(noise_cov, info, raw)
    return make_inverse_operator(info, forward, cov, loose=loose, depth=depth, verbose=_V)


def region_filter(inverse: Any, labels: Sequence[Any], *, method: str = "eLORETA", lambda2: float = 1 / 9,
                  mode: str = "mean_flip", prepared: bool = False) -> tuple[np.ndarray, list[str]]:
    """Compose inverse kernel and label extraction into one ``(region, channel)`` matrix.

    An identity "recording" (one sample per channel) goes through MNE's own
    ``apply_inverse_raw`` and ``extract_label_time_course``; since both are
    linear for ``mean_flip``/``mean``, the result is the exact operator.

    Parameters
    ----------
    inverse : mne.minimum_norm.InverseOperator
    labels : sequence of mne.Label
    method : {"eLORETA", "sLORETA", "dSPM", "MNE"}
    lambda2 : float
        Regularisation (``1 / snr**2``).
    mode : {"mean_flip", "mean"}
    prepared : bool
        ``inverse`` is already prepared (``mne.minimum_norm.prepare_inverse_operator``
        with this ``lambda2`` and ``method``), as in ``apply_inverse_raw``.

    Returns
    -------
    weights : ndarray of shape (n_regions, n_channels)
    ch_names : list of str
        The channels (columns), in order.
    """
    import mne
    from mne.minimum_norm import apply_inverse_raw

    if mode not in LINEAR_MODES:
        raise InputError(f"mode: the fused path needs a linear mode ({', '.join(LINEAR_MODES)}), got {mode!r}")
    info = inverse["info"]
    n = len(info["ch_names"])
    eye = mne.io.RawArray(np.eye(n), mne.create_info(list(info["ch_names"]), 1000.0, "eeg"), verbose=_V)
    eye.add_proj([p.copy() for p in inverse["projs"]], verbose=_V)
    stc = apply_inverse_raw(eye, inverse, lambda2, method=method, pick_ori="normal", prepared=prepared,
                            verbose=_V)
    w = mne.extract_label_time_course(stc, list(labels), inverse["src"], mode=mode, verbose=_V)
    return np.asarray(w), list(info["ch_names"])


def _check_finite_block(block: np.ndarray, ch_names: Sequence[str], who: str, start: int, sfreq: float) -> None:
    bad = ~np.isfinite(block)
    if bad.any():
        ch, t = np.argwhere(bad)[0]
        raise InputError(f"{who}: channel {ch_names[ch]} has NaN/inf samples (first at {(start + t) / sfreq:.3f} s)")


def apply_region_filter(weights: np.ndarray, raw: Any, ch_names: Sequence[str], *, block: float = 60.0,
                        who: str = "recording") -> Any:
    """Apply a region filter to a recording block by block (lazy).

    Parameters
    ----------
    weights : array of shape (n_regions, n_channels)
        From :func:`region_filter`.
    raw : mne.io.Raw
        Preloaded or not (blocks are read on demand).
    ch_names : sequence of str
        The filter's channels, in column order.
    block : float
        Seconds per dask task.
    who : str
        Named in the error raised for NaN/inf samples.

    Returns
    -------
    dask.array.Array of shape (n_times, n_regions)
        float32.
    """
    import dask
    import dask.array as da

    ch_names = list(ch_names)
    n_times = raw.n_times
    step = max(1, int(round(block * raw.info["sfreq"])))
    wt = np.asarray(weights, dtype=np.float64).T  # (n_channels, n_regions)

    def one(start: int, stop: int) -> np.ndarray:
        x = raw.get_data(picks=ch_names, start=start, stop=stop)
        _check_finite_block(x, ch_names, who, start, raw.info["sfreq"])
        return (x.T @ wt).astype(np.float32)  # (n_times, n_regions), no transposed copy

    parts = [da.from_delayed(dask.delayed(one)(s, min(s + step, n_times)), shape=(min(s + step, n_times) - s, wt.shape[1]),
                             dtype=np.float32) for s in range(0, n_times, step)]
    return da.concatenate(parts, axis=0) if parts else da.zeros((0, wt.shape[1]), dtype=np.float32)


def region_signals(raw: Any, *, subjects_dir: str | os.PathLike | None = None, subject: str = "fsaverage",
                   forward: Any = None, parc: str = "aparc", method: str = "eLORETA", mode: str = "mean_flip",
                   snr: float = 3.0, noise_cov: Any = None, loose: float = 0.2, depth: float = 0.8,
                   spacing: str = "oct5", bem: Any = "auto", labels: Sequence[Any] | None = None,
                   fused: bool = True, block: float = 60.0, who: str = "recording",
                   cache: dict | None = None) -> xr.DataArray:
    """Source-localise a recording (or its epochs) to the regions of an annotation.

    Parameters
    ----------
    raw : mne.io.Raw or mne.Epochs
        EEG with channel positions (bad channels in ``info["bads"]`` are left
        out). Epochs give one region time course per epoch.
    subjects_dir, subject, spacing, bem
        Anatomy; with ``forward=None`` the forward is :func:`forward_model`'s.
    forward : mne.Forward, mne.minimum_norm.InverseOperator or mne.SourceSpaces, optional
        A forward solution to reuse; an inverse operator to apply as it is
        (its channels, noise covariance and priors: ``noise_cov``, ``loose``
        and ``depth`` are then unused, and its channels must be good
        channels of the recording); or a source space from which
        :func:`forward_model` computes the forward (instead of ``spacing``).
    parc : str
        Annotation (``"aparc"``: 68 Desikan–Killiany regions).
    method : {"eLORETA", "sLORETA", "dSPM", "MNE"}
    mode : {"mean_flip", "mean", "pca_flip", "max", "auto"}
        Label time-course mode; ``mean_flip``/``mean`` use the fused path.
    snr : float
        Assumed SNR; ``lambda2 = 1 / snr**2``.
    noise_cov : "ad-hoc" (default), "identity", (tmin, tmax) baseline or mne.Covariance
    loose, depth : float
        Inverse orientation and depth priors; sources are read along the normal.
    labels : sequence of mne.Label, optional
        Regions (default: :func:`region_labels`).
    fused : bool
        Use the fused dask path for linear modes (False: MNE's path).
    block : float
        Seconds per dask block of the fused path (Raw only).
    who : str
        Name (subject/file) used in error messages.
    cache : dict, optional
        Reuse region filters between calls with the same channels, forward
        model and parameters (e.g. one subject's stimuli); filled in place.
        Not used with a baseline noise covariance (it depends on the data).

    Returns
    -------
    xarray.DataArray of shape (time, region), or (epoch, time, region) for Epochs
        float32, dask-backed for the fused path of a Raw; coords ``time``
        (s), ``region`` (label names), for epochs ``epoch`` (index into the
        original events) and ``event`` (event code); attrs ``sfreq``,
        ``method``, ``mode``. :func:`~xaffect.neural.to_mne_raw` and
        :func:`~xaffect.neural.to_label_stc` turn it back into MNE objects.
    """
    import mne
    from mne.minimum_norm import InverseOperator

    from .convert import epochs_inverse_regions, epochs_region_signals

    is_epochs = isinstance(raw, mne.BaseEpochs)
    if not (is_epochs or isinstance(raw, mne.io.BaseRaw)):
        raise InputError(f"{who}: expected an mne.io.Raw or mne.Epochs, got {type(raw).__name__}")
    if method not in METHODS:
        raise InputError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    if mode not in _MODES:
        raise InputError(f"mode: {mode!r} is not one of {', '.join(_MODES)}")
    inverse = forward if isinstance(forward, InverseOperator) else None
    src = forward if isinstance(forward, mne.SourceSpaces) else None
    if inverse is not None or src is not None:
        forward = None
    elif forward is not None and not isinstance(forward, mne.Forward):
        raise InputError(f"forward: expected an mne.Forward, InverseOperator or SourceSpaces, "
                         f"got {type(forward).__name__}")
    if inverse is None:
        _check_positions(raw.info, who)
    if raw.info["custom_ref_applied"]:
        raise InputError(f"{who}: re-referenced without a projector; MNE's inverse needs the average "
                         "reference as a projector (raw.set_eeg_reference('average', projection=True))")
    if labels is None:
        labels = region_labels(subjects_dir=subjects_dir, subject=subject, parc=parc)
    if inverse is None and forward is None:
        forward = forward_model(raw.info, subjects_dir=subjects_dir, subject=subject, spacing=spacing, bem=bem,
                                src=src)
    good = [raw.ch_names[i] for i in mne.pick_types(raw.info, eeg=True, exclude="bads")]
    if inverse is not None:
        missing = [n for n in inverse["info"]["ch_names"] if n not in good]
        where = "good EEG channels of the recording"
    else:
        missing = [n for n in good if n not in forward["info"]["ch_names"]]
        where = "in the forward model"
    if missing:
        raise InputError(f"{who}: channel(s) {', '.join(missing[:5])} are not {where}")
    lambda2 = 1.0 / float(snr) ** 2
    names = [lab.name for lab in labels]
    attrs = {"sfreq": float(raw.info["sfreq"]), "method": method, "mode": mode, "snr": float(snr),
             "subject_anatomy": subject, "parc": parc}
    fast = fused and mode in LINEAR_MODES
    key = None
    if fast and cache is not None and (noise_cov is None or isinstance(noise_cov, str)):
        key = (tuple(good), tuple(p["desc"] for p in raw.info["projs"]), id(inverse if forward is None else forward),
               tuple(names), method, mode, float(snr), noise_cov, float(loose), float(depth))
    if key is not None and key in cache:
        w, ch_names = cache[key]
    else:
        if inverse is None:
            inverse = make_inverse(raw.info, forward, noise_cov=noise_cov, loose=loose, depth=depth, raw=raw)
        if fast:
            w, ch_names = region_filter(inverse, labels, method=method, lambda2=lambda2, mode=mode)
            if key is not None:
                cache[key] = (w, ch_names)
    if is_epochs:
        data = (epochs_region_signals(w, raw, ch_names, who=who) if fast else
                epochs_inverse_regions(raw, inverse, labels, method=method, lambda2=lambda2, mode=mode, who=who))
        return xr.DataArray(data, dims=("epoch", "time", "region"),
                            coords={"epoch": np.asarray(raw.selection), "event": ("epoch", raw.events[:, 2]),
                                    "time": raw.times, "region": names}, name="signal", attrs=attrs)
    if fast:
        data = apply_region_filter(w, raw, ch_names, block=block, who=who)
    else:
        data = _mne_path_raw(raw, inverse, labels, method=method, lambda2=lambda2, mode=mode, who=who)
    return xr.DataArray(data, dims=("time", "region"), coords={"time": raw.times, "region": names},
                        name="signal", attrs=attrs)


def _mne_path_raw(raw: Any, inv: Any, labels: Sequence[Any], *, method: str, lambda2: float, mode: str,
                  who: str) -> np.ndarray:
    """MNE's own path: ``apply_inverse_raw`` then ``extract_label_time_course``, (time, region) float32."""
    import mne
    from mne.minimum_norm import apply_inverse_raw

    ref = _with_average_reference(raw.copy().pick(inv["info"]["ch_names"]))
    _check_finite_block(ref.get_data(), ref.ch_names, who, 0, ref.info["sfreq"])
    stc = apply_inverse_raw(ref, inv, lambda2, method=method, pick_ori="normal", verbose=_V)
    return mne.extract_label_time_course(stc, list(labels), inv["src"], mode=mode, verbose=_V).T.astype(np.float32)


def _with_average_reference(inst: Any) -> Any:
    """``inst`` (Raw or Epochs, modified) with an average-reference projector unless it has one."""
    if not any("Average EEG reference" in p["desc"] for p in inst.info["projs"]) \
            and not inst.info["custom_ref_applied"]:
        inst.set_eeg_reference("average", projection=True, verbose=_V)
    return inst
