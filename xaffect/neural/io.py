"""Reading EEG: any format MNE reads, BIDS through mne-bids, and SEED's preprocessed .mat files.

Every reader returns ``mne.io.Raw`` objects with a standard 10–05 montage
set from the channel names, and :func:`segment_stimuli` cuts a recording
into stimuli using annotations whose description is the stimulus name.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["read_eeg", "read_eeg_bids", "read_seed_mat", "set_standard_montage", "segment_stimuli",
           "annotation_index",
           "SEED_CHANNELS", "SEED_SFREQ"]

_V = "error"

#: SEED's 62 channels, in the order of its ``channel-order`` sheet.
SEED_CHANNELS = (
    "FP1", "FPZ", "FP2", "AF3", "AF4", "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8",
    "FT7", "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1", "CZ",
    "C2", "C4", "C6", "T8", "TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6", "TP8", "P7",
    "P5", "P3", "P1", "PZ", "P2", "P4", "P6", "P8", "PO7", "PO5", "PO3", "POZ", "PO4", "PO6",
    "PO8", "CB1", "O1", "OZ", "O2", "CB2")
#: Sampling rate of SEED's preprocessed EEG (Hz).
SEED_SFREQ = 200.0
# Cerebellar electrodes of the SEED cap have no 10–05 name; the nearest 10–05 sites stand in.
_ALIASES = {"CB1": "PO9", "CB2": "PO10"}
_FORMATS = {".fif": "fif", ".fif.gz": "fif", ".edf": "edf", ".bdf": "bdf", ".vhdr": "brainvision",
            ".set": "eeglab", ".mat": "seed"}


def _montage() -> Any:
    import mne

    names = mne.channels.get_builtin_montages()
    kind = "colin27_1005" if "colin27_1005" in names else "standard_1005"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mne.channels.make_standard_montage(kind)


def set_standard_montage(raw: Any, *, who: str = "recording", on_missing: str = "raise") -> Any:
    """Give EEG channels 10–05 positions from their names (case-insensitive).

    Parameters
    ----------
    raw : mne.io.Raw
        Modified in place (channel types of ``EOG``/``ECG``-named channels are set too).
    who : str
        Subject or file named in errors.
    on_missing : {"raise", "drop"}
        An EEG channel with no 10–05 name: error naming it, or drop it.

    Returns
    -------
    mne.io.Raw
    """
    import mne

    types = {}
    for ch in raw.ch_names:
        up = ch.upper()
        if up.startswith(("EOG", "VEOG", "HEOG")):
            types[ch] = "eog"
        elif up.startswith(("ECG", "EKG")):
            types[ch] = "ecg"
    if types:
        raw.set_channel_types(types, verbose=_V)
    mont = _montage()
    known = {n.upper(): n for n in mont.ch_names}
    eeg = [raw.ch_names[i] for i in mne.pick_types(raw.info, eeg=True, exclude=())]
    rename, unknown = {}, []
    for ch in eeg:
        up = ch.upper()
        if up in known:
            rename[ch] = known[up]
        elif up in _ALIASES:
            rename[ch] = _ALIASES[up]
        else:
            unknown.append(ch)
    if unknown:
        if on_missing == "drop":
            raw.drop_channels(unknown)
        else:
            raise InputError(f"{who}: channel(s) {', '.join(unknown[:10])} have no position: not 10–05 "
                             "names (rename them, set a montage yourself, or drop them)")
    rename = {k: v for k, v in rename.items() if k != v and k in raw.ch_names}
    if rename:
        raw.rename_channels(rename, verbose=_V)
    raw.set_montage(mont, on_missing="ignore", verbose=_V)
    return raw


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    name = path.name.lower()
    for ext, kind in _FORMATS.items():
        if name.endswith(ext):
            return kind
    raise InputError(f"{path}: unknown EEG format (give `format`: fif, edf, bdf, brainvision, eeglab, seed)")


def read_eeg(path: str | os.PathLike, *, format: str | None = None, montage: bool = True,
             preload: bool = True) -> Any:
    """Read a continuous EEG recording in any format MNE reads.

    Parameters
    ----------
    path : path
        ``.fif``, ``.edf``, ``.bdf``, ``.vhdr`` (BrainVision), ``.set`` (EEGLAB).
    format : str, optional
        Overrides the guess from the extension.
    montage : bool
        Set 10–05 positions from channel names (:func:`set_standard_montage`)
        when the file has none.
    preload : bool

    Returns
    -------
    mne.io.Raw
    """
    import mne

    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path}: EEG file does not exist")
    kind = _format_of(path, format)
    if kind == "seed":
        raise InputError(f"{path}: SEED .mat files hold one array per clip; read them with read_seed_mat")
    readers = {"fif": mne.io.read_raw_fif, "edf": mne.io.read_raw_edf, "bdf": mne.io.read_raw_bdf,
               "brainvision": mne.io.read_raw_brainvision, "eeglab": mne.io.read_raw_eeglab}
    if kind not in readers:
        raise InputError(f"{path}: unknown format {kind!r} (use {', '.join(readers)})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = readers[kind](str(path), preload=preload, verbose=_V)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise InputError(f"{path}: cannot read as {kind} EEG ({exc})") from None
    picks = mne.pick_types(raw.info, eeg=True, exclude=())
    has_pos = len(picks) and all(np.any(raw.info["chs"][p]["loc"][:3]) and
                                 np.all(np.isfinite(raw.info["chs"][p]["loc"][:3])) for p in picks)
    if montage and not has_pos:
        set_standard_montage(raw, who=str(path))
    return raw


def read_eeg_bids(bids_root: str | os.PathLike, *, subject: str, task: str, session: str | None = None,
                  run: str | None = None, montage: bool = True) -> Any:
    """Read one BIDS EEG recording with mne-bids (events become annotations).

    Returns
    -------
    mne.io.Raw
    """
    import mne
    from mne_bids import BIDSPath, read_raw_bids

    sub = subject.removeprefix("sub-")
    bp = BIDSPath(root=str(bids_root), subject=sub, task=task, session=session, run=run, datatype="eeg")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = read_raw_bids(bp, verbose=_V)
    except (FileNotFoundError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"{bids_root}: sub-{sub} task-{task}: cannot read BIDS EEG ({exc})") from None
    raw.load_data(verbose=_V)
    picks = mne.pick_types(raw.info, eeg=True, exclude=())
    if montage and not all(np.any(raw.info["chs"][p]["loc"][:3]) for p in picks):
        set_standard_montage(raw, who=f"sub-{sub}")
    return raw


def read_seed_mat(path: str | os.PathLike, *, sfreq: float = SEED_SFREQ,
                  ch_names: Sequence[str] = SEED_CHANNELS, montage: bool = True) -> dict[int, Any]:
    """Read a SEED preprocessed-EEG .mat file: one recording per film clip.

    Parameters
    ----------
    path : path
        ``.mat`` with arrays of shape (62, n_samples) in keys ``<prefix>_eeg<N>``.
    sfreq : float
        Sampling rate (SEED: 200 Hz).
    ch_names : sequence of str
        Channel order (SEED's 62-channel list).
    montage : bool
        Set 10–05 positions (CB1/CB2 stand at PO9/PO10).

    Returns
    -------
    dict of int to mne.io.RawArray
        Clip number ``N`` (1-based, as in the keys) to its recording (volts;
        SEED stores microvolts).
    """
    import mne

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"{path}: SEED file does not exist")
    try:
        import scipy.io

        mat = scipy.io.loadmat(str(path))
    except NotImplementedError:  # MATLAB v7.3 (HDF5)
        from pymatreader import read_mat

        mat = read_mat(str(path))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read as a .mat file ({exc})") from None
    pat = re.compile(r"^[A-Za-z0-9]+_eeg(\d+)$")
    clips = {int(m.group(1)): k for k in mat if (m := pat.match(k))}
    if not clips:
        raise InputError(f"{path}: no arrays named <prefix>_eeg<N> (SEED layout)")
    out = {}
    for n in sorted(clips):
        x = np.asarray(mat[clips[n]], dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != len(ch_names):
            raise InputError(f"{path}: {clips[n]} has shape {x.shape}, expected ({len(ch_names)}, n_samples)")
        info = mne.create_info(list(ch_names), sfreq, "eeg")
        raw = mne.io.RawArray(x * 1e-6, info, verbose=_V)
        if montage:
            set_standard_montage(raw, who=f"{path}:{clips[n]}")
        out[n] = raw
    return out


def annotation_index(raw: Any) -> dict[str, Any]:
    """Annotations by description, also under the part after the last ``/``.

    BrainVision markers read as ``Comment/clip01`` or ``Stimulus/clip01``;
    both they and plain ``clip01`` name stimulus ``clip01``.
    """
    out: dict[str, Any] = {}
    for a in raw.annotations:
        desc = str(a["description"])
        out.setdefault(desc, a)
        out.setdefault(desc.rsplit("/", 1)[-1], a)
    return out


def segment_stimuli(raw: Any, stimuli: Sequence[str], *, who: str = "recording",
                    durations: dict[str, float] | None = None) -> dict[str, Any]:
    """Cut a recording into stimuli by annotations named after them.

    Parameters
    ----------
    raw : mne.io.Raw
        With annotations whose description is a stimulus name (onset and
        duration in seconds).
    stimuli : sequence of str
        Stimulus names to find.
    who : str
        Subject or file named in errors.
    durations : dict, optional
        Stimulus durations (s); a segment shorter than its stimulus is an error.

    Returns
    -------
    dict of str to mne.io.Raw
        Stimulus name to its segment (a cropped copy, time from 0).
    """
    ann = annotation_index(raw)
    out = {}
    end = raw.times[-1] + 1.0 / raw.info["sfreq"]
    for name in stimuli:
        if name not in ann:
            raise InputError(f"{who}: no annotation for stimulus {name!r} "
                             f"(annotations: {', '.join(sorted(ann)[:10]) or 'none'})")
        onset = float(ann[name]["onset"]) - raw.first_time
        dur = float(ann[name]["duration"])
        want = (durations or {}).get(name)
        have = min(dur, end - onset)
        if onset + dur > end + 1e-6 or (want is not None and have + 1.0 / raw.info["sfreq"] < want):
            raise InputError(f"{who}: recording shorter than its stimulus {name!r}: {have:.2f} s of data from "
                             f"{onset:.2f} s, stimulus lasts {want if want is not None else dur:.2f} s")
        seg = raw.copy().crop(tmin=onset, tmax=min(onset + dur, raw.times[-1]), include_tmax=False, verbose=_V)
        seg.set_annotations(None)
        out[name] = seg
    return out
