"""A small FreeSurfer-format subject, so MNE's real source-localisation code runs offline.

It lives with the source localisation that reads it (the ``regions`` stage
writes it on demand); :mod:`xaffect.datasets` re-exports it for simulations.

:func:`synthetic_subject` writes ``<subjects_dir>/<subject>/`` with

* ``surf/{lh,rh}.white`` and ``surf/{lh,rh}.pial`` — one ellipsoidal cortical
  sheet per hemisphere (icosahedron subdivisions, ``grade`` 5: 10 242
  vertices each), placed inside the head sphere of MNE's standard 10–05
  montage (MRI = head coordinates, identity ``trans``);
* ``surf/{lh,rh}.sphere`` — the spherical registration MNE's ``ico``/``oct``
  source spacing needs;
* ``label/{lh,rh}.aparc.annot`` — the 68 Desikan–Killiany labels
  (``superiortemporal-lh`` …) as contiguous patches at roughly their
  anatomical place (lateral/medial, anterior/posterior, superior/inferior);
* ``bem/README`` noting that a sphere head model is used.

With it ``mne.setup_source_space``, ``mne.make_forward_solution`` (sphere
model), ``mne.minimum_norm.make_inverse_operator`` and
``mne.read_labels_from_annot`` all run in seconds.

Using the real fsaverage instead
--------------------------------
Where downloads are possible, ``mne.datasets.fetch_fsaverage(subjects_dir)``
fetches the real template; then pass ``subjects_dir=<that folder's parent>,
subject="fsaverage"`` to :func:`xaffect.neural.forward_model` /
:func:`xaffect.neural.region_signals` (or set ``subjects_dir`` and
``subject: fsaverage`` in the ``regions`` section of ``study.yaml``). Its
three-layer BEM (``bem/fsaverage-5120-5120-5120-bem-sol.fif``) and
``trans="fsaverage"`` are picked up automatically.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["synthetic_subject", "DK_NAMES", "HEAD_ORIGIN"]

#: Centre of the head sphere MNE fits to the standard 10–05 montage (metres, head coordinates).
HEAD_ORIGIN = np.array([-0.001, 0.014, 0.039])

# Desikan–Killiany labels and a rough direction of each patch's centre on a
# hemisphere: (lateral [+1] / medial [-1], anterior [+1] / posterior [-1],
# superior [+1] / inferior [-1]).
_DK_LAYOUT = {
    "bankssts": (1.0, -0.35, 0.05), "caudalanteriorcingulate": (-1.0, 0.3, 0.35),
    "caudalmiddlefrontal": (0.55, 0.35, 0.75), "cuneus": (-0.8, -0.95, 0.25),
    "entorhinal": (-0.3, 0.15, -1.0), "fusiform": (0.15, -0.45, -0.9),
    "inferiorparietal": (0.7, -0.65, 0.4), "inferiortemporal": (0.7, -0.15, -0.7),
    "isthmuscingulate": (-1.0, -0.5, 0.05), "lateraloccipital": (0.55, -1.0, 0.0),
    "lateralorbitofrontal": (0.45, 0.7, -0.55), "lingual": (-0.6, -0.8, -0.45),
    "medialorbitofrontal": (-0.6, 0.8, -0.5), "middletemporal": (1.0, -0.05, -0.35),
    "parahippocampal": (-0.5, -0.2, -0.8), "paracentral": (-0.8, -0.1, 0.8),
    "parsopercularis": (1.0, 0.45, 0.2), "parsorbitalis": (0.8, 0.8, -0.2),
    "parstriangularis": (0.9, 0.65, 0.05), "pericalcarine": (-0.7, -1.0, -0.1),
    "postcentral": (0.8, -0.25, 0.7), "posteriorcingulate": (-1.0, -0.1, 0.4),
    "precentral": (0.8, 0.1, 0.7), "precuneus": (-0.8, -0.6, 0.6),
    "rostralanteriorcingulate": (-1.0, 0.7, 0.1), "rostralmiddlefrontal": (0.6, 0.8, 0.4),
    "superiorfrontal": (-0.2, 0.5, 1.0), "superiorparietal": (0.3, -0.6, 0.9),
    "superiortemporal": (1.0, 0.2, -0.1), "supramarginal": (0.9, -0.3, 0.45),
    "frontalpole": (0.0, 1.0, 0.1), "temporalpole": (0.7, 0.7, -0.8),
    "transversetemporal": (1.0, 0.0, 0.25), "insula": (1.0, 0.35, -0.05),
}
#: The 34 Desikan–Killiany label names of one hemisphere (``aparc``), in FreeSurfer's order.
DK_NAMES = tuple(sorted(_DK_LAYOUT))

# Hemisphere ellipsoid (metres): centre offset from the midline and semi-axes (x, y, z).
_CENTRE = np.array([0.0, 0.014, 0.035])
_HALF_GAP = 0.032
_RADII = np.array([0.030, 0.060, 0.046])


def _icosphere(grade: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere subdivided ``grade`` times.

    Returns
    -------
    rr : ndarray of shape (10 * 4**grade + 2, 3)
    tris : ndarray of shape (20 * 4**grade, 3), counter-clockwise seen from outside
    """
    t = (1.0 + 5 ** 0.5) / 2.0
    rr = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
                   [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    tris = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                     [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
                     [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    rr /= np.linalg.norm(rr, axis=1, keepdims=True)
    for _ in range(grade):
        edges = np.sort(np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]]), axis=1)
        uniq, inv = np.unique(edges, axis=0, return_inverse=True)
        mids = rr[uniq[:, 0]] + rr[uniq[:, 1]]
        mids /= np.linalg.norm(mids, axis=1, keepdims=True)
        m = inv.reshape(3, -1) + len(rr)  # midpoints of edges 01, 12, 20 per triangle
        a, b, c = tris.T
        tris = np.concatenate([np.stack([a, m[0], m[2]], 1), np.stack([b, m[1], m[0]], 1),
                               np.stack([c, m[2], m[1]], 1), np.stack([m[0], m[1], m[2]], 1)])
        rr = np.concatenate([rr, mids])
    # orient every triangle outwards
    n = np.cross(rr[tris[:, 1]] - rr[tris[:, 0]], rr[tris[:, 2]] - rr[tris[:, 0]])
    flip = (n * rr[tris].mean(1)).sum(1) < 0
    tris[flip] = tris[flip][:, [0, 2, 1]]
    return rr, tris


