"""Region cross-talk of the inverse: equal to MNE's resolution matrix, predicts leakage, flags it."""

import numpy as np
import pytest
import xarray as xr
from scipy import stats

import mne

from xaffect.datasets import synthetic_subject  # noqa: E402
from xaffect.errors import InputError  # noqa: E402
from xaffect.neural import forward_model, make_inverse, region_labels, region_signals, simulate_raw  # noqa: E402
from xaffect.neural.crosstalk import flag_leakage, leakage_ratio, leaked_r, region_crosstalk  # noqa: E402

from test_neural_source import SUBJ, _info  # noqa: E402
from test_neural_stage import _write_study, eeg_files  # noqa: E402, F401 -- its EEG files fixture

PLANT = "superiortemporal-lh"
FAR_PLANT = "lateraloccipital-rh"


@pytest.fixture(scope="module")
def anatomy(tmp_path_factory):
    sd = tmp_path_factory.mktemp("subjects")
    synthetic_subject(sd, SUBJ, grade=4)
    info = _info()
    fwd = forward_model(info, subjects_dir=sd, subject=SUBJ, spacing="oct4")
    labels = region_labels(subjects_dir=sd, subject=SUBJ)
    return info, fwd, labels


def _simulate(anatomy, plants, n=2000, seed=1):
    """Independent unit background in every region, plus ``plants`` {region: gain} of one effect ``s``."""
    info, fwd, labels = anatomy
    names = [lab.name for lab in labels]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(names)))
    s = rng.standard_normal(n)
    for reg, gain in plants.items():
        x[:, names.index(reg)] += gain * s
    sig = xr.DataArray(x * 1e-8, dims=("time", "region"), coords={"region": names})
    raw = simulate_raw(sig, info, fwd, labels, noise=0.1, seed=seed)
    raw.set_eeg_reference("average", projection=True, verbose="error")
    cache = {}
    est = region_signals(raw, forward=fwd, labels=labels, cache=cache).values
    (w, ch_names), = cache.values()  # the region filter applied to the recording
    ct = region_crosstalk(w, ch_names, fwd, labels)
    # encoding-like: |r| of the effect with each region's estimate, one-sided p
    res = [stats.pearsonr(s, est[:, i]) for i in range(len(names))]
    r = xr.DataArray(np.abs([q[0] for q in res]), dims="region", coords={"region": names})
    p = stats.false_discovery_control([q[1] for q in res])
    return r, xr.DataArray(p < 0.05, dims="region", coords={"region": names}), ct


@pytest.mark.parametrize("method", ["dSPM", "MNE"])
def test_crosstalk_equals_mne_resolution_matrix(anatomy, method):
    """For a fixed-orientation inverse MNE's resolution matrix, summarised per label, is the same matrix."""
    from mne.minimum_norm import apply_inverse_raw, make_inverse_resolution_matrix

    info, fwd, labels = anatomy
    inv = make_inverse(info, fwd, loose=0.0)
    ch = list(inv["info"]["ch_names"])
    eye = mne.io.RawArray(np.eye(len(ch)), mne.create_info(ch, 1000.0, "eeg"), verbose="error")
    eye.add_proj([p.copy() for p in inv["projs"]], verbose="error")
    stc = apply_inverse_raw(eye, inv, 1 / 9, method=method, verbose="error")
    w = mne.extract_label_time_course(stc, labels, inv["src"], mode="mean_flip", verbose="error")
    ours = region_crosstalk(w, ch, fwd, labels)

    fixed = mne.convert_forward_solution(fwd, surf_ori=True, force_fixed=True, use_cps=True, verbose="error")
    res = make_inverse_resolution_matrix(fixed, inv, method=method, lambda2=1 / 9, verbose="error")
    vertno = [s["vertno"] for s in fixed["src"]]
    members = np.zeros((res.shape[1], len(labels)))
    for j, lab in enumerate(labels):
        h = 0 if lab.hemi == "lh" else 1
        members[np.nonzero(np.isin(vertno[h], lab.vertices))[0] + h * len(vertno[0]), j] = 1
    psf = mne.SourceEstimate(res @ members, vertno, tmin=0.0, tstep=1.0)  # one "time" per source region
    ref = mne.extract_label_time_course(psf, labels, inv["src"], mode="mean_flip", verbose="error")
    assert ours.dims == ("region", "region_source") and ours.shape == (68, 68)
    np.testing.assert_allclose(ours.values, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())


