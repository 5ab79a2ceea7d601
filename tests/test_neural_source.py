"""Source localisation to regions: synthetic subject, fused path vs MNE, planted-source recovery, bad input."""

import numpy as np
import pytest
import xarray as xr

import mne

from xaffect.datasets import synthetic_subject  # noqa: E402
from xaffect.errors import InputError  # noqa: E402
from xaffect.neural import (forward_model, make_inverse, preprocess, region_filter, region_labels,  # noqa: E402
                            region_signals, set_standard_montage, simulate_raw)

SUBJ = "xaffect-synth"
PLANTED = ["superiortemporal-lh", "lateraloccipital-rh", "precentral-rh"]


def _info(n=48, sfreq=100.0):
    names = ["Fp1", "Fp2", "AF3", "AF4", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3",
             "Cz", "C4", "T8", "CP5", "CP1", "CP2", "CP6", "P7", "P3", "Pz", "P4", "P8", "PO3", "PO4", "O1",
             "Oz", "O2", "F5", "F1", "F2", "F6", "C5", "C1", "C2", "C6", "P5", "P1", "P2", "P6", "FT7", "FT8",
             "TP7", "TP8"][:n]
    raw = mne.io.RawArray(np.zeros((len(names), 1)), mne.create_info(names, sfreq, "eeg"), verbose="error")
    set_standard_montage(raw)
    return raw.info


@pytest.fixture(scope="module")
def anatomy(tmp_path_factory):
    sd = tmp_path_factory.mktemp("subjects")
    synthetic_subject(sd, SUBJ, grade=4)
    info = _info()
    fwd = forward_model(info, subjects_dir=sd, subject=SUBJ, spacing="oct4")
    labels = region_labels(subjects_dir=sd, subject=SUBJ)
    return sd, info, fwd, labels


def _planted(n, sfreq, seed=0):
    rng = np.random.default_rng(seed)
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [2.0, 20.0], btype="band", fs=sfreq, output="sos")
    x = sosfiltfilt(sos, rng.standard_normal((n, len(PLANTED))), axis=0)
    x /= x.std(0)
    return xr.DataArray(x * 1e-8, dims=("time", "region"), coords={"region": PLANTED})


def test_synthetic_subject_is_read_by_mne(anatomy):
    sd, info, fwd, labels = anatomy
    assert len(labels) == 68
    assert {"superiortemporal-lh", "rostralanteriorcingulate-rh", "frontalpole-lh", "insula-rh"} <= {
        lab.name for lab in labels}
    # every region has sources in the oct4 source space
    vert = [s["vertno"] for s in fwd["src"]]
    for lab in labels:
        assert np.isin(lab.vertices, vert[0 if lab.hemi == "lh" else 1]).sum() >= 1, lab.name
    # patches are contiguous-ish: left superior temporal sits lateral (x < 0) and below the top
    st = next(lab for lab in labels if lab.name == "superiortemporal-lh")
    assert st.pos[:, 0].mean() < -0.04
    for f in ("lh.white", "rh.pial", "lh.sphere"):
        assert (sd / SUBJ / "surf" / f).is_file()


@pytest.mark.parametrize("method,mode", [("eLORETA", "mean_flip"), ("dSPM", "mean_flip"), ("MNE", "mean")])
def test_fused_path_equals_mne(anatomy, method, mode):
    sd, info, fwd, labels = anatomy
    raw = simulate_raw(_planted(400, info["sfreq"]), info, fwd, labels, noise=0.3, seed=1)
    raw.set_eeg_reference("average", projection=True, verbose="error")
    fused = region_signals(raw, forward=fwd, labels=labels, method=method, mode=mode, block=1.3).values
    # MNE's own path, in float64
    inv = make_inverse(raw.info, fwd)
    stc = mne.minimum_norm.apply_inverse_raw(raw, inv, 1 / 9, method=method, pick_ori="normal", verbose="error")
    ref = mne.extract_label_time_course(stc, labels, inv["src"], mode=mode, verbose="error").T
    assert fused.shape == ref.shape == (400, 68)
    rel = np.abs(fused - ref).max() / np.abs(ref).max()
    assert rel < 1e-5