def _seeds(hemi: str) -> np.ndarray:
    """Unit directions of the 34 patch centres of ``hemi``, spread apart a little."""
    sign = -1.0 if hemi == "lh" else 1.0
    d = np.array([_DK_LAYOUT[n] for n in DK_NAMES], float)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    for _ in range(60):  # gentle repulsion so every patch gets a fair share of the sheet
        diff = d[:, None] - d[None]
        dist2 = (diff ** 2).sum(-1) + np.eye(len(d))
        push = (diff / dist2[..., None] ** 1.5).sum(1)
        d = d + 0.002 * push
        d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d * np.array([sign, 1.0, 1.0])  # lateral is -x on the left, +x on the right


def _annotation(sphere: np.ndarray, hemi: str) -> np.ndarray:
    """Index (0..33) of the nearest patch centre for each unit direction in ``sphere``."""
    return np.argmax(sphere @ _seeds(hemi).T, axis=1)


def _colors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(20, 235, size=(n, 3))
    return np.column_stack([rgb, np.zeros(n, int)])


def synthetic_subject(subjects_dir: str | os.PathLike, subject: str = "xaffect-synth", *, grade: int = 5,
                      overwrite: bool = False) -> Path:
    """Write a small FreeSurfer-format subject usable by MNE's source-space code.

    Parameters
    ----------
    subjects_dir : path
        FreeSurfer ``SUBJECTS_DIR`` (created if missing).
    subject : str
        Subject folder name.
    grade : int
        Icosahedron subdivisions of each hemisphere's surfaces (5: 10 242
        vertices; source spaces ``oct5``/``ico4`` and coarser then work).
    overwrite : bool
        Rewrite an existing subject (otherwise it is reused as is).

    Returns
    -------
    Path
        The subject's folder ``<subjects_dir>/<subject>``.
    """
    import nibabel.freesurfer as nfs

    if not 2 <= int(grade) <= 6:
        raise InputError(f"grade: must be between 2 and 6, got {grade}")
    if not subject or "/" in subject:
        raise InputError(f"subject: {subject!r} is not a valid folder name")
    root = Path(subjects_dir).expanduser() / subject
    done = root / "label" / "rh.aparc.annot"
    if done.exists() and not overwrite:
        return root
    for sub in ("surf", "label", "bem", "mri"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    unit, tris = _icosphere(int(grade))
    for hemi, side in (("lh", -1.0), ("rh", 1.0)):
        centre = _CENTRE + np.array([side * _HALF_GAP, 0.0, 0.0])
        white = (centre + unit * _RADII) * 1000.0  # FreeSurfer surfaces are in mm
        pial = (centre + unit * (_RADII + 0.0025)) * 1000.0
        nfs.write_geometry(str(root / "surf" / f"{hemi}.white"), white, tris)
        nfs.write_geometry(str(root / "surf" / f"{hemi}.pial"), pial, tris)
        nfs.write_geometry(str(root / "surf" / f"{hemi}.sphere"), unit * 100.0, tris)
        labels = _annotation(unit, hemi)
        ctab = _colors(len(DK_NAMES), seed=0)
        nfs.write_annot(str(root / "label" / f"{hemi}.aparc.annot"), labels.astype(np.int32), ctab,
                        list(DK_NAMES), fill_ctab=True)
    (root / "bem" / "README").write_text(
        "xaffect synthetic subject: no BEM surfaces; forward models use a spherical head model\n"
        "fitted to the EEG montage (MRI and head coordinates coincide: identity trans).\n")
    return root
