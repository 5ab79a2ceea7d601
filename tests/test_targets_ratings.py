"""Continuous ratings: readers, the clock, inter-rater agreement, bad input."""

import numpy as np
import pandas as pd
import pytest

from xaffect.errors import InputError
from xaffect.synchrony import rater_agreement, ratings_to_clock, read_liris_ratings, read_rating_table


def _write_liris(folder, movie, seconds=20, seed=0):
    rng = np.random.default_rng(seed)
    for scale in ("Arousal", "Valence"):
        t = np.arange(seconds, dtype=float)
        mean = rng.uniform(-1, 1, seconds)
        std = rng.uniform(0, 0.3, seconds)
        lines = ["Time\tMean\tStd"] + [f"{a:.1f}\t{b:.6f}\t{c:.6f}" for a, b, c in zip(t, mean, std)]
        (folder / f"{movie}_{scale}.txt").write_text("\n".join(lines) + "\n")


def test_liris_reader_and_clock(tmp_path):
    _write_liris(tmp_path, "After_The_Rain", seconds=20)
    _write_liris(tmp_path, "Payload", seconds=12, seed=1)
    table = read_liris_ratings(tmp_path, {"clip1": "After_The_Rain", "clip2": "Payload"})
    assert set(table.columns) >= {"stimulus", "scale", "rater", "onset", "rating", "std"}
    raw = np.loadtxt(tmp_path / "Payload_Valence.txt", skiprows=1)
    ds = ratings_to_clock(table, rate=1.0)
    assert ds["rating"].dims == ("time", "scale") and list(ds.scale.values) == ["arousal", "valence"]
    assert ds.sizes["time"] == 32 and "rating_rater" not in ds  # LIRIS gives no per-rater traces
    clip2 = ds.where(ds.stimulus == "clip2", drop=True)
    np.testing.assert_allclose(clip2["rating"].sel(scale="valence").values, raw[:, 1], atol=1e-6)
    np.testing.assert_allclose(clip2["rating_std"].sel(scale="valence").values, raw[:, 2], atol=1e-6)
    np.testing.assert_allclose(clip2["onset"].values, np.arange(12) + 0.5)
    # a 2 Hz clock (fMRI-like rates differ too): bins between the 1 s ratings are interpolated
    fast = ratings_to_clock(table, rate=2.0, durations={"clip1": 20.0, "clip2": 12.0})
    c2 = fast.where(fast.stimulus == "clip2", drop=True)["rating"].sel(scale="valence").values
    np.testing.assert_allclose(c2[::2], raw[:, 1], atol=1e-6)
    # bin [k + 0.5, k + 1) has no rating: linear interpolation at its centre k + 0.75
    np.testing.assert_allclose(c2[1:-1:2], 0.25 * raw[:-1, 1] + 0.75 * raw[1:, 1], atol=1e-6)


def test_liris_bad_files(tmp_path):
    _write_liris(tmp_path, "m", seconds=5)
    with pytest.raises(InputError, match="Other_Arousal"):
        read_liris_ratings(tmp_path, ["Other"])
    (tmp_path / "m_Arousal.txt").write_text("Time Mean Std\n0 0.1 0.2\n1 abc 0.1\n")
    with pytest.raises(InputError, match=r"m_Arousal.txt: line 3"):
        read_liris_ratings(tmp_path, ["m"])


def _table(rng, raters=4, seconds=30, hz=4.0, noise=0.5):
    """Slider ratings at 4 Hz: a shared trace plus rater noise."""
    t = np.arange(0, seconds, 1 / hz)
    truth = np.sin(2 * np.pi * t / 12.0)
    rows = []
    for scale, sign in (("emotionality", 1.0), ("enjoyment", -1.0)):
        for r in range(raters):
            y = sign * truth + noise * rng.standard_normal(t.size)
            rows += [{"stimulus": "piece", "scale": scale, "rater": f"r{r}", "onset": a, "rating": b}
                     for a, b in zip(t, y)]
    return pd.DataFrame(rows), t, truth


