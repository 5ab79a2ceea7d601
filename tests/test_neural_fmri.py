"""fMRI region means: planted region signals recovered, confounds regressed, atlas checks."""

import numpy as np
import pytest

import nibabel as nib
import nilearn  # noqa: F401  (declared test dependency)

from xaffect.errors import ConfigError, InputError  # noqa: E402
from xaffect.neural import atlas_names, fmri_region_signals  # noqa: E402


def _make(tmp_path, T=80, tr=2.0, seed=0):
    rng = np.random.default_rng(seed)
    atlas = np.zeros((10, 10, 8), np.int16)
    atlas[1:5, 1:9, 1:4] = 3
    atlas[5:9, 1:9, 1:4] = 7
    atlas[1:9, 1:9, 4:7] = 12
    sig = {k: rng.standard_normal(T) for k in (3, 7, 12)}
    confound = np.sin(np.linspace(0, 6 * np.pi, T)) * 3.0
    bold = np.full(atlas.shape + (T,), 500.0)
    for k, s in sig.items():
        bold[atlas == k] += s + confound
    bold += 0.5 * rng.standard_normal(bold.shape)
    aff = np.diag([3.0, 3.0, 3.0, 1.0])
    img = nib.Nifti1Image(bold.astype(np.float32), aff)
    img.header.set_zooms((3.0, 3.0, 3.0, tr))
    nib.save(img, tmp_path / "bold.nii.gz")
    nib.save(nib.Nifti1Image(atlas, aff), tmp_path / "atlas.nii.gz")
    (tmp_path / "names.txt").write_text("3 superiortemporal-lh\n7 superiortemporal-rh\n12 insula-lh\n")
    junk = rng.standard_normal(T)
    (tmp_path / "confounds.tsv").write_text("wave\tjunk\n" + "\n".join(
        f"{v:.6f}\t{j:.6f}" for v, j in zip(confound, junk)) + "\n")
    return sig, confound


def test_region_means_recover_planted_signals(tmp_path):
    sig, confound = _make(tmp_path)
    out = fmri_region_signals(tmp_path / "bold.nii.gz", tmp_path / "atlas.nii.gz", tmp_path / "names.txt",
                              confounds=tmp_path / "confounds.tsv", confound_columns=["wave"], high_pass=None)
    assert out.dims == ("time", "region")
    assert list(out["region"].values) == ["superiortemporal-lh", "superiortemporal-rh", "insula-lh"]
    assert out.attrs["sfreq"] == 0.5 and out.sizes["time"] == 80
    for j, k in enumerate((3, 7, 12)):
        assert np.corrcoef(out.values[:, j], sig[k])[0, 1] > 0.95
    # without the confound regression, the shared confound dominates
    raw = fmri_region_signals(tmp_path / "bold.nii.gz", tmp_path / "atlas.nii.gz", tmp_path / "names.txt",
                              high_pass=None)
    assert abs(np.corrcoef(raw.values[:, 0], confound)[0, 1]) > 0.8
    assert abs(np.corrcoef(out.values[:, 0], confound)[0, 1]) < 0.1


def test_high_pass_removes_drift(tmp_path):
    _make(tmp_path)
    img = nib.load(tmp_path / "bold.nii.gz")
    data = img.get_fdata() + np.linspace(0, 50, img.shape[3])
    drift = nib.Nifti1Image(data.astype(np.float32), img.affine, img.header)
    a = fmri_region_signals(drift, tmp_path / "atlas.nii.gz", ["a", "b", "c"], high_pass=0.01, detrend=False)
    b = fmri_region_signals(drift, tmp_path / "atlas.nii.gz", ["a", "b", "c"], high_pass=None, detrend=False)
    t = np.arange(a.sizes["time"])
    slope_b = np.polyfit(t, b.values[:, 0], 1)[0]
    slope_a = np.polyfit(t, a.values[:, 0], 1)[0]
    assert abs(np.corrcoef(b.values[:, 0], t)[0, 1]) > 0.9
    assert abs(slope_a) < 0.2 * abs(slope_b)


def test_atlas_names_mismatch(tmp_path):
    _make(tmp_path)
    with pytest.raises(InputError, match="atlas.nii.gz.*3 labels but 2 names"):
        atlas_names(tmp_path / "atlas.nii.gz", ["a", "b"])
    with pytest.raises(InputError, match=r"atlas.nii.gz.*labels without a name \[12\].*names without a label \[99\]"):
        atlas_names(tmp_path / "atlas.nii.gz", {3: "a", 7: "b", 99: "z"})
    assert atlas_names(tmp_path / "atlas.nii.gz", ["a", "b", "c"]) == {3: "a", 7: "b", 12: "c"}


