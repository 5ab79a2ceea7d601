"""The ``stems`` stage: every stimulus decoded and separated into the stems store.

Store ``stems`` (a DataTree):

* one group per stimulus: ``audio (element, sample)`` float32, element =
  original, voice, soundtrack; attrs ``sr``, ``path``, ``hash``,
  ``native_sr``, ``duration``, ``energy_ratio`` (dB) and the stimulus's own
  identity (so a rerun reuses stimuli whose file and settings are unchanged);
* the root group, on the clock: ``energy (element, time)``,
  ``energy_ratio (time)`` (dB, voice over soundtrack) with coordinates
  ``stimulus`` and ``onset``, and ``energy_ratio_stimulus (stimuli)``.

All stimuli are separated before anything is written (into a scratch folder,
memory-mapped), so a bad stimulus raises :class:`~xaffect.errors.InputError`
naming its file and leaves the workspace as it was.
"""

from __future__ import annotations

import os
import warnings
from datetime import datetime, timezone
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import click
import numpy as np
import xarray as xr

from ..config import Field, StageSpec
from ..errors import ConfigError, InputError
from ..store.clock import concat_stimuli
from .decode import load_audio, probe_audio
from .energy import energy_on_clock, energy_ratio_db
from .separate import BACKENDS, backend_info, min_sample_rate, resolve_backend, separate

__all__ = ["make_stems", "run_stems", "ELEMENTS", "STAGES", "CLI_COMMANDS"]

ELEMENTS = ("original", "voice", "soundtrack")
_STIM_IDENT = "xaffect_stimulus_identity"


def _stimulus_items(stimuli: Iterable[Any] | Mapping[str, Any]) -> list[tuple[str, Path]]:
    if isinstance(stimuli, Mapping):
        items = [(str(k), Path(v)) for k, v in stimuli.items()]
    else:
        items = [(str(s.name), Path(s.path)) for s in stimuli]
    for name, _ in items:
        if not name or "/" in name or name.startswith("."):
            raise InputError(f"stimulus {name!r}: names must be non-empty, without '/' or a leading '.'")
    if len({n for n, _ in items}) != len(items):
        raise InputError("stimuli: names must be unique")
    if not items:
        raise InputError("stimuli: no stimuli given")
    return items


def _check_rate(name: str, path: Path, backend: str) -> None:
    """A recording whose native rate the backend cannot take is an error naming its file."""
    low = min_sample_rate(backend)
    if low <= 1:
        return
    native = probe_audio(path)["native_sr"]
    if native and native < low:
        raise InputError(f"{path}: stimulus {name!r}: recorded at {native} Hz, below the {low} Hz the {backend} "
                         f"separator takes (it needs the speech band up to {low // 2} Hz); give pre-separated "
                         "stems (stems.stems_dir) or another backend")


def _separate_one(name: str, path: Path, *, sr: int, backend: str, options: Mapping[str, Any]
                  ) -> np.ndarray:
    """Decode and separate one stimulus; errors name its file."""
    _check_rate(name, path, backend)
    audio, _ = load_audio(path, sr=sr, mono=True)
    try:
        stems = separate(audio, sr, backend=backend, **options)
    except InputError as exc:
        raise InputError(f"{path}: stimulus {name!r}: {exc}") from None
    return np.stack([audio, stems["voice"], stems["soundtrack"]]).astype(np.float32)


def _stem_paths(stems_dir: Path, name: str) -> tuple[Path, Path]:
    return stems_dir / f"{name}.voice.wav", stems_dir / f"{name}.soundtrack.wav"


