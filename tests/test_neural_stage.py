"""The ``regions`` stage: EEG and fMRI studies to the ``regions`` store."""

import numpy as np
import pytest
import xarray as xr
import yaml

import mne
import soundfile as sf

from xaffect.datasets import synthetic_subject  # noqa: E402
from xaffect.errors import InputError  # noqa: E402
from xaffect.neural import forward_model, region_labels, set_standard_montage, simulate_raw  # noqa: E402
from xaffect.neural.stage import STAGES  # noqa: E402
from xaffect.study import load_study  # noqa: E402

NAMES = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3", "Cz", "C4", "T8",
         "CP5", "CP1", "CP2", "CP6", "P7", "P3", "Pz", "P4", "P8", "O1", "Oz", "O2"]


def _write_study(root, regions, n_stimuli=2):
    stims = []
    for i in range(1, n_stimuli + 1):
        p = root / f"clip{i:02d}.wav"
        sf.write(p, np.zeros(16000 * 3, np.float32), 16000)
        stims.append({"name": f"clip{i:02d}", "path": p.name})
    cfg = {"name": "t", "workspace": "ws", "stimuli": stims, "stages": ["regions"], "regions": regions}
    (root / "study.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return load_study(root / "study.yaml")


@pytest.fixture(scope="module")
def eeg_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("eeg")
    sd = root / "anatomy"
    synthetic_subject(sd, grade=4)
    raw0 = mne.io.RawArray(np.zeros((len(NAMES), 1)), mne.create_info(NAMES, 100.0, "eeg"), verbose="error")
    set_standard_montage(raw0)
    fwd = forward_model(raw0.info, subjects_dir=sd, subject="xaffect-synth", spacing="oct4")
    labels = region_labels(subjects_dir=sd, subject="xaffect-synth")
    rng = np.random.default_rng(0)
    shared = rng.standard_normal(1400)  # the film drives superior temporal cortex in everyone
    paths = []
    for s in range(3):
        x = np.c_[shared + 0.5 * rng.standard_normal(1400), rng.standard_normal((1400, 2))] * 1e-8
        sig = xr.DataArray(x, dims=("time", "region"),
                           coords={"region": ["superiortemporal-lh", "precuneus-rh", "frontalpole-lh"]})
        raw = simulate_raw(sig, raw0.info, fwd, labels, noise=0.2, seed=s)
        raw.set_annotations(mne.Annotations([1.0, 8.0], [3.0, 3.0], ["clip01", "clip02"]))
        p = root / f"sub-{s + 1:02d}_raw.fif"
        raw.save(p, verbose="error")
        paths.append(p)
    return root, sd, paths, shared


def test_regions_stage_eeg(eeg_files, tmp_path):
    root, sd, paths, shared = eeg_files
    regions = {"kind": "eeg", "recordings": [{"subject": f"sub-{i + 1:02d}", "path": str(p)} for i, p in enumerate(paths)],
               "subjects_dir": str(sd), "subject": "xaffect-synth", "spacing": "oct4", "method": "MNE",
               "preprocess": {"l_freq": None, "h_freq": 40.0}}
    study = _write_study(tmp_path, regions)
    assert STAGES["regions"].run(study, progress=False) == ["regions"]
    ws = study.workspace
    tree = ws.open("regions")
    assert set(tree.children) == {"clip01", "clip02"}
    g = ws.open("regions", group="clip01")
    assert g["signal"].dims == ("subject", "sample", "region")
    assert g.sizes["subject"] == 3 and g.sizes["sample"] == 300 and g.sizes["region"] == 68
    assert g.attrs["sfreq"] == 100.0 and "superiortemporal-lh" in g["region"].values
    assert g["signal"].dtype == np.float32
    # the planted shared drive comes out in the planted region of every subject
    st = g["signal"].sel(region="superiortemporal-lh").values
    r = [np.corrcoef(st[s], shared[100:400])[0, 1] for s in range(3)]
    assert min(r) > 0.6, r
    prov = ws.provenance("regions")
    assert prov["params"]["method"] == "MNE" and prov["params"]["preprocess"]["h_freq"] == 40.0
    # identity-skip: a second run writes nothing
    path = ws.metadata("regions")["xaffect"]["path"]
    STAGES["regions"].run(study, progress=False)
    assert ws.metadata("regions")["xaffect"]["path"] == path


def test_regions_stage_sampling_rate_mismatch(eeg_files, tmp_path):
    root, sd, paths, shared = eeg_files
    odd = mne.io.read_raw_fif(paths[2], preload=True, verbose="error").resample(50.0, verbose="error")
    odd_path = tmp_path / "sub-03_50hz_raw.fif"
    odd.save(odd_path, verbose="error")
    regions = {"kind": "eeg", "recordings": [{"subject": "sub-01", "path": str(paths[0])},
                                              {"subject": "sub-03", "path": str(odd_path)}],
               "subjects_dir": str(sd), "subject": "xaffect-synth", "spacing": "oct4", "method": "MNE"}
    study = _write_study(tmp_path, regions)
    with pytest.raises(InputError, match="subject sub-03: sampling rate 50 Hz differs"):
        STAGES["regions"].run(study, progress=False)
    assert "regions" not in study.workspace


def test_regions_stage_missing_annotation(eeg_files, tmp_path):
    root, sd, paths, shared = eeg_files
    regions = {"kind": "eeg", "recordings": [{"subject": "sub-01", "path": str(paths[0])}],
               "subjects_dir": str(sd), "subject": "xaffect-synth", "spacing": "oct4", "method": "MNE"}
    study = _write_study(tmp_path, regions, n_stimuli=3)  # clip03 has no annotation: only 2 of 3 covered
    STAGES["regions"].run(study, progress=False)
    assert set(study.workspace.open("regions").children) == {"clip01", "clip02"}
    regions["subject"] = "nobody"
    study = _write_study(tmp_path, {**regions}, n_stimuli=2)
    with pytest.raises(InputError, match="'nobody'"):
        STAGES["regions"].run(study, progress=False)


def test_regions_stage_fmri(tmp_path):
    import nibabel as nib
    rng = np.random.default_rng(0)
    atlas = np.zeros((6, 6, 6), np.int16)
    atlas[:3] = 1
    atlas[3:] = 2
    aff = np.diag([3.0, 3.0, 3.0, 1.0])
    nib.save(nib.Nifti1Image(atlas, aff), tmp_path / "atlas.nii.gz")
    recs = []
    for s in ("sub-01", "sub-02"):
        for c in ("clip01", "clip02"):
            img = nib.Nifti1Image((100 + rng.standard_normal((6, 6, 6, 20))).astype(np.float32), aff)
            img.header.set_zooms((3.0, 3.0, 3.0, 2.0))
            nib.save(img, tmp_path / f"{s}_{c}.nii.gz")
            recs.append({"subject": s, "path": f"{s}_{c}.nii.gz", "stimulus": c})
    study = _write_study(tmp_path, {"kind": "fmri", "recordings": recs, "atlas": "atlas.nii.gz",
                                    "atlas_names": ["insula-lh", "insula-rh"]})
    STAGES["regions"].run(study, progress=False)
    g = study.workspace.open("regions", group="clip02")
    assert g["signal"].shape == (2, 20, 2) and g.attrs["sfreq"] == 0.5
    assert list(g["region"].values) == ["insula-lh", "insula-rh"]
    bad = _write_study(tmp_path, {"kind": "fmri", "recordings": recs, "atlas": "atlas.nii.gz",
                                  "atlas_names": ["insula-lh"]})
    bad.workspace.remove("regions")
    with pytest.raises(InputError, match="atlas.nii.gz.*2 labels but 1 names"):
        STAGES["regions"].run(bad, progress=False)
    assert "regions" not in bad.workspace


def test_regions_stage_seed_mat(eeg_files, tmp_path):
    import scipy.io

    from xaffect.neural import SEED_CHANNELS

    root, sd, paths, shared = eeg_files
    raw0 = mne.io.RawArray(np.zeros((62, 1)), mne.create_info(list(SEED_CHANNELS), 200.0, "eeg"), verbose="error")
    set_standard_montage(raw0)
    fwd = forward_model(raw0.info, subjects_dir=sd, subject="xaffect-synth", spacing="oct4")
    labels = region_labels(subjects_dir=sd, subject="xaffect-synth")
    rng = np.random.default_rng(2)
    clips = {}
    for n in (1, 2):
        sig = xr.DataArray(rng.standard_normal((700, 1)) * 1e-8, dims=("time", "region"),
                           coords={"region": ["middletemporal-rh"]})
        clips[f"ab_eeg{n}"] = simulate_raw(sig, raw0.info, fwd, labels, noise=0.2, seed=n).get_data() * 1e6
    scipy.io.savemat(tmp_path / "1_20131027.mat", clips)
    regions = {"kind": "eeg", "recordings": [{"subject": "sub-01", "path": "1_20131027.mat"}],
               "seed_clips": ["clip02", "clip01"], "subjects_dir": str(sd), "subject": "xaffect-synth",
               "spacing": "oct4", "method": "MNE"}
    study = _write_study(tmp_path, regions)
    STAGES["regions"].run(study, progress=False)
    g = study.workspace.open("regions", group="clip02")  # clip 1 of the file
    assert g.attrs["sfreq"] == 200.0 and g["signal"].shape == (1, 700, 68)
    # the 62-channel cap's region signals recover the planted clip's source
    x = g["signal"].sel(subject="sub-01")
    order = g["region"].values[np.argsort(-x.var("sample").values)]
    assert "middletemporal-rh" in order[:3], order[:5]
