"""EEG readers (FIF, EDF, BrainVision, EEGLAB, BIDS, SEED .mat) and stimulus segmentation."""

import importlib
import numpy as np
import pytest
import scipy.io

import mne

from xaffect.errors import InputError  # noqa: E402
from xaffect.neural import (SEED_CHANNELS, read_eeg, read_eeg_bids, read_seed_mat,  # noqa: E402
                            segment_stimuli)

NAMES = ["Fp1", "Fz", "Cz", "Pz", "O1", "O2", "T7", "T8"]


def _raw(sfreq=100.0, seconds=20.0, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((len(NAMES), int(sfreq * seconds))) * 1e-5
    raw = mne.io.RawArray(data, mne.create_info(NAMES, sfreq, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([2.0, 9.0], [5.0, 6.0], ["clip01", "clip02"]))
    return raw


@pytest.mark.parametrize("ext,fmt", [(".fif", "fif"), (".edf", "edf"), (".vhdr", "brainvision"),
                                     (".set", "eeglab")])
def test_formats_roundtrip(tmp_path, ext, fmt):
    raw = _raw()
    path = tmp_path / f"sub-01_eeg{ext}"
    if fmt == "fif":
        raw.save(path, verbose="error")
    else:
        importlib.import_module({"edf": "edfio", "brainvision": "pybv", "eeglab": "eeglabio"}[fmt])  # the writer is a declared test dependency
        mne.export.export_raw(path, raw, fmt=fmt, verbose="error", overwrite=True)
    back = read_eeg(path)
    assert [c.upper() for c in back.ch_names[:len(NAMES)]] == [c.upper() for c in NAMES]
    assert back.info["sfreq"] == 100.0
    # positions come from the 10-05 names
    assert np.all(np.linalg.norm([back.info["chs"][i]["loc"][:3] for i in range(len(NAMES))], axis=1) > 0.05)
    x = back.get_data(picks=NAMES)
    np.testing.assert_allclose(x[:, :1000], raw.get_data()[:, :1000], atol=2e-8)  # EDF is 16-bit
    segs = segment_stimuli(back, ["clip01", "clip02"])
    assert segs["clip01"].n_times == 500 and segs["clip02"].n_times == 600
    np.testing.assert_allclose(segs["clip02"].get_data(picks=NAMES), raw.get_data()[:, 900:1500], atol=2e-8)


def test_bids(tmp_path):
    import mne_bids
    raw = _raw()
    src = tmp_path / "raw.fif"
    raw.save(src, verbose="error")
    bp = mne_bids.BIDSPath(subject="01", task="films", root=tmp_path / "bids", datatype="eeg")
    mne_bids.write_raw_bids(mne.io.read_raw_fif(src, verbose="error"), bp, verbose=False, allow_preload=False)
    back = read_eeg_bids(tmp_path / "bids", subject="sub-01", task="films")
    assert back.n_times == raw.n_times
    assert {"clip01", "clip02"} <= set(back.annotations.description)
    with pytest.raises(InputError, match="sub-02"):
        read_eeg_bids(tmp_path / "bids", subject="02", task="films")


def test_seed_mat(tmp_path):
    rng = np.random.default_rng(1)
    clips = {f"djc_eeg{n}": rng.standard_normal((62, 200 * (3 + n))) for n in (1, 2, 3)}
    path = tmp_path / "1_20131027.mat"
    scipy.io.savemat(path, clips)
    out = read_seed_mat(path)
    assert sorted(out) == [1, 2, 3]
    assert out[2].info["sfreq"] == 200.0 and out[2].n_times == 1000 and len(out[2].ch_names) == 62
    np.testing.assert_allclose(out[3].get_data(), clips["djc_eeg3"] * 1e-6)
    assert out[1].ch_names[0] == "Fp1" and len(SEED_CHANNELS) == 62
    assert all(np.any(ch["loc"][:3]) for ch in out[1].info["chs"])
    scipy.io.savemat(tmp_path / "bad.mat", {"djc_eeg1": rng.standard_normal((30, 100))})
    with pytest.raises(InputError, match=r"bad.mat.*djc_eeg1.*\(62"):
        read_seed_mat(tmp_path / "bad.mat")
    scipy.io.savemat(tmp_path / "none.mat", {"x": np.zeros(3)})
    with pytest.raises(InputError, match="none.mat"):
        read_seed_mat(tmp_path / "none.mat")


def test_segmentation_errors():
    raw = _raw(seconds=10.0)  # clip02 (6 s from 9 s) is cut at the end of the recording
    with pytest.raises(InputError, match="sub-04.*shorter than its stimulus 'clip02'"):
        segment_stimuli(raw, ["clip02"], durations={"clip02": 6.0}, who="subject sub-04")
    with pytest.raises(InputError, match="sub-04.*clip09"):
        segment_stimuli(raw, ["clip09"], who="subject sub-04")
    with pytest.raises(InputError, match="clip01.*lasts 8.00 s"):
        segment_stimuli(raw, ["clip01"], durations={"clip01": 8.0}, who="subject sub-04")


def test_unreadable_and_missing(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_eeg(tmp_path / "nope.edf")
    bad = tmp_path / "junk.edf"
    bad.write_bytes(b"not an edf file at all")
    with pytest.raises(InputError, match="junk.edf"):
        read_eeg(bad)
