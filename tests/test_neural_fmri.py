"""fMRI region means: planted region signals recovered, confounds regressed, atlas checks."""

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pytest.importorskip("nilearn")

from xaffect.errors import InputError  # noqa: E402
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
