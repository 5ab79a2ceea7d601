"""fMRI BOLD to atlas-region means with nilearn (confound regression, high-pass).

The repetition time sets the clock of the region signals (``sfreq = 1/TR``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError

__all__ = ["fmri_region_signals", "atlas_names", "check_atlas_space", "read_fmriprep_confounds",
           "CONFOUND_STRATEGIES"]

#: fMRIPrep noise components :func:`read_fmriprep_confounds` accepts (nilearn's ``load_confounds``
#: strategies, less ``scrub``/``ica_aroma``: dropping volumes would tear the 1/TR clock).
CONFOUND_STRATEGIES = ("motion", "high_pass", "wm_csf", "global_signal", "compcor")


def _load(img: Any, what: str) -> Any:
    import nibabel as nib

    if isinstance(img, (str, os.PathLike)):
        p = Path(img).expanduser()
        if not p.exists():
            raise InputError(f"{p}: {what} does not exist")
        try:
            return nib.load(str(p))
        except Exception as exc:  # nibabel raises several types for unreadable files
            raise InputError(f"{p}: cannot read {what} as NIfTI ({exc})") from None
    return img


def _space(path: Any) -> str | None:
    """The BIDS ``space-`` entity of a file name (None without one)."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    for part in Path(path).name.split(".")[0].split("_"):
        if part.startswith("space-"):
            return part[len("space-"):]
    return None


def check_atlas_space(atlas: Any, bold: Any, *, atlas_where: str = "atlas", bold_where: str = "bold") -> None:
    """Raise unless a labels image lies on the voxel grid of a BOLD image.

    Parameters
    ----------
    atlas, bold : path or nibabel image
        The labels image and the (3-D or 4-D) BOLD image. Paths whose BIDS
        ``space-`` entities differ are refused before the grids are compared.
    atlas_where, bold_where : str
        How errors name the two images (default: their paths).

    Raises
    ------
    InputError
        Naming both files, when the spaces, shapes or affines differ.
    """
    if isinstance(atlas, (str, os.PathLike)):
        atlas_where = str(atlas)
    if isinstance(bold, (str, os.PathLike)):
        bold_where = str(bold)
    sa, sb = _space(atlas), _space(bold)
    if sa and sb and sa != sb:
        raise InputError(f"{atlas_where}: atlas is in space {sa!r} but {bold_where} is in space {sb!r}")
    a_img, b_img = _load(atlas, "atlas"), _load(bold, "BOLD image")
    shape_a, shape_b = tuple(a_img.shape[:3]), tuple(b_img.shape[:3])
    if shape_a != shape_b or not np.allclose(a_img.affine, b_img.affine, atol=1e-3):
        vox_a = np.round(np.sqrt((a_img.affine[:3, :3] ** 2).sum(0)), 3).tolist()
        vox_b = np.round(np.sqrt((b_img.affine[:3, :3] ** 2).sum(0)), 3).tolist()
        raise InputError(f"{atlas_where}: atlas grid {shape_a} with {vox_a} mm voxels is not the grid of "
                         f"{bold_where} ({shape_b}, {vox_b} mm, or another affine): give an atlas in the "
                         f"bold's space (e.g. nilearn.image.resample_to_img(atlas, bold, interpolation='nearest'))")