def _read_stems(name: str, path: Path, stems_dir: Path, *, sr: int, tolerance: float) -> np.ndarray:
    """Decode one stimulus and its pre-separated stems (resampled to ``sr``).

    Stems whose length differs from the decoded stimulus by at most
    ``tolerance`` seconds are zero-padded or trimmed to it (with a warning
    above 0.1 s; encoders add priming and padding); a larger difference is an
    :class:`InputError` naming the stem file.

    Returns
    -------
    ndarray of shape (3, n_samples), float32
        original, voice, soundtrack.
    """
    audio, _ = load_audio(path, sr=sr, mono=True)
    out = [audio]
    for stem in _stem_paths(stems_dir, name):
        if not stem.exists():
            raise InputError(f"{stem}: stimulus {name!r}: pre-separated stem not found in stems_dir {stems_dir}")
        x, _ = load_audio(stem, sr=sr, mono=True, allow_silent=True)
        diff = (x.size - audio.size) / sr
        if abs(diff) > tolerance:
            raise InputError(f"{stem}: stimulus {name!r}: stem lasts {x.size / sr:.3f} s but the stimulus "
                             f"{path} lasts {audio.size / sr:.3f} s (more than stems_tolerance={tolerance:g} s apart)")
        if abs(diff) > 0.1:
            warnings.warn(f"{stem}: {'trimmed' if diff > 0 else 'zero-padded'} by {abs(diff):.3f} s to the "
                          f"length of stimulus {name!r}", UserWarning, stacklevel=3)
        x = x[:audio.size] if x.size >= audio.size else np.pad(x, (0, audio.size - x.size))
        out.append(x)
    return np.stack(out).astype(np.float32)


def _group(audio: Any, *, sr: int, name: str, path: Path, ident: str, info: Mapping[str, Any],
           chunk: int) -> xr.Dataset:
    import dask.array as da

    arr = audio if isinstance(audio, da.Array) else da.from_array(audio, chunks=(1, chunk))
    ds = xr.Dataset({"audio": (("element", "sample"), arr.rechunk((1, chunk)))},
                    coords={"element": list(ELEMENTS)})
    ds["audio"].attrs = {"long_name": "waveform", "units": "full scale"}
    ds.attrs = {"sr": int(sr), "stimulus": name, "path": str(path), **info, _STIM_IDENT: ident}
    return ds


