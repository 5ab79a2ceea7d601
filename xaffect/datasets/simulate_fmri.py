"""A simulated music fMRI study with a known answer, laid out like OpenNeuro ds003085.

:func:`simulate_fmri_study` writes what a lab would bring to xaffect for the
second seed's design (music, BOLD, continuous ratings):

* ``stimuli/<name>.wav`` -- music-like pieces (:func:`~xaffect.datasets.media.synth_music`);
  ``stimuli/truth/<name>.{voice,soundtrack}.wav``: the music as the
  soundtrack and a silent voice (instrumental pieces), read by the ``stems``
  stage instead of a separation.
* ``bids/`` -- a BIDS study: ``sub-XX/func/sub-XX_task-music_run-K_bold.nii.gz``
  with JSON sidecars (``RepetitionTime``), ``events.tsv`` (onset, duration,
  ``trial_type`` = the stimulus), ``participants.tsv``; with ``fmriprep``
  also ``derivatives/fmriprep/`` (``desc-preproc`` runs carrying a motion
  artefact and their ``desc-confounds_timeseries.tsv``).
* ``atlas/`` -- a small volumetric labels image on the BOLD grid whose
  parcels carry the names of brainspace's Schaefer parcels of the left
  hemisphere (``schaefer<n>_lh_<k>``; each parcel a block of voxels), and
  ``gradient.csv``: each parcel's position on the HCP principal gradient
  (``conte69_32k_fc_gradient0`` averaged over the parcel's vertices) and its
  centroid on the conte69 sphere, for the spatial null.
* ``ratings/<name>.csv`` -- continuous ``emotionality``, ``enjoyment`` and
  ``valence`` from several raters.
* ``ground_truth.json``, ``simulation.json``, ``study.yaml`` (stems,
  features, regions via ``bids``, targets, encode with FIR delays, report).

Planted effects
---------------
Each planted parcel follows the most layer-specific principal component of
one layer of the network (:func:`~xaffect.datasets.plants.specific_component`),
convolved with nilearn's Glover HRF, plus subject noise; the planted layer
follows the gradient: parcels are ranked by G1 and the rank is mapped
linearly onto the layers, plus Gaussian noise of ``layer_noise`` layers
(so the planted map correlates with G1 but not perfectly). ``null_share`` of
the parcels carry noise only. Emotionality and enjoyment follow two
different layers (``rating_layers``), ``rating_lag`` s late; valence is rater
noise only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .media import _smooth_walk, synth_music
from .plants import deep_activations, model_label, specific_component

__all__ = ["simulate_fmri_study", "glover_hrf_on_tr", "DEFAULT_FMRI_DELAYS"]

#: FIR delays (s) of the encoding: 5 s is half-way between two TRs at TR 2 s, built by cubic interpolation.
DEFAULT_FMRI_DELAYS = (4.0, 5.0, 6.0)
_MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
_BLOCK = 2  # voxels per parcel along each axis of the grid


def glover_hrf_on_tr(t_r: float, *, length: float = 32.0) -> np.ndarray:
    """Glover's HRF (nilearn) as seen on the TR clock: its mean over each TR-wide lag bin, unit norm.

    Returns
    -------
    ndarray of shape (ceil(length / t_r),)
        Kernel ``h[j]``: response at a volume to a unit drive ``j`` TRs earlier.
    """
    from nilearn.glm.first_level import glover_hrf

    over = 20
    fine = glover_hrf(t_r, oversampling=over, time_length=length)   # dt = t_r / over, from 0
    n = int(np.ceil(length / t_r))
    t = np.arange(fine.size) * t_r / over
    h = np.array([fine[(t >= (j - 0.5) * t_r) & (t < (j + 0.5) * t_r)].mean() if j else fine[t < 0.5 * t_r].mean()
                  for j in range(n)])
    return h / np.linalg.norm(h)


def _planted_layers(g1: np.ndarray, layers: Sequence[int], *, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Monotone map from gradient rank to layer, plus Gaussian noise (in layers), clipped to the network."""
    from scipy.stats import rankdata

    u = (rankdata(g1) - 0.5) / g1.size                                   # (0, 1)
    pos = u * (len(layers) - 1) + noise * rng.standard_normal(g1.size)
    return np.asarray(layers)[np.clip(np.round(pos), 0, len(layers) - 1).astype(int)]