def read_fmriprep_confounds(bold: str | os.PathLike, *, strategy: Sequence[str] = ("motion", "high_pass", "wm_csf"),
                            motion: str = "full", wm_csf: str = "basic", global_signal: str = "basic",
                            who: str | None = None) -> Any:
    """The confound regressors fMRIPrep wrote next to a preprocessed BOLD run.

    Thin wrapper of nilearn's ``load_confounds`` (which finds
    ``*_desc-confounds_timeseries.tsv`` from the ``*_desc-preproc_bold.nii.gz``
    name) with errors that name the file.

    Parameters
    ----------
    bold : path
        fMRIPrep ``…_desc-preproc_bold.nii.gz``.
    strategy : sequence of str
        Noise components, a subset of :data:`CONFOUND_STRATEGIES`
        (``motion``: 6/12/24 motion parameters; ``high_pass``: fMRIPrep's
        cosine drift regressors; ``wm_csf``; ``global_signal``; ``compcor``).
    motion, wm_csf, global_signal : {"basic", "power2", "derivatives", "full"}
        Expansion of each component, as in nilearn.
    who : str, optional
        The run named in errors (default: the path).

    Returns
    -------
    pandas.DataFrame of shape (n_volumes, n_confounds)
    """
    from nilearn.interfaces.fmriprep import load_confounds

    who = who or str(bold)
    bad = [s for s in strategy if s not in CONFOUND_STRATEGIES]
    if bad:
        raise InputError(f"confound_strategy: {', '.join(map(repr, bad))} not allowed (choose from "
                         f"{', '.join(CONFOUND_STRATEGIES)}; scrubbing would drop volumes from the 1/TR clock)")
    try:
        table, sample_mask = load_confounds(str(bold), strategy=tuple(strategy), motion=motion, wm_csf=wm_csf,
                                            global_signal=global_signal, demean=True)
    except (ValueError, KeyError, OSError) as exc:
        msg = " ".join(str(exc).split())
        raise InputError(f"{who}: cannot read its fMRIPrep confounds ({msg})") from None
    if sample_mask is not None:
        # volumes fMRIPrep flags (non-steady-state) stay on the clock, each with its own spike regressor
        n = len(table)
        for k in sorted(set(range(n)) - {int(i) for i in np.asarray(sample_mask)}):
            table[f"spike_{k:04d}"] = (np.arange(n) == k).astype(float)
    return table


def atlas_names(atlas: Any, names: Sequence[str] | Mapping[int, str] | str | os.PathLike) -> dict[int, str]:
    """Map each label value of an atlas image to its region name.

    Parameters
    ----------
    atlas : path or nibabel image
        Integer labels image (0 = background).
    names : list of str, mapping of int to str, or path
        Names in order of increasing label value, an explicit mapping, or a
        text file (one name per line, or ``value name`` / ``value,name`` lines).

    Returns
    -------
    dict of int to str

    Raises
    ------
    InputError
        If the labels of the image and the names do not match (naming the atlas).
    """
    img = _load(atlas, "atlas")
    where = str(atlas) if isinstance(atlas, (str, os.PathLike)) else "atlas"
    data = np.asanyarray(img.dataobj)
    if not np.allclose(data, np.round(data)):
        raise InputError(f"{where}: atlas is not an integer labels image")
    values = sorted(int(v) for v in np.unique(data) if v != 0)
    if isinstance(names, (str, os.PathLike)):
        lines = [ln.strip() for ln in Path(names).expanduser().read_text().splitlines() if ln.strip()]
        parts = [ln.replace(",", " ").split(None, 1) for ln in lines]
        if all(len(p) == 2 and p[0].isdigit() for p in parts):
            names = {int(p[0]): p[1].strip() for p in parts}
        else:
            names = lines
    if isinstance(names, Mapping):
        mapping = {int(k): str(v) for k, v in names.items() if int(k) != 0}
        extra = sorted(set(mapping) - set(values))
        missing = sorted(set(values) - set(mapping))
        if missing or extra:
            raise InputError(f"{where}: atlas labels do not match the names: "
                             f"labels without a name {missing[:10]}, names without a label {extra[:10]}")
        return {v: mapping[v] for v in values}
    names = [str(n) for n in names]
    if len(names) != len(values):
        raise InputError(f"{where}: atlas has {len(values)} labels but {len(names)} names were given")
    if len(set(names)) != len(names):
        raise InputError(f"{where}: region names are not unique")
    return dict(zip(values, names))