def make_stems(workspace: Any, stimuli: Iterable[Any] | Mapping[str, Any], *, rate: float = 1.0,
               backend: str = "auto", sr: int = 16000, options: Mapping[str, Any] | None = None,
               chunk: float = 60.0, name: str = "stems", stems_dir: str | os.PathLike | None = None,
               stems_tolerance: float = 1.0, force: bool = False, progress: bool = True) -> list[str]:
    """Decode, separate and write every stimulus into the stems store.

    Parameters
    ----------
    workspace : xaffect.store.Workspace
    stimuli : iterable of Stimulus, or mapping of name to path
    rate : float
        Analysis clock rate (Hz) of the energy variables.
    backend : str
        Separation backend: ``auto`` (the best available, see
        :func:`~xaffect.stimuli.separate.resolve_backend`; the store records
        which ran), ``masknet``, ``nnfilter``, ``demucs``, ``spleeter``.
    sr : int
        Sample rate (Hz) of the stored audio.
    options : mapping, optional
        Backend options.
    chunk : float
        Seconds of audio per Zarr chunk.
    name : str
        Store name.
    stems_dir : path, optional
        A folder of pre-separated stems ``<stimulus>.voice.wav`` and
        ``<stimulus>.soundtrack.wav`` (any format FFmpeg reads, resampled to
        ``sr``): used instead of ``backend``, for labs that already have them.
    stems_tolerance : float
        Seconds a stem's length may differ from its stimulus's (it is then
        padded or trimmed); more is an error.
    force : bool
        Recompute everything even if current.
    progress : bool
        Progress bar per stimulus.

    Returns
    -------
    list of str
        ``[name]``.

    Raises
    ------
    InputError
        A stimulus that cannot be decoded or separated, or a missing or
        mismatched pre-separated stem (naming its file); nothing is written.
    """
    from tqdm.auto import tqdm

    if backend not in BACKENDS:
        raise ConfigError(f"stems.backend: unknown backend {backend!r} (available: {', '.join(BACKENDS)})")
    options = dict(options or {})
    requested = backend
    if stems_dir is None:
        backend = resolve_backend(backend, **options)
        if int(sr) < min_sample_rate(backend):
            raise ConfigError(f"stems.sr: {sr} Hz is below the {min_sample_rate(backend)} Hz the {backend} "
                              "separator takes")
    items = _stimulus_items(stimuli)
    if stems_dir is not None:
        stems_dir = Path(stems_dir).expanduser().resolve()
        if not stems_dir.is_dir():
            raise InputError(f"{stems_dir}: stems_dir is not a folder")
        info = {"model": None}
    else:
        info = backend_info(backend, **options)
    params = {"backend": backend, "requested_backend": requested, "options": options, "sr": int(sr),
              "rate": float(rate),
              "stimuli": [n for n, _ in items], "model": info.get("model"),
              "stems_dir": None if stems_dir is None else str(stems_dir),
              "stems_tolerance": None if stems_dir is None else float(stems_tolerance)}
    for n, p in items:
        if not p.exists():
            raise InputError(f"{p}: stimulus {n!r}: file does not exist")
        if stems_dir is not None:
            for stem in _stem_paths(stems_dir, n):
                if not stem.exists():
                    raise InputError(f"{stem}: stimulus {n!r}: pre-separated stem not found in stems_dir "
                                     f"{stems_dir}")
    stem_files = {n: [str(q) for q in _stem_paths(stems_dir, n)] if stems_dir is not None else [] for n, _ in items}
    inputs = [str(p) for _, p in items] + [q for n, _ in items for q in stem_files[n]]
    method = "precomputed" if stems_dir is not None else backend
    if not force and workspace.is_current(name, stage="stems", params=params, inputs=inputs):
        return [name]

    old = {}
    if not force and name in workspace:
        try:
            tree = workspace.open(name)
            old = {g.lstrip("/"): tree[g].to_dataset() for g in tree.groups if g != "/"}
        except Exception:  # an unreadable old version is simply not reused
            old = {}
    csamp = max(1, int(chunk * sr))
    groups: dict[str, xr.Dataset] = {}
    clocks = {}
    ratios = {}
    with workspace.scratch("stems") as scratch:  # in the workspace, reclaimed after a kill
        for stim, path in tqdm(items, desc="stems", unit="stimulus", disable=not progress):
            ident = workspace.identity(stage="stems/stimulus",
                                       params={k: params[k] for k in ("backend", "options", "sr", "model",
                                                                      "stems_dir", "stems_tolerance")},
                                       inputs=[str(path)] + stem_files[stim])
            prev = old.get(stim)
            if prev is not None and prev.attrs.get(_STIM_IDENT) == ident:
                arr = prev["audio"].transpose("element", "sample").data
                values = np.asarray(prev["audio"].values)
                meta = {k: prev.attrs[k] for k in ("hash", "native_sr", "duration", "backend", "separated")
                        if k in prev.attrs}
            else:
                if stems_dir is not None:
                    values = _read_stems(stim, path, stems_dir, sr=sr, tolerance=stems_tolerance)
                else:
                    values = _separate_one(stim, path, sr=sr, backend=backend, options=options)
                fn = os.path.join(scratch, f"{len(groups)}.npy")
                np.save(fn, values)
                del values
                values = np.load(fn, mmap_mode="r")
                arr = values
                probe = probe_audio(path)
                meta = {"hash": workspace.input_identities([str(path)])[0]["hash"],
                        "native_sr": probe["native_sr"], "duration": values.shape[-1] / sr,
                        "backend": method,
                        "separated": datetime.now(timezone.utc).isoformat(timespec="microseconds")}
            da_audio = xr.DataArray(values, dims=("element", "sample"), coords={"element": list(ELEMENTS)})
            clocks[stim] = energy_on_clock(da_audio, sr, rate=rate, stimulus=stim)
            power = np.mean(np.square(values[1:], dtype=np.float64), axis=-1)
            ratios[stim] = float(energy_ratio_db(power[0], power[1]))
            meta["energy_ratio"] = ratios[stim]
            groups[stim] = _group(arr, sr=sr, name=stim, path=path, ident=ident, info=meta, chunk=csamp)

        root = concat_stimuli(clocks)
        root = root.assign(energy_ratio_stimulus=(("stimuli",), np.array(list(ratios.values()), np.float32)))
        root = root.assign_coords(stimuli=list(ratios))
        root["energy_ratio_stimulus"].attrs = {"long_name": "voice / soundtrack energy of the whole stimulus",
                                               "units": "dB"}
        root.attrs = {"clock_rate": float(rate), "sr": int(sr), "backend": method,
                      "requested_backend": requested, "elements": list(ELEMENTS)}
        if stems_dir is not None:
            root.attrs["stems_dir"] = str(stems_dir)
        tree = xr.DataTree.from_dict({"/": root, **{f"/{k}": v for k, v in groups.items()}})
        workspace.write(name, tree, stage="stems", params=params, inputs=inputs, model=info.get("model"),
                        description=(f"voice/soundtrack separation ({backend}) of {len(items)} stimuli"
                                     if stems_dir is None else
                                     f"pre-separated voice/soundtrack stems of {len(items)} stimuli "
                                     f"read from {stems_dir}"),
                        metadata={"element": list(ELEMENTS), "backend": method,
                                  "stimuli": [n for n, _ in items]},
                        progress=progress)
    return [name]