def test_region_filter_is_a_matrix(anatomy):
    sd, info, fwd, labels = anatomy
    inv = make_inverse(info, fwd)
    w, ch = region_filter(inv, labels, method="MNE", mode="mean_flip")
    assert w.shape == (68, len(ch)) and np.isfinite(w).all()
    with pytest.raises(InputError, match="linear mode"):
        region_filter(inv, labels, mode="pca_flip")


def test_planted_regions_recovered_through_preprocessing(anatomy):
    sd, info, fwd, labels = anatomy
    sig = _planted(6000, info["sfreq"], seed=3)
    # background: every other region carries weaker independent activity
    others = [lab.name for lab in labels if lab.name not in PLANTED]
    rng = np.random.default_rng(7)
    bg = xr.DataArray(0.3e-8 * rng.standard_normal((6000, len(others))), dims=("time", "region"),
                      coords={"region": others})
    raw = simulate_raw(xr.concat([sig, bg], "region"), info, fwd, labels, noise=0.3, seed=4)
    # a drifting, 50 Hz-free but offset recording: the high-pass must remove it
    raw.apply_function(lambda x: x + 2e-6 * np.linspace(0, 1, x.size))
    clean, record = preprocess(raw, l_freq=1.0, h_freq=30.0, bad_channels="auto")
    assert record["bad_channels"] == []
    print("planted r:", end=" ")
    out = region_signals(clean, forward=fwd, labels=labels, method="eLORETA").compute()
    assert out.dims == ("time", "region") and out.sizes["region"] == 68
    r = np.corrcoef(np.c_[sig.values, out.values].T)[:3, 3:]
    names = list(out["region"].values)
    for i, p in enumerate(PLANTED):
        assert names[int(np.argmax(r[i]))] == p, (p, names[int(np.argmax(r[i]))])
        print(f"{p} {r[i, names.index(p)]:.3f}", end="; ")
        assert r[i, names.index(p)] > 0.8
    # the planted regions carry the most signal of all 68
    top = np.argsort(-out.var("time").values)[:6]
    assert sum(names[j] in PLANTED for j in top) >= 2


def test_pca_flip_goes_through_mne(anatomy):
    sd, info, fwd, labels = anatomy
    raw = simulate_raw(_planted(300, info["sfreq"]), info, fwd, labels, noise=0.2, seed=2)
    out = region_signals(raw, forward=fwd, labels=labels, method="MNE", mode="pca_flip")
    assert out.shape == (300, 68) and np.isfinite(out.values).all()


def test_forward_model_default_builds_same_forward(anatomy):
    sd, info, fwd, labels = anatomy
    raw = simulate_raw(_planted(200, info["sfreq"]), info, fwd, labels, noise=0.2, seed=5)
    a = region_signals(raw, subjects_dir=sd, subject=SUBJ, spacing="oct4", method="MNE").values
    b = region_signals(raw, forward=fwd, labels=labels, method="MNE").values
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(b).max())


# ----------------------------------------------------------------- bad input
def test_channel_without_position(anatomy):
    sd, info, fwd, labels = anatomy
    raw = mne.io.RawArray(np.zeros((3, 10)), mne.create_info(["Cz", "Pz", "Fz"], 100.0, "eeg"), verbose="error")
    with pytest.raises(InputError, match="Cz"):
        region_signals(raw, subjects_dir=sd, subject=SUBJ, who="subject sub-07")
    with pytest.raises(InputError, match="forward model: channel.*without a position: Cz, Pz, Fz"):
        forward_model(raw.info, subjects_dir=sd, subject=SUBJ)


def test_unknown_channel_name():
    raw = mne.io.RawArray(np.zeros((2, 10)), mne.create_info(["Cz", "XYZ9"], 100.0, "eeg"), verbose="error")
    with pytest.raises(InputError, match="XYZ9"):
        set_standard_montage(raw, who="sub-02.edf")


