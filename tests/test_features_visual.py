"""Visual covariates from a synthesized video with a planted cut, brightness and motion."""

from __future__ import annotations

import av
import numpy as np
import pytest

from xaffect.errors import InputError
from xaffect.features import VISUAL_NAMES, frame_descriptors, visual_covariates


def write_video(path, *, seconds=4, fps=10, cut_at=2.0, seed=0):
    rs = np.random.RandomState(seed)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(int(seconds * fps)):
            if i < cut_at * fps:
                img = np.full((48, 64, 3), 60, np.uint8)
            else:
                img = np.zeros((48, 64, 3), np.uint8)
                img[..., 0] = 220
                img[..., 1] = 40 + (rs.rand(48, 64) * 100).astype(np.uint8)
                img[..., 2] = 30
            for pk in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    return path


def test_planted_cut_brightness_colour_and_motion(tmp_path):
    cov = visual_covariates(write_video(tmp_path / "v.mp4"), stimulus="clip").to_pandas()
    assert tuple(cov.columns) == VISUAL_NAMES and cov.shape == (4, 5)
    np.testing.assert_allclose(cov["luminance"].iloc[:2], 60 / 255, atol=0.01)
    assert (cov["luminance"].iloc[2:] > cov["luminance"].iloc[0] + 0.1).all()
    assert (cov["colourfulness"].iloc[:2] < 0.01).all() and (cov["colourfulness"].iloc[2:] > 0.1).all()
    assert (cov["contrast"].iloc[:2] < 0.01).all() and (cov["contrast"].iloc[2:] > 0.02).all()
    assert (cov["motion_energy"].iloc[:2] < 0.005).all() and (cov["motion_energy"].iloc[2:] > 0.02).all()
    np.testing.assert_array_equal(cov["cut_rate"].values, [0, 0, 1, 0])


def test_frame_descriptors_against_brute_force():
    rs = np.random.RandomState(3)
    rgb = rs.randint(0, 256, (10, 12, 3)).astype(np.uint8)
    prev = rs.rand(10, 12)
    vals, y = frame_descriptors(rgb, prev)
    x = rgb / 255.0
    yy = 0.2126 * x[..., 0] + 0.7152 * x[..., 1] + 0.0722 * x[..., 2]
    rg, yb = x[..., 0] - x[..., 1], 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    colour = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    np.testing.assert_allclose(vals[:4], [yy.mean(), yy.std(), colour, np.abs(yy - prev).mean()])


def test_clock_follows_the_given_duration_and_bad_files(tmp_path):
    path = write_video(tmp_path / "v.mp4")
    cov = visual_covariates(path, rate=2.0, duration=3.0)
    assert cov.sizes["time"] == 6
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError, match="stimulus 'j'.*junk.mp4"):
        visual_covariates(tmp_path / "junk.mp4", stimulus="j")