@pytest.mark.parametrize("gain", [1.0, 4.0])
def test_leaked_r_predicts_the_r_of_neighbours(anatomy, gain):
    """Weak and strong effects: the leak into the neighbours is what the cross-talk predicts."""
    r, sig, ct = _simulate(anatomy, {PLANT: gain}, n=1500)
    ratio = leakage_ratio(ct).sel(region_source=PLANT)
    assert float(ratio.sel(region=PLANT)) == pytest.approx(1.0)
    pred = leaked_r(ct, r).sel(region_source=PLANT)
    assert float(pred.sel(region=PLANT)) == pytest.approx(float(r.sel(region=PLANT)), abs=1e-6)
    near = [str(n) for n in ratio.where(ratio > 0.3, drop=True)["region"].values if n != PLANT]
    assert len(near) >= 3
    np.testing.assert_allclose(pred.sel(region=near).values, r.sel(region=near).values, rtol=0.3)
    far = ratio.where(ratio < 0.05, drop=True)["region"].values
    assert len(far) >= 5 and float(r.sel(region=far).mean()) < 0.1 + 0.15 * (gain > 1)
    if gain == 1.0:  # small-effect limit: leaked r = ratio * r_plant
        np.testing.assert_allclose(pred.sel(region=near), ratio.sel(region=near) * float(r.sel(region=PLANT)),
                                   rtol=0.25)


def test_planted_region_kept_its_leaky_neighbours_flagged(anatomy):
    r, sig, ct = _simulate(anatomy, {PLANT: 1.0, FAR_PLANT: 0.5})
    assert int(sig.sum()) > 10  # the leak makes many regions significant
    flags = flag_leakage(r, sig, ct)
    assert not bool(flags["leakage"].sel(region=PLANT))
    assert not bool(flags["leakage"].sel(region=FAR_PLANT))  # weaker, but its own effect
    ratio = leakage_ratio(ct).sel(region_source=PLANT)
    top = str(ratio.drop_sel(region=PLANT).idxmax().item())  # the neighbour the inverse tells apart least
    assert bool(flags["leakage"].sel(region=top)) and flags["leakage_from"].sel(region=top).item() == PLANT
    from_plant = flags["leakage_from"] == PLANT
    assert int(from_plant.sum()) >= 3
    # a flagged region's r is (at least 80 %) what leakage from its source predicts
    mask = flags["leakage"].values
    assert (flags["explained_r"].values[mask] >= 0.8 * r.values[mask]).all()
    assert not flags["leakage"].where(~sig, False).any()  # only significant regions are flagged


def test_bad_input(anatomy):
    info, fwd, labels = anatomy
    with pytest.raises(InputError, match="weights: expected shape"):
        region_crosstalk(np.zeros((3, 4)), ["a", "b", "c", "d"], fwd, labels)
    with pytest.raises(InputError, match="not in the forward model"):
        region_crosstalk(np.zeros((68, 1)), ["NOPE"], fwd, labels)
    ct = xr.DataArray(np.eye(2), dims=("region", "region_source"),
                      coords={"region": ["a-lh", "b-lh"], "region_source": ["a-lh", "b-lh"]})
    r = xr.DataArray([0.5, 0.2, 0.1], dims="region", coords={"region": ["a-lh", "b-lh", "c-lh"]})
    with pytest.raises(InputError, match="c-lh"):
        flag_leakage(r, r > 0, ct)
    with pytest.raises(InputError, match="explained"):
        flag_leakage(r[:2], r[:2] > 0, ct, explained=0)
    with pytest.raises(InputError, match="region_source"):
        leakage_ratio(ct.rename(region_source="other"))


def test_regions_stage_stores_the_crosstalk_of_its_inverse(eeg_files, tmp_path):
    from xaffect.neural.stage import STAGES

    root, sd, paths, _ = eeg_files
    regions = {"kind": "eeg", "recordings": [{"subject": f"sub-{i + 1:02d}", "path": str(p)} for i, p in
                                             enumerate(paths[:2])],
               "subjects_dir": str(sd), "subject": "xaffect-synth", "spacing": "oct4", "method": "MNE"}
    study = _write_study(tmp_path, regions)
    STAGES["regions"].run(study, progress=False)
    ws = study.workspace
    ct = ws.open("crosstalk")["crosstalk"].load()
    assert ct.dims == ("subject", "region", "region_source") and ct.sizes["subject"] == 2
    assert list(ct["region"].values) == list(ws.open("regions", group="clip01")["region"].values)
    assert ct.attrs.get("description") and ws.open("crosstalk").attrs["method"] == "MNE"
    assert ws.provenance("crosstalk")["stage"] == "regions"
    ratio = leakage_ratio(ct)
    np.testing.assert_allclose(np.diag(ratio.values), 1.0)
    path = ws.metadata("crosstalk")["xaffect"]["path"]
    STAGES["regions"].run(study, progress=False)  # current: neither store rewritten
    assert ws.metadata("crosstalk")["xaffect"]["path"] == path
