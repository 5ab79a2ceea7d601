"""Any torch network as a feature extractor on the clock (``kind: torch``).

A network comes from an importable factory (``module:callable``), a
TorchScript file, or a factory plus a state-dict file, or is passed as an
object. Its named layers are recorded by forward hooks
(:func:`~xaffect.features.hooks.hook_activations`, which copies each output
before any later in-place op); ``"output"`` records what the network returns
(``"output.<i>"`` / ``"output.<key>"`` for a tuple or dict), the only choice
for TorchScript, whose compiled submodules cannot be hooked.

Two input layouts put a network's outputs on the clock:

``frames``
    The audio is cut into frames of ``field`` samples every ``hop`` samples
    (optionally z-scored each, as CREPE wants); one batch row per frame; each
    layer's output row becomes one vector (``pool``: its extra time axis
    averaged, or flattened). Frame *i* covers samples ``[i hop, i hop + field)``.
``waveform``
    The network reads a stretch of waveform ``(1, n_samples)`` and each
    recorded output keeps a time axis (``time_axis``, e.g. ``(batch, time,
    features)`` of an LSTM): output step *i* is the frame centred at
    ``field / 2 + i hop`` samples. Sequence outputs are put on the clock, never
    flattened; an output without that axis is refused.

Frame centres then go through the clock rule like every other extractor's
(:func:`~xaffect.features.hf.activations_on_clock`). ``transform``
(``module:callable``) replaces the default input tensor: it receives the
frames ``(n_frames, field)`` or the waveform ``(n_samples,)`` as float32
numpy and returns the network's input.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConfigError, InputError
from ..store.clock import bin_centres, n_bins
from .hooks import INPUT, hook_activations, pad_layers, pool_output

__all__ = ["TorchNetwork", "torch_activations", "OUTPUT"]

#: Layer name of the network's own return value.
OUTPUT = "output"


def _output_parts(out: Any) -> dict[str, Any]:
    """``output`` and its ``output.<i>`` / ``output.<key>`` parts."""
    parts = {OUTPUT: out}
    if isinstance(out, (tuple, list)):
        parts.update({f"{OUTPUT}.{i}": v for i, v in enumerate(out)})
    elif isinstance(out, dict):
        parts.update({f"{OUTPUT}.{k}": v for k, v in out.items()})
    return parts


def _as_tensor(out: Any, name: str):
    import torch

    while isinstance(out, (tuple, list)) and out:
        out = out[0]  # nn.LSTM returns (output, (h, c))
    if not isinstance(out, torch.Tensor):
        raise InputError(f"layers: {name!r} gives a {type(out).__name__}, not a tensor")
    return out


def _sequence(out: Any, name: str, time_axis: int) -> np.ndarray:
    """A sequence output with one stretch in the batch → (time, units), copied."""
    out = _as_tensor(out, name).detach()
    if out.ndim < 2 or not -out.ndim <= time_axis < out.ndim:
        raise InputError(f"layers: {name!r} output of shape {tuple(out.shape)} has no time axis {time_axis} "
                         "(key time_axis; or record layers that keep time, or use input: frames)")
    seq = out.movedim(time_axis, 0)
    return seq.reshape(seq.shape[0], -1).to(device="cpu", dtype=__import__("torch").float32, copy=True).numpy()


@dataclass
class TorchNetwork:
    """A torch network and the geometry that puts its layers on the clock.

    Attributes
    ----------
    module : torch.nn.Module
    name : str
        Factory, file or class name (provenance).
    layers : list of str
        Recorded module names (``"input"``, ``"output"``, ``"output.<i>"`` allowed).
    sr : int
        Sample rate the network reads.
    hop, field : int
        Samples between frames, and samples one frame sees.
    input : {"frames", "waveform"}
    frame_norm : bool
        ``frames``: z-score each frame.
    pool : {"time-mean", "flatten"}
        ``frames``: how a layer's extra axes become one vector per frame.
    time_axis : int
        ``waveform``: the time axis of every recorded output.
    transform : callable, optional
        Frames or waveform (numpy float32) to the network's input tensor.
    batch_frames : int
        ``frames``: frames per forward pass.
    """

    module: Any = field(repr=False)
    name: str
    layers: list[str]
    sr: int
    hop: int
    field: int
    input: str = "frames"
    frame_norm: bool = False
    pool: str = "time-mean"
    time_axis: int = 1
    transform: Callable | None = field(default=None, repr=False)
    batch_frames: int = 256
    random_init: bool = False
    seed: int | None = None
    source: dict = field(default_factory=dict)
    max_samples: int | None = None
    widths: np.ndarray = field(default=None, repr=False)

    def __post_init__(self):
        if self.input not in ("frames", "waveform"):
            raise ConfigError(f"input: must be 'frames' or 'waveform', got {self.input!r}")
        if self.hop < 1 or self.field < 1:
            raise ConfigError(f"hop_seconds, field_seconds: give at least one sample each at {self.sr} Hz "
                              f"(got hop {self.hop}, field {self.field} samples)")
        if not self.layers:
            raise ConfigError("layers: name the network's modules to record (a list of names)")
        self.layers = [str(n) for n in self.layers]
        self._check_names()
        probe_n = self.field + 3 * self.hop if self.input == "waveform" else self.field
        probe = self._run(np.zeros(probe_n, np.float32) + 1e-3 * np.random.default_rng(0).standard_normal(probe_n)
                          .astype(np.float32), list(range(len(self.layers))), n_frames=1 if self.input == "frames"
                          else None)
        self.widths = np.array([p.shape[1] for p in probe])
        self.n_units = int(self.widths.max())
        self.n_layers = len(self.layers)

    def _check_names(self) -> None:
        import torch

        scripted = isinstance(self.module, torch.jit.ScriptModule)
        modules = dict(self.module.named_modules())
        for name in self.layers:
            if name == INPUT or name == OUTPUT or name.startswith(OUTPUT + "."):
                continue
            if scripted:
                raise ConfigError(f"layers: {name!r}: the submodules of a TorchScript network cannot be hooked; "
                                  f"record '{OUTPUT}' (or '{OUTPUT}.<i>' of a tuple it returns), or give a factory")
            if name not in modules:
                close = difflib.get_close_matches(name, [n for n in modules if n], n=4, cutoff=0.5)
                hint = f"; close: {', '.join(close)}" if close else f"; it has: {', '.join(list(modules)[1:9])}…"
                raise ConfigError(f"layers: {name!r} is not a module of {self.name}{hint}")

    # ---------------------------------------------------------------- geometry
    def n_frames(self, n_samples: int) -> int:
        """Frames of ``n_samples`` samples."""
        return 0 if n_samples < self.field else (n_samples - self.field) // self.hop + 1

    def centres(self, n_samples: int) -> np.ndarray:
        """Frame centres in seconds, shape (n_frames,)."""
        return (np.arange(self.n_frames(n_samples)) * self.hop + self.field / 2.0) / self.sr

    def layer_names(self, layers: Sequence[int] | None = None) -> list[str]:
        """Names of the recorded layers (by position)."""
        return [self.layers[i] for i in (range(len(self.layers)) if layers is None else layers)]

    def provenance(self) -> dict:
        """Network identity for a store's provenance."""
        return {"name": self.name, "layers": list(self.layers), "sr": self.sr, "hop_samples": self.hop,
                "receptive_field_samples": self.field, "input": self.input, "frame_norm": self.frame_norm,
                "pool": self.pool, "time_axis": self.time_axis, "random_init": self.random_init,
                "seed": self.seed, "n_layers": len(self.layers), **self.source}

    # ---------------------------------------------------------------- forward
    def _frames_input(self, x: np.ndarray, n: int) -> np.ndarray:
        fr = np.lib.stride_tricks.sliding_window_view(x, self.field)[::self.hop][:n]
        if self.frame_norm:
            mu = fr.mean(axis=1, keepdims=True)
            sd = np.maximum(fr.std(axis=1, keepdims=True), 1e-10)
            return ((fr - mu) / sd).astype(np.float32)
        return np.array(fr, dtype=np.float32)  # a writable copy (torch.from_numpy of a read-only view warns)

    def _tensor(self, data: np.ndarray):
        import torch

        if self.transform is not None:
            return self.transform(data)
        t = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        return t if self.input == "frames" else t[None]

    def _record(self, x, names: list[str]) -> dict[str, Any]:
        """Raw outputs (frames: pooled per row) of ``names`` for one input tensor."""
        from ..errors import XaffectError

        try:
            return self._record_unchecked(x, names)
        except XaffectError:
            raise
        except Exception as exc:  # noqa: BLE001 - the network rejects the input we built from the config
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise InputError(f"input: {self.name} fails on a {self.input} input of shape {tuple(x.shape)} "
                             f"({type(exc).__name__}: {first}; check input, field_seconds, transform)") from None

    def _record_unchecked(self, x, names: list[str]) -> dict[str, Any]:
        import torch

        hooked = [n for n in names if n != OUTPUT and not n.startswith(OUTPUT + ".")]
        if self.input == "frames":
            got = hook_activations(self.module, x, hooked, pool=self.pool) if hooked else {}
            if len(hooked) < len(names):
                with torch.inference_mode():
                    parts = _output_parts(self.module(x))
                for n in names:
                    if n not in got:
                        got[n] = pool_output(_as_tensor(parts[n], n), pool=self.pool)
            return got
        got: dict[str, Any] = {}
        handles = []
        modules = dict(self.module.named_modules())
        for n in hooked:
            if n == INPUT:
                got[n] = _sequence(x, n, self.time_axis)
                continue

            def hook(_m, _i, out, _n=n):
                got[_n] = _sequence(out, _n, self.time_axis)  # copied inside the hook

            handles.append(modules[n].register_forward_hook(hook))
        try:
            with torch.inference_mode():
                out = self.module(x)
        finally:
            for h in handles:
                h.remove()
        parts = _output_parts(out)
        for n in names:
            if n not in got:
                if n not in parts:
                    raise InputError(f"layers: {n!r}: the network returns {type(out).__name__} "
                                     f"(has: {', '.join(parts)})")
                got[n] = _sequence(parts[n], n, self.time_axis)
        return got

    def _run(self, x: np.ndarray, layers: Sequence[int], *, n_frames: int | None = None) -> list[np.ndarray]:
        """Per-layer ``(frame, units)`` for waveform ``x`` (frames from its first sample)."""
        from .frames import TORCH_LOCK

        names = [self.layers[i] for i in layers]
        if self.input == "frames":
            n = self.n_frames(x.size) if n_frames is None else n_frames
            fr = self._frames_input(x, n)
            parts: list[list[np.ndarray]] = [[] for _ in names]
            for a in range(0, n, self.batch_frames):
                with TORCH_LOCK:
                    got = self._record(self._tensor(fr[a:a + self.batch_frames]), names)
                for i, nm in enumerate(names):
                    parts[i].append(got[nm])
            return [np.concatenate(p) if p else np.zeros((0, 0), np.float32) for p in parts]
        with TORCH_LOCK:
            got = self._record(self._tensor(x), names)
        want = self.n_frames(x.size)
        out = []
        for nm in names:
            a = got[nm]
            # a network may pad its input ("same" convolutions): more steps than valid frames is fine;
            # far more or fewer means hop_seconds / field_seconds do not describe it
            if a.shape[0] < want or a.shape[0] > want + self.field // self.hop + 2:
                raise InputError(f"layers: {nm!r} gives {a.shape[0]} time steps for {x.size} samples where "
                                 f"hop_seconds/field_seconds ({self.hop}/{self.field} samples) give {want} "
                                 "(check hop_seconds, field_seconds and time_axis)")
            out.append(a[:want])
        return out

    def frames(self, audio, n_samples: int, start: int, stop: int, *, layers: Sequence[int],
               context: int = 0) -> np.ndarray:
        """Frames ``start..stop-1`` → array of shape (stop - start, len(layers), n_units).

        ``waveform`` networks read ``context`` samples more on each side
        (rounded to whole hops) and drop the frames made from them.
        """
        read = audio if callable(audio) else (lambda s, e: audio[s:e])
        if self.input == "frames":
            x = np.asarray(read(start * self.hop, (stop - 1) * self.hop + self.field), dtype=np.float32)
            per = self._run(x, layers, n_frames=stop - start)
        else:
            ctx = -(-int(context) // self.hop) * self.hop
            s0 = max(0, start * self.hop - ctx)
            e0 = min(n_samples, (stop - 1) * self.hop + self.field + ctx)
            x = np.asarray(read(s0, e0), dtype=np.float32)
            off = start - s0 // self.hop
            per = [a[off:off + stop - start] for a in self._run(x, layers)]
        cube, _ = pad_layers(per, self.n_units)
        return cube


def torch_activations(audio: np.ndarray, sr: float, network: TorchNetwork, *, rate: float = 1.0,
                      resample: bool = True, stimulus: str | None = None) -> xr.DataArray:
    """Every recorded layer of a torch network, averaged onto the clock.

    Parameters
    ----------
    audio : array of shape (n_samples,)
        Mono waveform.
    sr : float
        Its sample rate (resampled to the network's, or refused if ``resample`` is False).
    network : TorchNetwork
        From :func:`~xaffect.features.torchload.load_torch_network`.
    rate : float
        Clock rate in Hz.
    stimulus : str, optional
        Adds a ``stimulus`` coordinate and names it in errors.

    Returns
    -------
    xarray.DataArray of shape (time, layer, unit), float32
        ``layer`` numbered 1..n in the order recorded, ``layer_name`` the
        module names, ``n_units`` each layer's width (NaN-padded beyond it).
    """
    from .frames import activations_on_clock, resample_audio

    what = f"stimulus {stimulus!r}" if stimulus else "audio"
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise InputError(f"{what}: expected a mono waveform (n_samples,), got shape {x.shape}")
    x = resample_audio(x, sr, network.sr, resample=resample, what=what)
    nb = n_bins(x.size / network.sr, rate)
    if nb == 0:
        raise InputError(f"{what}: {x.size / network.sr:.3f} s is shorter than one clock bin at {rate} Hz")
    if network.n_frames(x.size) == 0:
        raise InputError(f"{what}: shorter than one frame of {network.name} ({network.field / network.sr:.3f} s)")
    sel = list(range(network.n_layers))
    cube = activations_on_clock(network, x, x.size, bins=(0, nb), rate=rate, layers=sel,
                                batch_seconds=max(1.0, network.batch_frames * network.hop / network.sr),
                                context_seconds=0.0 if network.input == "frames" else 1.0)
    coords = {"onset": ("time", bin_centres(nb, rate)), "layer": np.arange(1, len(sel) + 1),
              "layer_name": ("layer", network.layer_names(sel)), "n_units": ("layer", network.widths[sel])}
    if stimulus is not None:
        coords["stimulus"] = ("time", np.full(nb, stimulus))
    return xr.DataArray(cube, dims=("time", "layer", "unit"), coords=coords, name="activation",
                        attrs={"model": network.name, "random_init": int(network.random_init),
                               "clock_rate": float(rate)})
