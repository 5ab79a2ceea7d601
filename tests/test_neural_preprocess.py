"""EEG preprocessing: bad channels, interpolation, filters, reference, resampling, ICA."""

import numpy as np

import mne

from xaffect.neural import find_bad_channels, preprocess, set_standard_montage  # noqa: E402

NAMES = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3", "Cz", "C4", "T8",
         "CP5", "CP1", "CP2", "CP6", "P7", "P3", "Pz", "P4", "P8", "O1", "Oz", "O2"]


def _raw(seconds=30.0, sfreq=200.0, seed=0):
    """Smooth spatially correlated 'brain' activity plus a little sensor noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sfreq)
    raw = mne.io.RawArray(np.zeros((len(NAMES), n)), mne.create_info(NAMES, sfreq, "eeg"), verbose="error")
    set_standard_montage(raw)
    pos = np.array([raw.info["chs"][i]["loc"][:3] for i in range(len(NAMES))])
    sources = rng.standard_normal((6, n))
    centres = rng.standard_normal((6, 3))
    centres = 0.09 * centres / np.linalg.norm(centres, axis=1, keepdims=True)
    mix = np.exp(-np.linalg.norm(pos[:, None] - centres[None], axis=2) ** 2 / (2 * 0.05 ** 2))
    data = (mix @ sources + 0.05 * rng.standard_normal((len(NAMES), n))) * 1e-5
    return mne.io.RawArray(data, raw.info, verbose="error")


def test_find_bad_channels_kernel():
    rng = np.random.default_rng(0)
    shared = rng.standard_normal(1000)
    x = shared + 0.5 * rng.standard_normal((20, 1000))
    x[3] *= 30.0
    x[7] = 0.0
    x[12] = rng.standard_normal(1000)  # right variance, no shared signal
    assert np.flatnonzero(find_bad_channels(x)).tolist() == [3, 7, 12]
    assert np.flatnonzero(find_bad_channels(x, min_corr=None)).tolist() == [3, 7]
    assert not find_bad_channels(shared + 0.5 * rng.standard_normal((20, 1000))).any()


def test_bad_channel_detected_and_interpolated():
    raw = _raw()
    truth = raw.get_data(picks="Cz").ravel()
    data = raw.get_data()
    data[NAMES.index("Cz")] = np.random.default_rng(1).standard_normal(data.shape[1]) * 5e-4
    noisy = mne.io.RawArray(data, raw.info, verbose="error")
    clean, rec = preprocess(noisy, l_freq=None, h_freq=None, reference=None)
    assert rec["bad_channels"] == ["Cz"]
    assert clean.info["bads"] == []  # interpolated
    r = np.corrcoef(clean.get_data(picks="Cz").ravel(), truth)[0, 1]
    assert r > 0.7


def test_filters_reference_resample():
    raw = _raw()
    t = raw.times
    data = raw.get_data() + 2e-5 * np.sin(2 * np.pi * 50 * t) + 3e-5 * np.sin(2 * np.pi * 0.05 * t)
    raw = mne.io.RawArray(data, raw.info, verbose="error")
    clean, rec = preprocess(raw, l_freq=1.0, h_freq=40.0, notch=50.0, resample=100.0, bad_channels=None)
    assert clean.info["sfreq"] == 100.0 and rec["resample"] == 100.0
    x = clean.get_data()
    np.testing.assert_allclose(x.mean(0), 0.0, atol=1e-12)  # average reference
    f = np.fft.rfftfreq(x.shape[1], 1 / 100.0)
    p = np.abs(np.fft.rfft(x[:, 400:-400], n=x.shape[1])) ** 2
    assert p[:, f < 0.2].sum() < 1e-3 * p.sum()  # slow drift gone
    assert any("Average EEG reference" in pr["desc"] for pr in clean.info["projs"])


def test_ica_removes_planted_blinks():
    raw = _raw(seconds=60.0, sfreq=100.0, seed=2)
    n = raw.n_times
    blink = np.zeros(n)
    rng = np.random.default_rng(3)
    for s in rng.choice(n - 60, 25, replace=False):
        blink[s:s + 40] += np.hanning(40)
    weights = np.array([1.0 if c in ("Fp1", "Fp2") else 0.5 if c in ("F7", "F3", "Fz", "F4", "F8") else 0.05
                        for c in NAMES])
    data = raw.get_data() + np.outer(weights, blink) * 2e-4
    dirty = mne.io.RawArray(data, raw.info, verbose="error")
    clean, rec = preprocess(dirty, l_freq=1.0, h_freq=40.0, ica=10, ica_method="infomax", ica_exclude="eog",
                            bad_channels=None)
    assert rec["ica_excluded"], "no component matched the blinks"
    before = abs(np.corrcoef(dirty.get_data(picks="Fp1").ravel(), blink)[0, 1])
    after = abs(np.corrcoef(clean.get_data(picks="Fp1").ravel(), blink)[0, 1])
    assert before > 0.8 and after < 0.3