def test_bad_bold(tmp_path):
    _make(tmp_path)
    img = nib.load(tmp_path / "bold.nii.gz")
    data = img.get_fdata()
    data[2, 2, 2, 5] = np.nan
    with pytest.raises(InputError, match="sub-09.*NaN"):
        fmri_region_signals(nib.Nifti1Image(data, img.affine, img.header), tmp_path / "atlas.nii.gz",
                            ["a", "b", "c"], who="subject sub-09")
    with pytest.raises(InputError, match="confounds.tsv: no confound column.*motion"):
        fmri_region_signals(img, tmp_path / "atlas.nii.gz", ["a", "b", "c"], confounds=tmp_path / "confounds.tsv",
                            confound_columns=["motion"])
    with pytest.raises(InputError, match="confound rows"):
        fmri_region_signals(img, tmp_path / "atlas.nii.gz", ["a", "b", "c"], confounds=np.zeros((5, 1)))


# --- a BIDS study laid out like OpenNeuro ds003085 -------------------------------------------------

import json  # noqa: E402

from xaffect.neural import (bids_region_signals, bids_subject_signals, check_atlas_space,  # noqa: E402
                            find_bold_runs, read_fmriprep_confounds, read_repetition_time)

TR, N_VOL, SPACE = 2.0, 200, "MNI152NLin2009cAsym"
# stimulus, onset (s), duration (s): onsets are not multiples of TR
EVENTS = [("happy", 9.0, 120.0), ("sad-short", 141.0, 200.0)]
MOTION = [f"{a}_{b}" for a in ("trans", "rot") for b in "xyz"]


def _atlas():
    atlas = np.zeros((8, 8, 6), np.int16)
    atlas[1:4, 1:7, 1:5] = 1
    atlas[4:7, 1:7, 1:3] = 2
    atlas[4:7, 1:7, 3:5] = 3
    return atlas


def _bids(root, *, seed=0, motion_gain=20.0, drift=30.0):
    """Two subjects, one run each: sub-01 with an fMRIPrep derivative and confounds, sub-02 raw.

    Each parcel carries its own planted signal; sub-01's voxels also carry a motion
    artefact (trans_x, voxel-varying gain) and sub-02's a linear drift.
    """
    rng = np.random.default_rng(seed)
    aff = np.diag([3.0, 3.0, 3.0, 1.0])
    atlas = _atlas()
    (root / "atlas").mkdir(parents=True)
    nib.save(nib.Nifti1Image(atlas, aff), root / "atlas" / f"space-{SPACE}_atlas.nii.gz")
    (root / "atlas" / "names.txt").write_text("1 vmPFC\n2 STG-lh\n3 STG-rh\n")
    (root / "dataset_description.json").write_text(json.dumps({"Name": "toy ds003085", "BIDSVersion": "1.8.0"}))
    (root / "task-music_bold.json").write_text(json.dumps({"TaskName": "music"}))  # inherited, no TR here
    planted, artefacts = {}, {}
    keep = np.fft.rfftfreq(N_VOL, TR) >= 0.02  # planted signals live above the 0.01 Hz drift cut-off

    def band(x):
        x = np.fft.irfft(np.fft.rfft(x) * keep, N_VOL)
        return x / x.std()

    for sub in ("01", "02"):
        sig = {k: band(rng.standard_normal(N_VOL)) for k in (1, 2, 3)}
        bold = np.full(atlas.shape + (N_VOL,), 800.0)
        for k, s in sig.items():
            bold[atlas == k] += 2.0 * s
        bold += 0.3 * rng.standard_normal(bold.shape)
        func = root / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        stem = f"sub-{sub}_task-music_run-1"
        (func / f"{stem}_bold.json").write_text(json.dumps({"RepetitionTime": TR, "TaskName": "music"}))
        (func / f"{stem}_events.tsv").write_text("onset\tduration\ttrial_type\n" + "".join(
            f"{o}\t{d}\t{n}\n" for n, o, d in EVENTS))
        if sub == "01":
            walk = np.cumsum(rng.standard_normal(N_VOL))
            trans_x = (walk - walk.mean()) / walk.std()
            gain = motion_gain * rng.uniform(0.5, 1.5, atlas.shape)
            prep = bold + gain[..., None] * trans_x
            deriv = root / "derivatives" / "fmriprep" / f"sub-{sub}" / "func"
            deriv.mkdir(parents=True)
            nib.save(nib.Nifti1Image(prep.astype(np.float32), aff),
                     deriv / f"{stem}_space-{SPACE}_desc-preproc_bold.nii.gz")
            cols = {c: 0.01 * rng.standard_normal(N_VOL) for c in MOTION}
            cols["trans_x"] = trans_x
            for c in MOTION:  # fMRIPrep's 24-parameter expansion
                d = np.r_[0.0, np.diff(cols[c])]
                cols[f"{c}_derivative1"], cols[f"{c}_power2"] = d, cols[c] ** 2
                cols[f"{c}_derivative1_power2"] = d ** 2
            cols["csf"], cols["white_matter"] = rng.standard_normal(N_VOL), rng.standard_normal(N_VOL)
            cols["non_steady_state_outlier00"] = (np.arange(N_VOL) == 0).astype(float)
            t = np.arange(N_VOL)
            for j in range(3):
                cols[f"cosine{j:02d}"] = np.cos(np.pi * (t + 0.5) * (j + 1) / N_VOL)
            header = "\t".join(cols)
            rows = "".join("\t".join(f"{cols[c][i]:.6f}" for c in cols) + "\n" for i in range(N_VOL))
            (deriv / f"{stem}_desc-confounds_timeseries.tsv").write_text(header + "\n" + rows)
            # the raw run next to it has the artefact too (the derivative is what is read)
            bold = prep
            artefacts[sub] = trans_x
        else:
            ramp = np.linspace(-drift, drift, N_VOL)
            bold = bold + ramp
            artefacts[sub] = ramp
        nib.save(nib.Nifti1Image(bold.astype(np.float32), aff), func / f"{stem}_bold.nii.gz")
        planted[sub] = sig
    return planted, artefacts


