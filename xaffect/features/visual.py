"""Visual covariates from a film's frames (PyAV), on the clock.

The seed trains with visual features as covariates and zeroes them at
prediction, so that audio features are credited only with what the picture
does not explain. Per decoded frame (downscaled to at most 160 px wide):

==============  ==============================================================
descriptor      meaning
==============  ==============================================================
luminance       mean relative luminance Y = 0.2126 R + 0.7152 G + 0.0722 B (0–1)
contrast        standard deviation of Y over the frame (RMS contrast)
colourfulness   Hasler & Süsstrunk (2003) colourfulness of the RGB frame (0–1 scale)
motion_energy   mean absolute change of Y from the previous frame
cut_rate        shot cuts per second: a cut is a frame whose 32-bin Y histogram
                differs from the previous one by more than ``cut_threshold``
                (half the L1 distance, 0–1)
==============  ==============================================================

A frame's time is its presentation time plus half a frame; frames are
averaged into clock bins (``cut_rate`` is a count per second instead).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError
from ..store.clock import bin_centres, n_bins, to_clock

__all__ = ["VISUAL_NAMES", "frame_descriptors", "visual_covariates"]

VISUAL_NAMES = ("luminance", "contrast", "colourfulness", "motion_energy", "cut_rate")


def frame_descriptors(rgb: np.ndarray, previous: np.ndarray | None, *, bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of one frame.

    Parameters
    ----------
    rgb : array of shape (height, width, 3)
        uint8 or float in 0..1.
    previous : array of shape (height, width) or None
        Luminance of the previous frame.

    Returns
    -------
    values : array of shape (5,)
        luminance, contrast, colourfulness, motion energy, histogram change.
    luma : array of shape (height, width)
    """
    x = np.asarray(rgb, dtype=np.float64)
    if x.max(initial=0) > 1.0:
        x = x / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    rg, yb = r - g, 0.5 * (r + g) - b
    colour = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    if previous is None:
        motion, change = 0.0, 0.0
    else:
        motion = float(np.abs(y - previous).mean())
        h1 = np.histogram(y, bins=bins, range=(0, 1))[0] / y.size
        h0 = np.histogram(previous, bins=bins, range=(0, 1))[0] / y.size
        change = 0.5 * float(np.abs(h1 - h0).sum())
    return np.array([y.mean(), y.std(), colour, motion, change]), y


def visual_covariates(path: str | Path, *, rate: float = 1.0, width: int = 160, cut_threshold: float = 0.5,
                      stimulus: str | None = None, duration: float | None = None) -> xr.DataArray:
    """Per-bin visual descriptors of a video file.

    Parameters
    ----------
    path : str or Path
        Any video PyAV (FFmpeg) decodes.
    rate : float
        Clock rate in Hz.
    width : int
        Frames are scaled to this width (keeping aspect) before analysis.
    cut_threshold : float
        Histogram change (0–1) above which a frame starts a new shot.
    stimulus : str, optional
        Adds a ``stimulus`` coordinate and names it in errors.
    duration : float, optional
        Length of the clock in seconds (default: the video's), e.g. the
        audio's so that covariates and features have the same bins.

    Returns
    -------
    xarray.DataArray of shape (time, descriptor), float32
    """
    import av

    what = f"stimulus {stimulus!r} ({path})" if stimulus else str(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"{what}: cannot be opened as a video ({exc})") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{what}: has no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        rows, times, prev = [], [], None
        for frame in container.decode(stream):
            h = max(2, int(round(frame.height * width / frame.width / 2)) * 2)
            rgb = frame.to_ndarray(format="rgb24", width=width, height=h)
            vals, prev = frame_descriptors(rgb, prev)
            rows.append(vals)
            times.append(float(frame.time if frame.time is not None else len(times) / fps) + 0.5 / fps)
    if not rows:
        raise InputError(f"{what}: no video frames could be decoded")
    values, times = np.asarray(rows), np.asarray(times)
    if duration is None:
        duration = float(times[-1] + 0.5 / fps)
    nb = n_bins(duration, rate)
    out = to_clock(values[:, :4], times, rate=rate, duration=duration, empty="interpolate")
    idx = np.floor(times * rate + 1e-9).astype(int)
    ok = (idx >= 0) & (idx < nb)
    cuts = np.bincount(idx[ok], weights=(values[ok, 4] > cut_threshold).astype(float), minlength=nb) * rate
    data = np.concatenate([out, cuts[:, None]], axis=1).astype(np.float32)
    coords = {"onset": ("time", bin_centres(nb, rate)), "descriptor": list(VISUAL_NAMES)}
    if stimulus is not None:
        coords["stimulus"] = ("time", np.full(nb, stimulus))
    return xr.DataArray(data, dims=("time", "descriptor"), coords=coords, name="visual",
                        attrs={"clock_rate": float(rate), "fps": fps, "cut_threshold": float(cut_threshold)})