def test_nan_samples_named(anatomy):
    sd, info, fwd, labels = anatomy
    raw = simulate_raw(_planted(200, info["sfreq"]), info, fwd, labels, noise=0.2, seed=6)
    data = raw.get_data()
    data[5, 150] = np.nan
    bad = mne.io.RawArray(data, raw.info, verbose="error")
    with pytest.raises(InputError, match=f"sub-03.*{raw.ch_names[5]}.*NaN.*1.500 s"):
        region_signals(bad, forward=fwd, labels=labels, method="MNE", who="sub-03").compute()
    with pytest.raises(InputError, match=raw.ch_names[5]):
        preprocess(bad, who="sub-03")


def test_missing_subject_and_annotation(anatomy, tmp_path):
    sd, info, fwd, labels = anatomy
    with pytest.raises(InputError, match="'nobody'"):
        forward_model(info, subjects_dir=sd, subject="nobody")
    with pytest.raises(InputError, match="annotation 'aparc.a2009s'"):
        region_labels(subjects_dir=sd, subject=SUBJ, parc="aparc.a2009s")


def test_filter_cache_reused(anatomy):
    sd, info, fwd, labels = anatomy
    raw = simulate_raw(_planted(250, info["sfreq"]), info, fwd, labels, noise=0.2, seed=8)
    raw.set_eeg_reference("average", projection=True, verbose="error")
    cache = {}
    a = region_signals(raw, forward=fwd, labels=labels, method="dSPM", cache=cache).values
    seg = raw.copy().crop(0.5, 2.0, include_tmax=False)
    b = region_signals(seg, forward=fwd, labels=labels, method="dSPM", cache=cache).values
    assert len(cache) == 1
    np.testing.assert_allclose(b, a[50:200], rtol=1e-5, atol=1e-6 * np.abs(a).max())