def _atlas_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels image (1..n, 0 = outside) of n parcels as _BLOCK^3 voxel blocks, and a 3-mm affine."""
    side = int(np.ceil(np.sqrt(n)))
    shape = (side * (_BLOCK + 1) + 1, side * (_BLOCK + 1) + 1, _BLOCK + 2)
    lab = np.zeros(shape, dtype=np.int16)
    for k in range(n):
        x, y = 1 + (k % side) * (_BLOCK + 1), 1 + (k // side) * (_BLOCK + 1)
        lab[x:x + _BLOCK, y:y + _BLOCK, 1:1 + _BLOCK] = k + 1
    aff = np.diag([3.0, 3.0, 3.0, 1.0])
    aff[:3, 3] = -1.5 * np.array(shape)
    return lab, aff


def _check(name: str, value: float, lo: float, hi: float | None = None) -> None:
    if not (value >= lo and (hi is None or value <= hi)):
        raise InputError(f"{name}: must be {'>= %g' % lo if hi is None else 'in [%g, %g]' % (lo, hi)}, got {value}")


def _confounds(rng: np.random.Generator, n_vol: int, t_r: float) -> dict[str, np.ndarray]:
    """fMRIPrep-style confound columns: 6 motion parameters (a slow walk in trans_x), wm, csf, cosines."""
    cols = {c: 0.02 * _smooth_walk(rng, n_vol, smooth=3) for c in _MOTION}
    cols["trans_x"] = _smooth_walk(rng, n_vol, smooth=4)
    cols["csf"], cols["white_matter"] = rng.standard_normal(n_vol), rng.standard_normal(n_vol)
    t = np.arange(n_vol)
    for j in range(max(1, int(np.floor(2 * n_vol * t_r / 128.0)))):  # fMRIPrep: 128-s discrete cosine basis
        cols[f"cosine{j:02d}"] = np.sqrt(2.0 / n_vol) * np.cos(np.pi * (t + 0.5) * (j + 1) / n_vol)
    return cols


def simulate_fmri_study(out_dir: str | os.PathLike, *, seed: int = 0, quick: bool = False,
                        n_subjects: int | None = None, n_stimuli: int | None = None, duration: float | None = None,
                        t_r: float = 2.0, n_raters: int = 5, n_parcels: int = 100, null_share: float = 0.25,
                        layer_noise: float = 0.5, model: Mapping[str, Any] | None = None,
                        feature_set: str = "crepe.pca12", rating_layers: Mapping[str, int] | None = None,
                        rating_lag: float = 5.0, effect_size: float | None = None, fmriprep: bool = True,
                        delays: Sequence[float] = DEFAULT_FMRI_DELAYS, extractors: Sequence[Mapping] = (),
                        feature_sets: Sequence[str] | None = None, n_perm: int = 200, rest: float = 12.0,
                        overwrite: bool = False, progress: bool = True) -> Path:
    """Write a simulated BIDS music-fMRI study with a planted layer map and its ground truth.

    Parameters
    ----------
    out_dir : path
        Study folder (created; must be empty unless ``overwrite``).
    seed : int
    quick : bool
        Smaller defaults (4 subjects, 5 pieces of 90 s) for tests and ``xaffect demo --fmri --quick``.
    n_subjects, n_stimuli : int, optional
        Defaults 6 and 5 (quick: 4 and 5).
    duration : float, optional
        Seconds per piece; default 150 (quick: 90); a whole number of TRs.
    t_r : float
        Repetition time (s), written as ``RepetitionTime``; the analysis clock is 1/TR.
    n_raters : int
    n_parcels : {100, 200, 300, 400}
        Schaefer scale; the left hemisphere's half are the parcels.
    null_share : float
        Share of parcels with no planted drive (noise only).
    layer_noise : float
        SD (in layers) of the noise added to the gradient's layer map.
    model : mapping
        A ``kind: torch`` extractor entry of the plant's network (default trained CREPE,
        :func:`~xaffect.features.crepe_extractor_spec`, frames every 0.2 s: ten per 2-s TR).
    feature_set : str
        The ``feature_set`` the scores store will give that network (for ``ground_truth.json``).
    rating_layers : mapping, optional
        ``{"emotionality": layer, "enjoyment": layer}`` (default: a third and the top of the network).
    rating_lag : float
        Seconds the ratings lag the music.
    effect_size : float, optional
        Planted amplitude against unit-variance subject noise; default 1.0 (quick 1.3).
    fmriprep : bool
        Write fMRIPrep derivatives (a motion artefact in the preprocessed runs, regressed out by their
        confounds) besides the raw runs.
    delays : list of float
        FIR delays (s) of ``encode``.
    extractors : list of mapping
        More ``features`` extractors (e.g. a random-init VGGish), encoded beside the plant's network.
    feature_sets : list of str, optional
        ``encode.feature_sets`` (default: ``features.lld`` and ``features.<feature_set>``).
    n_perm : int
        ``encode.n_perm``.
    rest : float
        Seconds of rest before each piece (and ``rest + 4`` after it) in its run.

    Returns
    -------
    Path
        The ``study.yaml`` written.
    """
    import nibabel as nib
    import pandas as pd
    import soundfile as sf
    import yaml
    from tqdm.auto import tqdm

    from ..analysis.gradients import load_hcp_gradient, load_schaefer_parcels, parcellate
    from ..features import crepe_extractor_spec

    n_subjects = int(n_subjects if n_subjects is not None else (4 if quick else 6))
    n_stimuli = int(n_stimuli if n_stimuli is not None else 5)
    duration = float(duration if duration is not None else (90.0 if quick else 150.0))
    effect_size = float(effect_size if effect_size is not None else (1.3 if quick else 1.0))
    for name, v, lo in (("n_subjects", n_subjects, 2), ("n_stimuli", n_stimuli, 3), ("n_raters", n_raters, 1)):
        if v < lo:
            raise InputError(f"{name}: at least {lo} needed, got {v}")
    _check("t_r", t_r, 0.1, 10.0)
    _check("null_share", null_share, 0.0, 0.9)
    _check("layer_noise", layer_noise, 0.0)
    _check("effect_size", effect_size, 0.0)
    _check("rest", rest, 0.0)
    if abs(duration / t_r - round(duration / t_r)) > 1e-6 or duration / t_r < 20:
        raise InputError(f"duration: {duration:g} s must be a whole number of TRs ({t_r:g} s), at least 20")
    if abs(rest / t_r - round(rest / t_r)) > 1e-6:
        raise InputError(f"rest: {rest:g} s must be a whole number of TRs ({t_r:g} s)")
    bad = [d for d in delays if not 0 <= float(d) < duration]
    if not delays or bad:
        raise InputError(f"delays: {list(delays)} must be seconds in [0, duration)")
    if n_parcels not in (100, 200, 300, 400):
        raise InputError(f"n_parcels: brainspace ships Schaefer 100, 200, 300, 400, got {n_parcels}")
    model = dict(model) if model is not None else crepe_extractor_spec("crepe", hop_seconds=0.2, pca=12)
    if isinstance(model.get("layers"), list):             # torch networks number their recorded layers 1..n
        for scale, lay in (rating_layers or {}).items():
            if not 1 <= int(lay) <= len(model["layers"]):
                raise InputError(f"rating_layers.{scale}: layer {lay} is not one of the network's layers "
                                 f"1..{len(model['layers'])}")
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out}: folder is not empty (pass overwrite=True)")
    rng = np.random.default_rng(seed)
    sr, rate = 16000, 1.0 / t_r
    names = [f"piece{i + 1:02d}" for i in range(n_stimuli)]
    bar = tqdm(total=n_subjects + 3, desc="simulate fMRI study", disable=not progress)

    # 1. music
    for sub in ("stimuli/truth", "ratings", "atlas", "bids"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    audios = {}
    for name in names:
        audios[name] = 0.8 * synth_music(duration, sr, rng)
        sf.write(out / "stimuli" / f"{name}.wav", audios[name], sr)
        sf.write(out / "stimuli" / "truth" / f"{name}.soundtrack.wav", audios[name], sr)
        sf.write(out / "stimuli" / "truth" / f"{name}.voice.wav", np.zeros_like(audios[name]), sr)
    bar.update()

    # 2. parcels, their gradient position, and the planted layer map
    parcels = load_schaefer_parcels(n_parcels, "lh")
    g1 = parcellate(load_hcp_gradient("lh"), parcels)
    regions = [str(r) for r in parcels["region"].values]
    acts, coords = deep_activations(model, audios, sr, rate)             # (time, layer, unit) per piece
    rating_layers = dict(rating_layers or {"emotionality": coords[len(coords) // 3], "enjoyment": coords[-1]})
    for scale, lay in rating_layers.items():
        if lay not in coords:
            raise InputError(f"rating_layers.{scale}: layer {lay} is not a layer of {model_label(model)} "
                             f"({coords[0]}..{coords[-1]})")
    n_null = int(round(null_share * len(regions)))
    is_null = np.zeros(len(regions), bool)
    is_null[rng.choice(len(regions), n_null, replace=False)] = True
    planted = np.full(len(regions), -1)
    planted[~is_null] = _planted_layers(g1.values[~is_null], coords, noise=layer_noise, rng=rng)
    n_bins = int(round(duration * rate))
    allx = np.concatenate([acts[n][:n_bins] for n in names])
    series, specificity = {}, {}
    for lay in sorted(set(planted[~is_null].tolist()) | set(rating_layers.values())):
        comp, specificity[int(lay)] = specific_component(allx, coords.index(lay))
        series[int(lay)] = {n: comp[i * n_bins:(i + 1) * n_bins] for i, n in enumerate(names)}
    bar.update()

    # 3. ratings: emotionality and enjoyment follow their layers rating_lag s late; valence is rater noise
    fs_r = 1.0
    t = np.arange(int(duration * fs_r)) / fs_r
    centres = (np.arange(n_bins) + 0.5) / rate
    scales = [*rating_layers, "valence"]
    for name in names:
        rows = []
        for scale in scales:
            drive = (np.interp(t - rating_lag, centres, series[rating_layers[scale]][name], left=0.0)
                     if scale in rating_layers else np.zeros_like(t))
            for r in range(n_raters):
                gain = 1.5 * effect_size * rng.uniform(0.7, 1.3)
                own = _smooth_walk(rng, t.size, smooth=int(4 * fs_r))
                val = np.clip(50 + 15 * (gain * drive + own) / np.sqrt(1 + gain ** 2), 0, 100)
                rows.append(pd.DataFrame({"onset": t, "rating": np.round(val, 2), "rater": f"rater{r + 1}",
                                          "scale": scale}))
        pd.concat(rows).to_csv(out / "ratings" / f"{name}.csv", index=False)

    # 4. BOLD: HRF-convolved drive + shared and subject noise, per voxel; one run per piece
    lab, aff = _atlas_grid(len(regions))
    nib.save(nib.Nifti1Image(lab, aff), out / "atlas" / "schaefer_lh_grid.nii.gz")
    (out / "atlas" / "names.txt").write_text("".join(f"{k + 1} {r}\n" for k, r in enumerate(regions)))
    pd.DataFrame({"region": regions, "g1": g1.values, **{f"centroid_{a}": parcels["centroid"].values[:, i]
                                                          for i, a in enumerate("xyz")}}
                 ).to_csv(out / "atlas" / "gradient.csv", index=False)
    h = glover_hrf_on_tr(t_r)
    pre, post = int(round(rest / t_r)), int(round((rest + 4.0) / t_r))
    n_vol = pre + n_bins + post
    bids = out / "bids"
    (bids / "dataset_description.json").write_text(json.dumps({"Name": f"xaffect simulated music fMRI (seed {seed})",
                                                               "BIDSVersion": "1.8.0", "DatasetType": "raw"}))
    (bids / "task-music_bold.json").write_text(json.dumps({"TaskName": "music"}))
    subjects = [f"sub-{s + 1:02d}" for s in range(n_subjects)]
    pd.DataFrame({"participant_id": subjects}).to_csv(bids / "participants.tsv", sep="\t", index=False)
    shared = {(n, j): 0.3 * _smooth_walk(rng, n_vol, smooth=2) for n in names for j in range(len(regions))}
    voxel_of = [lab == k + 1 for k in range(len(regions))]
    for s, subj in enumerate(subjects):
        func = bids / subj / "func"
        func.mkdir(parents=True)
        deriv = bids / "derivatives" / "fmriprep" / subj / "func"
        gain = effect_size * rng.uniform(0.7, 1.3, len(regions))
        for k, name in enumerate(names):
            stem = f"{subj}_task-music_run-{k + 1}"
            x = np.zeros((len(regions), n_vol))
            for j in np.flatnonzero(~is_null):
                drive = np.zeros(n_vol)
                drive[pre:pre + n_bins] = series[int(planted[j])][name]
                x[j] = gain[j] * (np.convolve(drive, h)[:n_vol] + shared[(name, j)])
            ar = np.zeros((len(regions), n_vol))                           # subject noise: AR(1), unit variance
            e = rng.standard_normal((len(regions), n_vol))
            for i in range(n_vol):
                ar[:, i] = e[:, i] if i == 0 else 0.5 * ar[:, i - 1] + np.sqrt(0.75) * e[:, i]
            x += ar
            bold = np.full(lab.shape + (n_vol,), 800.0, dtype=np.float64)
            for j, vox in enumerate(voxel_of):
                bold[vox] += 8.0 * (x[j][None, :] + 1.0 * rng.standard_normal((int(vox.sum()), n_vol)))
            bold += 10.0 * np.linspace(-1, 1, n_vol)                       # scanner drift (detrended by the reader)
            (func / f"{stem}_bold.json").write_text(json.dumps({"RepetitionTime": t_r, "TaskName": "music"}))
            (func / f"{stem}_events.tsv").write_text(f"onset\tduration\ttrial_type\n{pre * t_r:g}\t{duration:g}\t{name}\n")
            if fmriprep:
                cols = _confounds(rng, n_vol, t_r)
                art = 40.0 * rng.uniform(0.5, 1.5, lab.shape)[..., None] * cols["trans_x"]
                bold = bold + art * (lab > 0)[..., None]
                deriv.mkdir(parents=True, exist_ok=True)
                nib.save(nib.Nifti1Image(bold.astype(np.float32), aff),
                         deriv / f"{stem}_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz")
                pd.DataFrame(cols).to_csv(deriv / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False,
                                          float_format="%.6f")
            nib.save(nib.Nifti1Image(bold.astype(np.float32), aff), func / f"{stem}_bold.nii.gz")
        bar.update()

    # 5. ground truth, simulation record, study.yaml
    parcel_truth = {r: {"g1": float(g1.values[j]), "layer": None if is_null[j] else int(planted[j])}
                    for j, r in enumerate(regions)}
    from scipy.stats import spearmanr

    rho = float(spearmanr(planted[~is_null], g1.values[~is_null])[0])
    gt = {"kind": "fmri", "feature_set": feature_set, "element": "original", "layers": coords,
          "planted": [{"target": f"region:{r}", "element": "original", "feature_set": feature_set,
                       "layer": int(planted[j])} for j, r in enumerate(regions) if not is_null[j]]
          + [{"target": f"rating:{sc}", "element": "original", "feature_set": feature_set, "layer": int(lay)}
             for sc, lay in rating_layers.items()],
          "null_targets": [f"region:{r}" for j, r in enumerate(regions) if is_null[j]] + ["rating:valence"],
          "parcels": parcel_truth, "ratings": {sc: int(lay) for sc, lay in rating_layers.items()},
          "gradient": {"name": "conte69_32k_fc_gradient0", "hemisphere": "lh", "file": "atlas/gradient.csv",
                       "planted_spearman": rho}}
    (out / "ground_truth.json").write_text(json.dumps(gt, indent=2))
    sim = {"seed": seed, "quick": quick, "n_subjects": n_subjects, "n_stimuli": n_stimuli, "duration": duration,
           "t_r": t_r, "n_raters": n_raters, "n_parcels": n_parcels, "null_share": null_share,
           "layer_noise": layer_noise, "effect_size": effect_size, "rating_lag": rating_lag, "rest": rest,
           "fmriprep": fmriprep, "model": model, "layer_specificity": specificity, "delays": [float(d) for d in delays],
           "hrf": "nilearn glover_hrf, averaged over TR-wide lag bins", "subjects": subjects}
    (out / "simulation.json").write_text(json.dumps(sim, indent=2))
    regions_cfg: dict[str, Any] = {"kind": "fmri", "bids": "bids", "atlas": "atlas/schaefer_lh_grid.nii.gz",
                                   "atlas_names": "atlas/names.txt", "motion": "basic"}
    if fmriprep:
        regions_cfg["bids_space"] = "MNI152NLin2009cAsym"
    encode: dict[str, Any] = {"delays": [float(d) for d in delays], "elements": ["original"],
                              "targets": ["ratings", "regions"], "n_perm": int(n_perm), "seed": int(seed)}
    # the reduced sets (refitted inside the folds from their full cubes) and the classical descriptors
    encode["feature_sets"] = list(feature_sets) if feature_sets is not None else ["features.lld", f"features.{feature_set}"]
    study = {"name": f"simulated-fmri-seed{seed}",
             "description": (f"Simulated music fMRI study (seed {seed}): {n_stimuli} pieces of {duration:g} s, "
                             f"{n_subjects} subjects, TR {t_r:g} s, {len(regions)} Schaefer parcels (left "
                             f"hemisphere) whose planted best layer of {model_label(model)} follows the HCP "
                             f"principal gradient ({n_null} null parcels); emotionality <- layer "
                             f"{rating_layers.get('emotionality')}, enjoyment <- layer "
                             f"{rating_layers.get('enjoyment')}, valence: rater noise."),
             "workspace": "workspace", "rate": rate, "ground_truth": "ground_truth.json",
             "stimuli": [{"name": n, "path": f"stimuli/{n}.wav"} for n in names],
             "stages": ["stems", "features", "regions", "targets", "encode", "analyses", "report"],
             "stems": {"stems_dir": "stimuli/truth"},
             "features": {"extractors": [{"kind": "lld", "name": "lld", "elements": ["original"]},
                                         {**model, "elements": ["original"]},
                                         *[{**dict(e), "elements": ["original"]} for e in extractors]]},
             "regions": regions_cfg,
             "targets": {"files": {n: f"ratings/{n}.csv" for n in names}},
             "encode": encode,
             # the second seed's analyses as stores and report sections: the centroid-layer map (parcels with
             # a layer beating its null) against brainspace's HCP G1 under Moran randomisation, and
             # emotionality vs enjoyment paired layer by layer
             "analyses": {"gradient": {"map": "centroid", "null": "moran", "n_null": 500, "seed": int(seed)},
                          "differential": {"a": ["rating:emotionality"], "b": ["rating:enjoyment"],
                                           "seed": int(seed)}},
             "report": {}}
    path = out / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    bar.update()
    bar.close()
    return path