def run_stems(study: Any, *, force: bool = False, progress: bool = True) -> list[str]:
    """Stage runner: the study's ``stems`` section applied to its stimuli."""
    cfg = study.section("stems")
    stems_dir = cfg.get("stems_dir")
    return make_stems(study.workspace, study.stimuli, rate=study.rate, backend=cfg["backend"],
                      sr=int(cfg["sr"]), options=cfg["backend_options"] or {}, chunk=float(cfg["chunk"]),
                      stems_dir=None if not stems_dir else study.resolve(stems_dir),
                      stems_tolerance=float(cfg.get("stems_tolerance", 1.0)), force=force, progress=progress)


STAGES = {
    "stems": StageSpec(
        config={
            "backend": Field(str, default="auto", choices=tuple(BACKENDS),
                             help="separation backend: auto (demucs or spleeter when their pretrained weights "
                                  "are here, else masknet; the store records which), masknet (trained by "
                                  "xaffect, weights shipped), nnfilter (REPET-SIM, no weights), demucs, spleeter"),
            "sr": Field(int, default=16000, help="sample rate (Hz) of the stored audio"),
            "backend_options": Field(dict, default=None,
                                     help="options of the backend (e.g. model_path, params, python, k, margin)"),
            "chunk": Field(float, default=60.0, help="seconds of audio per stored chunk"),
            "stems_dir": Field(str, default=None,
                               help="folder of pre-separated stems <stimulus>.voice.wav and "
                                    "<stimulus>.soundtrack.wav, used instead of the backend"),
            "stems_tolerance": Field(float, default=1.0,
                                     help="seconds a pre-separated stem may differ in length from its "
                                          "stimulus (padded/trimmed); more is an error"),
        },
        run=run_stems,
        help="decode each stimulus and separate it into voice and soundtrack (store: stems)",
    ),
}


@click.group("setup", help="Prepare optional external tools.")
def _setup() -> None:
    pass


@_setup.command("spleeter", help="Create the separate Spleeter environment (Python 3.11 venv).")
@click.option("--env", "env", type=click.Path(), default=None,
              help="where to create it (default $XAFFECT_SPLEETER_ENV or ~/.cache/xaffect/spleeter-env)")
@click.option("--python", "python", type=str, default=None, help="base interpreter (Python 3.9-3.11)")
def _setup_spleeter(env: str | None, python: str | None) -> None:
    from .spleeter import setup_spleeter

    setup_spleeter(env, python=python, echo=click.echo)


CLI_COMMANDS = [_setup]
