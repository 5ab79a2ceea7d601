"""Activations of any torch network, read by forward hooks.

A forward hook on each named submodule records its output for a batch of
frames; each output is reduced to one vector per frame (flattened, or first
averaged over a time axis) so every stage gives the same ``(frame, unit)``
matrix, and stages of different widths share one ``(time, layer, unit)`` cube
padded with NaN (the real width is in the ``n_units`` coordinate).

A hook records what its module computed: the output is copied inside the
hook, before any later in-place operation (``nn.ReLU(inplace=True)``,
``x.add_(...)``) of the forward pass can overwrite the tensor it shares
memory with. A numpy view of the output would silently turn a "conv" record
into the following ReLU's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError

__all__ = ["hook_activations", "pool_output", "pad_layers"]

INPUT = "input"


def pool_output(out, *, pool: str = "flatten", time_axis: int = 2) -> np.ndarray:
    """One vector per frame from a module output.

    Parameters
    ----------
    out : tensor of shape (n_frames, ...)
    pool : {"flatten", "time-mean"}
        ``flatten`` keeps every value; ``time-mean`` first averages a
        4-D ``(n, channel, time, freq)`` output over ``time_axis``
        (lower-rank outputs are flattened).

    Returns
    -------
    array of shape (n_frames, n_units), float32
    """
    import torch

    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise InputError(f"hook: module output is {type(out).__name__}, not a tensor")
    if pool not in ("flatten", "time-mean"):
        raise InputError(f"pool: must be 'flatten' or 'time-mean', got {pool!r}")
    out = out.detach()
    if pool == "time-mean" and out.ndim == 4:
        out = out.mean(dim=time_axis)  # a new tensor: later in-place ops cannot reach it
    # an explicit copy (never a view of the module's output, which a later in-place op may overwrite)
    return out.reshape(out.shape[0], -1).to(device="cpu", dtype=torch.float32, copy=True).numpy()


def hook_activations(network, x, layers: Sequence[str], *, pool: str = "flatten",
                     time_axis: int = 2) -> dict[str, np.ndarray]:
    """Outputs of named submodules of ``network`` for a batch of frames.

    Parameters
    ----------
    network : torch.nn.Module
    x : tensor of shape (n_frames, ...)
        One network input per frame.
    layers : sequence of str
        Submodule names as in ``network.named_modules()``; ``"input"`` is
        the input itself.
    pool, time_axis
        As in :func:`pool_output`.

    Returns
    -------
    dict of str to array of shape (n_frames, n_units)
        In the order of ``layers``.

    Raises
    ------
    InputError
        If a name is not a submodule of ``network``.
    """
    import torch

    modules = dict(network.named_modules())
    missing = [name for name in layers if name != INPUT and name not in modules]
    if missing:
        raise InputError(f"layers: {missing} are not submodules of {type(network).__name__} "
                         f"(have: {', '.join(n for n in modules if n)[:300]})")
    got: dict[str, np.ndarray] = {}
    handles = []
    for name in layers:
        if name == INPUT:
            continue

        def hook(_module, _inp, out, _name=name):
            got[_name] = pool_output(out, pool=pool, time_axis=time_axis)

        handles.append(modules[name].register_forward_hook(hook))
    if INPUT in layers:  # before the forward pass, which may change its input in place
        got[INPUT] = pool_output(x, pool=pool, time_axis=time_axis)
    try:
        with torch.inference_mode():
            network(x)
    finally:
        for h in handles:
            h.remove()
    return {name: got[name] for name in layers}


def pad_layers(per_layer: Sequence[np.ndarray], width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack ``(n_frames, n_units_l)`` matrices into one NaN-padded cube.

    Returns
    -------
    cube : array of shape (n_frames, n_layers, width)
    n_units : array of shape (n_layers,)
    """
    n_units = np.array([a.shape[1] for a in per_layer])
    width = int(width or n_units.max())
    n = per_layer[0].shape[0]
    cube = np.full((n, len(per_layer), width), np.nan, dtype=np.float32)
    for i, a in enumerate(per_layer):
        cube[:, i, :a.shape[1]] = a
    return cube, n_units