def _corr(a, b):
    return float(np.corrcoef(a, b)[0, 1])


@pytest.fixture(scope="module")
def bids_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds003085")
    planted, artefacts = _bids(root)
    return root, planted, artefacts


def _read(root, **kw):
    return bids_region_signals(root, root / "atlas" / f"space-{SPACE}_atlas.nii.gz", root / "atlas" / "names.txt",
                               stimuli=["happy", "sad-short"], space=SPACE, **kw)


def test_bids_runs_found_with_tr_events_and_fmriprep(bids_root):
    root, _, _ = bids_root
    runs = find_bold_runs(root, space=SPACE)
    assert [(r.subject, r.task, r.run, r.fmriprep) for r in runs] == [("01", "music", "1", True),
                                                                      ("02", "music", "1", False)]
    assert runs[0].bold.name.endswith("desc-preproc_bold.nii.gz") and runs[1].bold == runs[1].raw
    assert all(r.t_r == TR and r.events is not None for r in runs)


def test_bids_parcel_signals_on_the_tr_clock_recover_planted_signals(bids_root):
    root, planted, artefacts = bids_root
    out = _read(root)
    assert list(out) == ["happy", "sad-short"]
    for stim, onset, duration in EVENTS:
        da = out[stim]
        assert da.dims == ("subject", "sample", "region") and da.dtype == np.float32
        assert list(da["subject"].values) == ["sub-01", "sub-02"]
        assert list(da["region"].values) == ["vmPFC", "STG-lh", "STG-rh"]
        n = int(duration // TR)
        assert da.sizes["sample"] == n and da.attrs["sfreq"] == 1 / TR
        np.testing.assert_allclose(da["onset"].values, (np.arange(n) + 0.5) * TR)
        # bin i holds the volume whose centre (k + 1/2) TR - onset lies in [i TR, (i + 1) TR)
        first = int(np.ceil(onset / TR - 0.5))
        for s, sub in enumerate(("01", "02")):
            for j, k in enumerate((1, 2, 3)):
                want = planted[sub][k][first:first + n]
                # sub-01 loses ~30 of 200 degrees of freedom to fMRIPrep's 24 motion + wm/csf + cosine regressors
                assert _corr(da.values[s, :, j], want) > 0.85, (stim, sub, k)
                # one volume off is a different signal: the alignment is exact, not approximate
                assert abs(_corr(da.values[s, :, j], planted[sub][k][first + 1:first + 1 + n])) < 0.5


def test_confound_regression_removes_planted_motion_and_drift(bids_root):
    root, planted, artefacts = bids_root
    runs = find_bold_runs(root, space=SPACE)
    atlas, names = root / "atlas" / f"space-{SPACE}_atlas.nii.gz", root / "atlas" / "names.txt"
    # sub-01: fMRIPrep's 24 motion parameters remove the planted trans_x artefact
    cleaned = fmri_region_signals(runs[0].bold, atlas, names, high_pass=None, detrend=False,
                                  confounds=read_fmriprep_confounds(runs[0].bold, strategy=["motion"]))
    raw = fmri_region_signals(runs[0].bold, atlas, names, high_pass=None, detrend=False)
    for j, k in enumerate((1, 2, 3)):
        assert abs(_corr(raw.values[:, j], artefacts["01"])) > 0.9
        assert _corr(raw.values[:, j], planted["01"][k]) < 0.5
        assert abs(_corr(cleaned.values[:, j], artefacts["01"])) < 0.1
        assert _corr(cleaned.values[:, j], planted["01"][k]) > 0.9  # 24 regressors cost ~24 of 200 dof
    # through the BIDS reader: the recorded confounds name what was regressed
    out = _read(root)["sad-short"]
    assert out.sizes["subject"] == 2
    per = bids_subject_signals(runs[:1], atlas, names, stimuli=["sad-short"])["sad-short"]
    assert "trans_x" in per.attrs["confounds"] and "rot_z_derivative1_power2" in per.attrs["confounds"]
    assert "cosine00" in per.attrs["confounds"] and "csf" in per.attrs["confounds"]
    # fMRIPrep's non-steady-state volume stays on the clock, with a spike regressor of its own
    assert "spike_0000" in per.attrs["confounds"] and "cosine high-pass" not in per.attrs["confounds"]
    # sub-02 (raw, no fMRIPrep): drift removal only, the planted ramp is gone
    drift_only = fmri_region_signals(runs[1].bold, atlas, names, high_pass=0.01, detrend=True)
    kept = fmri_region_signals(runs[1].bold, atlas, names, high_pass=None, detrend=False)
    for j, k in enumerate((1, 2, 3)):
        assert abs(_corr(kept.values[:, j], artefacts["02"])) > 0.9
        # the ramp's slope in the signal: ~1 before, under 3 % of it after (the planted noise alone gives ~1 %)
        slope_kept = np.polyfit(artefacts["02"], kept.values[:, j], 1)[0]
        slope_clean = np.polyfit(artefacts["02"], drift_only.values[:, j], 1)[0]
        assert slope_kept > 0.9 and abs(slope_clean) < 0.03 * slope_kept
        assert _corr(drift_only.values[:, j], planted["02"][k]) > 0.9


def _sidecar(root, sub, **meta):
    (root / f"sub-{sub}" / "func" / f"sub-{sub}_task-music_run-1_bold.json").write_text(json.dumps(meta))


def test_repetition_time_inherited_missing_or_different(tmp_path):
    _bids(tmp_path)
    raw2 = tmp_path / "sub-02" / "func" / "sub-02_task-music_run-1_bold.nii.gz"
    _sidecar(tmp_path, "02", TaskName="music")
    with pytest.raises(InputError, match=r"sub-02_task-music_run-1_bold.nii.gz: no RepetitionTime.*'RepetitionTime'"):
        find_bold_runs(tmp_path)
    # BIDS inheritance: the root sidecar gives it, a run's own sidecar overrides it
    (tmp_path / "task-music_bold.json").write_text(json.dumps({"RepetitionTime": TR}))
    assert read_repetition_time(raw2, tmp_path) == TR
    _sidecar(tmp_path, "02", RepetitionTime=1.5)
    assert read_repetition_time(raw2, tmp_path) == 1.5
    with pytest.raises(InputError, match=r"sub-02_task-music_run-1_bold.nii.gz: RepetitionTime 1.5 s differs from "
                                         r"sub-01_task-music_run-1_bold.nii.gz's 2 s"):
        find_bold_runs(tmp_path)
    _sidecar(tmp_path, "02", RepetitionTime="two")
    with pytest.raises(InputError, match="sub-02.*RepetitionTime 'two' is not a number"):
        find_bold_runs(tmp_path)


def test_atlas_in_another_space_or_grid_is_refused(tmp_path):
    _bids(tmp_path)
    bold = next((tmp_path / "derivatives").rglob("*desc-preproc_bold.nii.gz"))
    aff = np.diag([3.0, 3.0, 3.0, 1.0])
    bigger = np.zeros((9, 8, 6), np.int16)
    bigger[:8] = _atlas()
    nib.save(nib.Nifti1Image(bigger, aff), tmp_path / "wide.nii.gz")
    with pytest.raises(InputError, match=r"wide.nii.gz: atlas grid \(9, 8, 6\).*not the grid of .*desc-preproc_bold"):
        check_atlas_space(tmp_path / "wide.nii.gz", bold)
    nib.save(nib.Nifti1Image(_atlas(), np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "fine.nii.gz")
    with pytest.raises(InputError, match=r"fine.nii.gz: atlas grid \(8, 8, 6\) with \[2.0, 2.0, 2.0\] mm"):
        bids_region_signals(tmp_path, tmp_path / "fine.nii.gz", ["a", "b", "c"], space=SPACE)
    nib.save(nib.Nifti1Image(_atlas(), aff), tmp_path / "space-T1w_atlas.nii.gz")
    with pytest.raises(InputError, match=r"space-T1w_atlas.nii.gz: atlas is in space 'T1w' but .*sub-01.* is in "
                                         r"space 'MNI152NLin2009cAsym'"):
        bids_region_signals(tmp_path, tmp_path / "space-T1w_atlas.nii.gz", ["a", "b", "c"], space=SPACE)


def test_bad_events_confounds_and_spaces_name_the_run(tmp_path):
    _bids(tmp_path)
    atlas = tmp_path / "atlas" / f"space-{SPACE}_atlas.nii.gz"
    func2 = tmp_path / "sub-02" / "func"
    (func2 / "sub-02_task-music_run-1_events.tsv").write_text("onset\tduration\ttrial_type\n300\t150\thappy\n")
    with pytest.raises(InputError, match=r"sub-02_task-music_run-1, stimulus 'happy': the run's 200 volumes "
                                         r"\(400 s\) do not cover the stimulus \(onset 300 s, duration 150 s\)"):
        bids_region_signals(tmp_path, atlas, ["a", "b", "c"], space=SPACE)
    (func2 / "sub-02_task-music_run-1_events.tsv").write_text("onset\tduration\ttrial_type\n3\t20\thappy\n"
                                                              "30\t20\thappy\n")
    with pytest.raises(InputError, match=r"sub-02_task-music_run-1: stimulus 'happy' was already played in "
                                         r"sub-02_task-music_run-1"):
        bids_region_signals(tmp_path, atlas, ["a", "b", "c"], subjects=["02"])
    (func2 / "sub-02_task-music_run-1_events.tsv").write_text("onset\tduration\ttrial_type\n3\t80\thappy\n")
    with pytest.raises(InputError, match=r"stimulus 'happy': sub-02 has 40 bins but sub-01 has 60"):
        bids_region_signals(tmp_path, atlas, ["a", "b", "c"], space=SPACE)
    (func2 / "sub-02_task-music_run-1_events.tsv").write_text("onset\tduration\tstim\n3\t20\thappy\n")
    with pytest.raises(InputError, match=r"sub-02_task-music_run-1_events.tsv: no column\(s\) trial_type"):
        bids_region_signals(tmp_path, atlas, ["a", "b", "c"], space=SPACE, subjects=["sub-02"])
    with pytest.raises(InputError, match=r"sub-02_task-music_run-1_events.tsv: no row of column 'stim' names a "
                                         r"stimulus of the study \(found \['happy'\]\)"):
        bids_region_signals(tmp_path, atlas, ["a", "b", "c"], subjects=["02"], stimuli=["sad"], stimulus_column="stim")
    (func2 / "sub-02_task-music_run-1_events.tsv").unlink()
    with pytest.raises(InputError, match=r"sub-02_task-music_run-1: no events file"):
        bids_region_signals(tmp_path, atlas, ["a", "b", "c"], subjects=["02"])
    # fMRIPrep confounds without the motion columns; a strategy that would drop volumes
    conf = next((tmp_path / "derivatives").rglob("*desc-confounds_timeseries.tsv"))
    conf.write_text("csf\twhite_matter\n" + "0.1\t0.2\n" * N_VOL)
    with pytest.raises(InputError, match=r"sub-01_task-music_run-1: cannot read its fMRIPrep confounds"):
        bids_region_signals(tmp_path, atlas, ["a", "b", "c"], subjects=["01"], space=SPACE)
    # events durations checked against the audio's (when the study knows it)
    with pytest.raises(InputError, match=r"sub-01_task-music_run-1_events.tsv: stimulus 'happy' lasts 120 s in the "
                                         r"events but 90 s in its audio"):
        bids_subject_signals(find_bold_runs(tmp_path, subjects=["01"], space=SPACE), atlas, ["a", "b", "c"],
                             stimuli=["happy"], durations={"happy": 90.0})
    with pytest.raises(InputError, match=r"confound_strategy: 'scrub' not allowed"):
        bids_region_signals(tmp_path, atlas, ["a", "b", "c"], subjects=["01"], confound_strategy=["scrub"])
    # two fMRIPrep spaces and no choice
    prep = next((tmp_path / "derivatives").rglob("*desc-preproc_bold.nii.gz"))
    (prep.parent / prep.name.replace(SPACE, "T1w")).write_bytes(prep.read_bytes())
    with pytest.raises(InputError, match=r"sub-01_task-music_run-1: fMRIPrep has it in spaces \['MNI152NLin2009cAsym', "
                                         r"'T1w'\]; set the space \(config key 'bids_space'\)"):
        find_bold_runs(tmp_path)
    with pytest.raises(InputError, match=r"nowhere: BIDS root is not a folder"):
        find_bold_runs(tmp_path / "nowhere")


def test_regions_stage_reads_a_bids_study(tmp_path):
    import soundfile as sf
    import yaml

    from xaffect.neural.stage import STAGES
    from xaffect.study import load_study

    planted, _ = _bids(tmp_path / "ds003085")
    for name, _, _ in EVENTS:
        sf.write(tmp_path / f"{name}.wav", np.zeros(8000, np.float32), 8000)

    def study(**regions):
        cfg = {"name": "t", "workspace": "ws", "stages": ["regions"],
               "stimuli": [{"name": n, "path": f"{n}.wav"} for n, _, _ in EVENTS],
               "regions": {"kind": "fmri", "bids": "ds003085", "bids_space": SPACE,
                           "atlas": f"ds003085/atlas/space-{SPACE}_atlas.nii.gz",
                           "atlas_names": "ds003085/atlas/names.txt", **regions}}
        (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        return load_study(tmp_path / "study.yaml")

    good = study()
    STAGES["regions"].run(good, progress=False)
    g = good.workspace.open("regions", group="sad-short")
    assert g["signal"].dims == ("subject", "sample", "region") and g["signal"].shape == (2, 100, 3)
    assert g.attrs["sfreq"] == 1 / TR and list(g["subject"].values) == ["sub-01", "sub-02"]
    first = int(np.ceil(141.0 / TR - 0.5))
    assert _corr(g["signal"].values[1, :, 0], planted["02"][1][first:first + 100]) > 0.9
    before = g["signal"].values.copy()
    # the runs' events are inputs of the store: a changed onset is a recomputed store
    events = tmp_path / "ds003085" / "sub-02" / "func" / "sub-02_task-music_run-1_events.tsv"
    text = events.read_text()
    events.write_text(text.replace("141.0\t", "143.0\t"))
    STAGES["regions"].run(good, progress=False)
    moved = good.workspace.open("regions", group="sad-short")["signal"].values
    assert _corr(moved[1, :, 0], planted["02"][1][first + 1:first + 101]) > 0.9
    events.write_text(text)
    STAGES["regions"].run(good, progress=False)
    np.testing.assert_array_equal(good.workspace.open("regions", group="sad-short")["signal"].values, before)
    # an atlas on another grid: a one-line error naming the atlas and the run; the store stays as it was
    nib.save(nib.Nifti1Image(_atlas(), np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "ds003085" / "atlas" / "two.nii.gz")
    bad = study(atlas="ds003085/atlas/two.nii.gz")
    # (subjects run in parallel: either run may be the first to fail)
    with pytest.raises(InputError, match=r"two.nii.gz: atlas grid .* is not the grid of .*sub-0[12]_task-music_run-1"):
        STAGES["regions"].run(bad, progress=False)
    np.testing.assert_array_equal(bad.workspace.open("regions", group="sad-short")["signal"].values, before)
    with pytest.raises(ConfigError, match=r"regions.recordings: missing required key \(or `bids` for fMRI\)"):
        STAGES["regions"].run(study(bids=None), progress=False)
    with pytest.raises(ConfigError, match=r"regions: give fMRI `recordings` or `bids`, not both"):
        STAGES["regions"].run(study(recordings=[{"subject": "sub-01", "path": "happy.wav", "stimulus": "happy"}]),
                              progress=False)