def test_generic_table_mean_and_per_rater_on_the_clock(tmp_path):
    rng = np.random.default_rng(0)
    df, t, truth = _table(rng)
    path = tmp_path / "ratings.tsv"
    df.rename(columns={"onset": "Onset"}).to_csv(path, sep="\t", index=False)
    table = read_rating_table(path)
    ds = ratings_to_clock(table, rate=1.0, durations={"piece": 30.0})
    assert ds["rating_rater"].dims == ("rater", "time", "scale") and ds.sizes["rater"] == 4
    # per rater: the mean of its 4 samples in each 1 s bin
    r1 = df[(df.rater == "r1") & (df.scale == "enjoyment")].rating.to_numpy().reshape(30, 4).mean(1)
    np.testing.assert_allclose(ds["rating_rater"].sel(rater="r1", scale="enjoyment").values, r1, atol=1e-5)
    np.testing.assert_allclose(ds["rating"].values, ds["rating_rater"].mean("rater").values, atol=1e-6)
    truth_1hz = truth.reshape(30, 4).mean(1)
    assert np.corrcoef(ds["rating"].sel(scale="emotionality"), truth_1hz)[0, 1] > 0.9


def test_rater_agreement_is_the_loo_isc_of_raters():
    rng = np.random.default_rng(1)
    df, _, _ = _table(rng, raters=5, noise=0.8)
    ds = ratings_to_clock(df, rate=1.0)
    agree = rater_agreement(ds["rating_rater"])
    x = ds["rating_rater"].sel(scale="enjoyment").values  # (rater, time)
    rs = [np.corrcoef(x[i], np.delete(x, i, 0).mean(0))[0, 1] for i in range(5)]
    want = np.tanh(np.mean(np.arctanh(rs)))
    np.testing.assert_allclose(agree["noise_ceiling"].sel(scale="enjoyment"), want, atol=1e-6)
    # more rater noise, lower ceiling
    noisy = rater_agreement(ratings_to_clock(_table(rng, raters=5, noise=3.0)[0], rate=1.0)["rating_rater"])
    assert float(noisy["noise_ceiling"].sel(scale="enjoyment")) < float(agree["noise_ceiling"].sel(scale="enjoyment"))
    # a rater who skipped a stimulus is left out there, not counted as zeros
    gap = ds["rating_rater"].copy()
    gap[0] = np.nan
    got = rater_agreement(gap)["noise_ceiling"].sel(scale="enjoyment")
    rs4 = [np.corrcoef(x[i], np.delete(x[1:], i - 1, 0).mean(0))[0, 1] for i in range(1, 5)]
    np.testing.assert_allclose(got, np.tanh(np.mean(np.arctanh(rs4))), atol=1e-6)


def test_rating_table_bad_input(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("onset,rating\n0,1\n")
    with pytest.raises(InputError, match="rater"):
        read_rating_table(p, stimulus="s")
    p.write_text("onset,rating,rater\n0,1,a\n1,oops,a\n")
    with pytest.raises(InputError, match="row 3"):
        read_rating_table(p, stimulus="s")
    p.write_text("onset,rating,rater\n0,1,a\n")
    with pytest.raises(InputError, match="stimulus"):
        read_rating_table(p)
    with pytest.raises(InputError, match="does not exist"):
        read_rating_table(tmp_path / "missing.csv", stimulus="s")
    table = read_rating_table(p, stimulus="s")
    with pytest.raises(InputError, match="no ratings for stimulus 'other'"):
        ratings_to_clock(table, stimuli=["s", "other"])


def test_onsets_in_milliseconds_are_refused_naming_the_file(tmp_path):
    rng = np.random.default_rng(2)
    seconds = np.arange(0, 30, 0.25)
    rows = [{"onset": 1000 * t, "rating": v, "rater": r} for r in ("a", "b")
            for t, v in zip(seconds, rng.standard_normal(seconds.size))]
    path = tmp_path / "piece_ratings.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    table = read_rating_table(path, stimulus="piece")
    with pytest.raises(InputError, match=r"piece_ratings\.csv: .*'piece'.*past its end.*milliseconds") as err:
        ratings_to_clock(table, rate=1.0, durations={"piece": 30.0})
    assert "\n" not in str(err.value)
    # the same file in seconds is accepted, and so is a table whose last ratings run a little past the end
    pd.DataFrame([{**row, "onset": row["onset"] / 1000} for row in rows]).to_csv(path, index=False)
    ok = ratings_to_clock(read_rating_table(path, stimulus="piece"), rate=1.0, durations={"piece": 29.0})
    assert ok.sizes["time"] == 29 and np.isfinite(ok["rating"]).all()
