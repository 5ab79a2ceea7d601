"""BIDS fMRI to parcel signals: xaffect's reader against the nilearn calls a user would write.

One synthetic fMRIPrep-style run (``--shape`` voxels x ``--volumes`` at TR 2 s,
``--parcels`` box parcels, the 24 motion + wm/csf + cosine confounds TSV),
written once to a temporary BIDS folder, then (interleaved repeats, medians):

* **xaffect** ``bids_region_signals``: find the run, read TR (sidecars) and
  events, check the atlas grid, load fMRIPrep confounds, extract parcel means,
  cut each stimulus onto the 1/TR clock;
* **nilearn** alone: ``load_confounds`` + ``NiftiLabelsMasker.fit_transform``
  with the same cleaning (what a user writes by hand, without events or clock).

Peak memory (tracemalloc, numpy allocations included) of each.

Usage::

    python benchmarks/bench_fmri_bids.py                        # 48x56x48 voxels, 180 volumes, 400 parcels
    python benchmarks/bench_fmri_bids.py --shape 64 76 64 --volumes 270
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

SPACE = "MNI152NLin2009cAsym"


def write_study(root: Path, shape: tuple[int, int, int], n_vol: int, n_parcels: int, seed: int = 0) -> Path:
    """One subject, one run with an fMRIPrep derivative; returns the atlas path."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    # box parcels: split the grid into ~n_parcels blocks (labels 1..n), a rim of background
    per_axis = int(np.ceil(n_parcels ** (1 / 3)))
    idx = [np.minimum((np.arange(s) * per_axis) // s, per_axis - 1) for s in shape]
    labels = (idx[0][:, None, None] * per_axis ** 2 + idx[1][None, :, None] * per_axis + idx[2][None, None, :])
    labels = (labels % n_parcels + 1).astype(np.int16)
    labels[0], labels[-1] = 0, 0
    (root / "atlas").mkdir(parents=True)
    atlas = root / "atlas" / f"space-{SPACE}_atlas.nii.gz"
    nib.save(nib.Nifti1Image(labels, aff), atlas)
    func = root / "sub-01" / "func"
    deriv = root / "derivatives" / "fmriprep" / "sub-01" / "func"
    func.mkdir(parents=True)
    deriv.mkdir(parents=True)
    stem = "sub-01_task-music_run-1"
    (root / "task-music_bold.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    (func / f"{stem}_events.tsv").write_text("onset\tduration\ttrial_type\n"
                                             f"4\t{(n_vol // 2 - 4) * 2}\tpiece-a\n"
                                             f"{n_vol + 3}\t{(n_vol // 2 - 4) * 2}\tpiece-b\n")
    bold = (800 + rng.standard_normal(shape + (n_vol,), dtype=np.float32)).astype(np.float32)
    img = nib.Nifti1Image(bold, aff)
    nib.save(img, func / f"{stem}_bold.nii.gz")
    nib.save(img, deriv / f"{stem}_space-{SPACE}_desc-preproc_bold.nii.gz")
    cols = {}
    for a in ("trans", "rot"):
        for b in "xyz":
            c = rng.standard_normal(n_vol)
            d = np.r_[0.0, np.diff(c)]
            cols.update({f"{a}_{b}": c, f"{a}_{b}_derivative1": d, f"{a}_{b}_power2": c ** 2,
                         f"{a}_{b}_derivative1_power2": d ** 2})
    cols["csf"], cols["white_matter"] = rng.standard_normal(n_vol), rng.standard_normal(n_vol)
    for j in range(int(2 * n_vol * 2.0 * 0.008)):
        cols[f"cosine{j:02d}"] = np.cos(np.pi * (np.arange(n_vol) + 0.5) * (j + 1) / n_vol)
    lines = ["\t".join(cols)] + ["\t".join(f"{cols[c][i]:.6f}" for c in cols) for i in range(n_vol)]
    (deriv / f"{stem}_desc-confounds_timeseries.tsv").write_text("\n".join(lines) + "\n")
    return atlas


def run_xaffect(root: Path, atlas: Path, names: list[str]) -> None:
    from xaffect.neural import bids_region_signals

    bids_region_signals(root, atlas, names, space=SPACE, high_pass=0.01)


def run_nilearn(root: Path, atlas: Path) -> None:
    from nilearn.interfaces.fmriprep import load_confounds
    from nilearn.maskers import NiftiLabelsMasker

    bold = next((root / "derivatives").rglob("*desc-preproc_bold.nii.gz"))
    conf, _ = load_confounds(str(bold), strategy=("motion", "high_pass", "wm_csf"), motion="full")
    NiftiLabelsMasker(labels_img=str(atlas), detrend=True, t_r=2.0, resampling_target=None, standardize=None,
                      verbose=0).fit_transform(str(bold), confounds=conf)


def measure(fn, *args) -> tuple[float, float]:
    """Wall time of one call, then the peak traced memory of another (tracemalloc slows what it traces)."""
    t0 = time.perf_counter()
    fn(*args)
    dt = time.perf_counter() - t0
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return dt, peak / 2 ** 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(48, 56, 48))
    ap.add_argument("--volumes", type=int, default=180)
    ap.add_argument("--parcels", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import nilearn.maskers  # noqa: F401  (imports are not what is timed)

    import xaffect.neural  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        atlas = write_study(root, tuple(args.shape), args.volumes, args.parcels)
        names = [f"p{i:03d}" for i in range(1, args.parcels + 1)]
        times: dict[str, list] = {"xaffect": [], "nilearn": []}
        for _ in range(args.repeats):
            times["xaffect"].append(measure(run_xaffect, root, atlas, names))
            times["nilearn"].append(measure(run_nilearn, root, atlas))
        print(f"{tuple(args.shape)} voxels x {args.volumes} volumes, {args.parcels} parcels; "
              f"load average {os.getloadavg()[0]:.1f}")
        med = {k: (float(np.median([t for t, _ in v])), float(np.median([m for _, m in v]))) for k, v in times.items()}
        for k, (t, m) in med.items():
            print(f"{k:8s} median {t:6.2f} s  peak {m:7.1f} MiB")
        print(f"time ratio xaffect/nilearn {med['xaffect'][0] / med['nilearn'][0]:.2f}, "
              f"memory ratio {med['xaffect'][1] / med['nilearn'][1]:.2f}")


if __name__ == "__main__":
    main()