# ------------------------------------------------------- MNE objects in and out
def test_inverse_operator_and_source_spaces_accepted(anatomy):
    """forward= may be an InverseOperator (applied as it is) or a SourceSpaces (forward computed on it)."""
    sd, info, fwd, labels = anatomy
    raw = simulate_raw(_planted(300, info["sfreq"]), info, fwd, labels, noise=0.3, seed=11)
    raw.set_eeg_reference("average", projection=True, verbose="error")
    ref = region_signals(raw, forward=fwd, labels=labels, method="dSPM").values
    inv = make_inverse(raw.info, fwd, noise_cov="identity")
    via_inv = region_signals(raw, forward=inv, labels=labels, method="dSPM").values
    # MNE's own path with that inverse
    stc = mne.minimum_norm.apply_inverse_raw(raw, inv, 1 / 9, method="dSPM", pick_ori="normal", verbose="error")
    mne_ref = mne.extract_label_time_course(stc, labels, inv["src"], mode="mean_flip", verbose="error").T
    np.testing.assert_allclose(via_inv, mne_ref, rtol=1e-4, atol=1e-5 * np.abs(mne_ref).max())
    # the inverse's own noise covariance is used: identity differs from the default ad-hoc one
    assert np.abs(via_inv - ref).max() > 1e-3 * np.abs(ref).max()
    src = mne.setup_source_space(SUBJ, spacing="oct4", subjects_dir=sd, add_dist=False, verbose="error")
    via_src = region_signals(raw, forward=src, subjects_dir=sd, subject=SUBJ, labels=labels, method="dSPM").values
    np.testing.assert_allclose(via_src, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    # an inverse whose channels the recording lacks: one line naming the channel
    with pytest.raises(InputError, match=f"sub-09: channel\\(s\\) {raw.ch_names[0]} are not good EEG channels"):
        region_signals(raw.copy().drop_channels([raw.ch_names[0]]), forward=inv, labels=labels, who="sub-09")
    with pytest.raises(InputError, match="forward: expected an mne.Forward, InverseOperator or SourceSpaces"):
        region_signals(raw, forward="fwd.fif", labels=labels)
    with pytest.raises(InputError, match="sub-09: expected an mne.io.Raw or mne.Epochs, got ndarray"):
        region_signals(raw.get_data(), forward=fwd, labels=labels, who="sub-09")


@pytest.mark.parametrize("fused", [True, False])
def test_epochs_give_per_epoch_region_signals(anatomy, fused):
    sd, info, fwd, labels = anatomy
    raw = simulate_raw(_planted(500, info["sfreq"]), info, fwd, labels, noise=0.3, seed=12)
    raw.set_eeg_reference("average", projection=True, verbose="error")
    events = np.c_[np.arange(50, 450, 100), np.zeros(4, int), [1, 2, 1, 2]]
    epochs = mne.Epochs(raw, events, tmin=0.0, tmax=0.49, baseline=None, preload=True, proj=False,
                        verbose="error")
    out = region_signals(epochs, forward=fwd, labels=labels, method="MNE", fused=fused)
    assert out.dims == ("epoch", "time", "region") and out.shape == (4, 50, 68)
    assert list(out["event"].values) == [1, 2, 1, 2]
    cont = region_signals(raw, forward=fwd, labels=labels, method="MNE").values
    for e, start in enumerate(events[:, 0]):
        np.testing.assert_allclose(out.values[e], cont[start:start + 50], rtol=1e-4,
                                   atol=1e-5 * np.abs(cont).max())
    bad = mne.EpochsArray(epochs.get_data(), epochs.info, events, verbose="error")
    bad._data[2, 5, 10] = np.nan
    with pytest.raises(InputError, match=f"sub-04: epoch 2, channel {epochs.ch_names[5]} has NaN/inf .*0.100 s"):
        region_signals(bad, forward=fwd, labels=labels, method="MNE", fused=fused, who="sub-04")
    if fused:  # a baseline noise covariance comes from the epochs themselves
        base = region_signals(epochs, forward=fwd, labels=labels, method="dSPM", noise_cov=(0.0, 0.2))
        assert base.shape == out.shape and np.isfinite(base.values).all()
        assert not np.allclose(base.values, region_signals(epochs, forward=fwd, labels=labels, method="dSPM").values)


def test_region_signals_back_to_mne(anatomy):
    from xaffect.neural import to_label_stc, to_mne_raw

    sd, info, fwd, labels = anatomy
    raw = simulate_raw(_planted(200, info["sfreq"]), info, fwd, labels, noise=0.3, seed=13)
    sig = region_signals(raw, forward=fwd, labels=labels, method="MNE").compute()
    out = to_mne_raw(sig)
    assert out.ch_names == list(sig["region"].values) and out.info["sfreq"] == info["sfreq"]
    np.testing.assert_allclose(out.get_data(), sig.values.T.astype(np.float64))
    np.testing.assert_allclose(out.times, sig["time"].values)
    # a label source estimate: MNE's label extraction ("mean") gives the region signals back
    stc = to_label_stc(sig, labels, src=fwd["src"])
    assert stc.data.shape[1] == 200 and stc.tstep == pytest.approx(1 / info["sfreq"])
    back = mne.extract_label_time_course(stc, labels, fwd["src"], mode="mean", verbose="error").T
    np.testing.assert_allclose(back, sig.values, rtol=1e-6, atol=1e-7 * np.abs(sig.values).max())
    # one value per region (a score map) is a single-sample estimate
    one = to_label_stc(sig.var("time"), labels, src=fwd["src"])
    assert one.data.shape[1] == 1
    # bad input: a regions store group still has its subject dim; regions that are not labels
    store_like = sig.rename(time="sample").expand_dims(subject=["s01"])
    with pytest.raises(InputError, match=r"select one first, e.g. signals.sel\(subject=...\)"):
        to_mne_raw(store_like)
    assert to_mne_raw(store_like.sel(subject="s01")).n_times == 200
    with pytest.raises(InputError, match="region\\(s\\) nowhere-lh are not labels"):
        to_label_stc(sig.isel(region=[0]).assign_coords(region=["nowhere-lh"]), labels)