def fmri_region_signals(bold: Any, atlas: Any, names: Any, *, confounds: Any = None,
                        confound_columns: Sequence[str] | None = None, t_r: float | None = None,
                        high_pass: float | None = 0.01, detrend: bool = True, standardize: bool = False,
                        who: str | None = None) -> xr.DataArray:
    """Region-mean BOLD time courses with nilearn's ``NiftiLabelsMasker``.

    Parameters
    ----------
    bold : path or nibabel image
        4-D BOLD (x, y, z, time) on the atlas's voxel grid (else InputError, see :func:`check_atlas_space`).
    atlas : path or nibabel image
        Integer labels image.
    names : see :func:`atlas_names`
    confounds : array of shape (n_volumes, n_confounds), DataFrame or path to a TSV, optional
        Regressed out (e.g. fMRIPrep ``desc-confounds_timeseries.tsv``).
    confound_columns : list of str, optional
        Columns of a confounds table to use (e.g. ``trans_x`` … ``rot_z``,
        ``csf``, ``white_matter``); default all.
    t_r : float, optional
        Repetition time in s (default: the image header's 4th zoom).
    high_pass : float, optional
        High-pass cut-off in Hz (cosine drift removal), None for none.
    detrend, standardize : bool
        As in nilearn's signal cleaning.
    who : str, optional
        Subject or file named in errors.

    Returns
    -------
    xarray.DataArray of shape (time, region)
        float32; coords ``time`` (s, volume onsets), ``region``; attrs ``sfreq`` (= 1/TR).
    """
    import pandas as pd
    from nilearn.maskers import NiftiLabelsMasker

    who = who or (str(bold) if isinstance(bold, (str, os.PathLike)) else "bold")
    img = _load(bold, "BOLD image")
    if len(img.shape) != 4:
        raise InputError(f"{who}: BOLD image must be 4-D, got shape {img.shape}")
    atlas_img = _load(atlas, "atlas")
    check_atlas_space(atlas, bold, atlas_where=str(atlas) if isinstance(atlas, (str, os.PathLike)) else "atlas",
                      bold_where=who)
    mapping = atlas_names(atlas_img if not isinstance(atlas, (str, os.PathLike)) else atlas, names)
    if t_r is None:
        t_r = float(img.header.get_zooms()[3]) if len(img.header.get_zooms()) > 3 else 0.0
        if not t_r or t_r <= 0:
            raise InputError(f"{who}: no repetition time in the header; give t_r")
    import nibabel as nib

    data = np.asarray(img.dataobj, dtype=np.float32)  # read (and decompress) once, for the check and the masker
    if not np.isfinite(data).all():
        raise InputError(f"{who}: BOLD image has NaN/inf voxels")
    img = nib.Nifti1Image(data, img.affine, img.header)
    if isinstance(confounds, (str, os.PathLike)):
        where = str(confounds)
        confounds = pd.read_csv(confounds, sep="\t").fillna(0.0)
        if confound_columns is not None:
            missing = [c for c in confound_columns if c not in confounds.columns]
            if missing:
                raise InputError(f"{where}: no confound column(s) {', '.join(missing)}")
            confounds = confounds[list(confound_columns)]
    if confounds is not None and len(confounds) != img.shape[3]:
        raise InputError(f"{who}: {len(confounds)} confound rows for {img.shape[3]} volumes")
    masker = NiftiLabelsMasker(labels_img=atlas_img, background_label=0,
                               standardize="zscore_sample" if standardize else None,
                               detrend=detrend, high_pass=high_pass, t_r=t_r, resampling_target=None,
                               keep_masked_labels=False, verbose=0,
                               # DCT drift regressors (as documented), not nilearn's default Butterworth
                               clean_args={"filter": "cosine"} if high_pass else None)
    x = masker.fit_transform(img, confounds=confounds)  # atlas and bold share one grid (checked above)
    ids = getattr(masker, "region_ids_", None)
    if isinstance(ids, Mapping):
        order = [int(ids[i]) for i in range(x.shape[1])]
    else:
        order = sorted(mapping)[: x.shape[1]]
    region = [mapping[v] for v in order]
    times = np.arange(x.shape[0]) * t_r
    return xr.DataArray(x.astype(np.float32), dims=("time", "region"), coords={"time": times, "region": region},
                        name="signal", attrs={"sfreq": 1.0 / t_r, "t_r": t_r, "high_pass": high_pass or 0.0})
