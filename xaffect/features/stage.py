"""The ``features`` and ``covariates`` stages.

``features`` reads the ``stems`` store (one group per stimulus, ``audio
(element, sample)``) and writes, per extractor of its config section:

* ``features.<name>`` (``-random`` appended for random weights):
  ``activation (element, time, layer, unit)`` for deep extractors or
  ``lld (element, time, descriptor)`` for classical ones, on the clock,
  chunked one layer (and one element) per chunk;
* ``features.<name>.pca<k>``: ``activation (element, time, layer, component)``
  and ``explained_variance_ratio``, when ``pca`` is set.

Deep cubes are built lazily: one dask task per (stimulus, element, block of
``time_chunk`` clock bins) reads only its slice of audio (plus context) from
the stems store, so memory stays bounded however long a stimulus is.

``covariates`` decodes each stimulus's video frames into ``visual (time,
descriptor)`` on the same clock.
"""

from __future__ import annotations

import math
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..config import Field, StageSpec
from ..errors import ConfigError, InputError, StoreError
from ..store.clock import bin_centres, concat_stimuli, n_bins
from .frames import activations_on_clock, check_layers, plan_chunks
from .hf import SpeechModel
from .lld import LLD_NAMES, lld
from .lld import SR as LLD_SR
from .reduce import reduce_layers
from .resolve import DEEP, FIRST_LAYER, TORCH_KEYS, ExtractorRef, check_models, resolve_extractor, store_name
from .smile import egemaps
from .visual import VISUAL_NAMES, visual_covariates

__all__ = ["STAGES", "EXTRACTOR_SCHEMA", "run_features", "run_covariates", "store_name", "resolve_extractor",
           "check_models"]

EXTRACTOR_SCHEMA = {
    "name": Field(str, default=None, help="store name suffix: features.<name> (default: kind)"),
    "kind": Field(str, default="hf", choices=("hf", "vggish", "torch", "lld", "egemaps"),
                  help="hf | vggish | torch | lld | egemaps"),
    "model": Field(str, default=None, help="hf: Hugging Face id or local folder"),
    "revision": Field(str, default=None, help="hf: hub revision"),
    "checkpoint": Field((str, None), default=None, help="vggish: state-dict file"),
    "factory": Field(str, default=None, help="torch: 'package.module:callable' returning the network"),
    "factory_kwargs": Field(dict, default=None, help="torch: keyword arguments of the factory"),
    "factory_loads_weights": Field(bool, default=False, help="torch: the factory returns trained weights itself"),
    "state_dict": Field(str, default=None, help="torch: weights file loaded into the factory's network"),
    "torchscript": Field(str, default=None, help="torch: a torch.jit.save-d network (instead of a factory)"),
    "input": Field(str, default="frames", choices=("frames", "waveform"),
                   help="torch: one batch row per frame, or the waveform with time kept in the outputs"),
    "sr": Field(int, default=16000, help="torch: sample rate the network reads"),
    "field_seconds": Field(float, default=None, help="torch: seconds one frame sees (receptive field)"),
    "frame_norm": Field(bool, default=False, help="torch frames: z-score each frame"),
    "time_axis": Field(int, default=1, help="torch waveform: the time axis of the recorded outputs"),
    "transform": Field(str, default=None, help="torch: 'module:callable' making the network input"),
    "batch_frames": Field(int, default=256, help="torch frames: frames per forward pass"),
    "random_init": Field(bool, default=False, help="seeded random weights (the control); store gets -random"),
    "seed": Field(int, default=0, help="seed of the random weights"),
    "layers": Field((str, int, list), default="all",
                    help="hf: 'all', an index or indices (0 = transformer input); vggish: 1..23; "
                         "torch: module names"),
    "elements": Field(list, default=None, help="elements to extract (default: all in stems)"),
    "batch_seconds": Field(float, default=60.0, help="hf: seconds of audio per forward pass"),
    "context_seconds": Field(float, default=3.0, help="hf: context each side of a chunk"),
    "hop_seconds": Field(float, default=None, help="vggish: seconds between examples (0.96); torch: between frames"),
    "pool": Field(str, default="time-mean", choices=("time-mean", "flatten"), help="vggish conv outputs"),
    "pca": Field((int, None), default=12, help="components of the per-layer PCA (null: none)"),
    "pca_joint": Field(bool, default=False, help="one PCA basis for all elements"),
    "resample": Field(bool, default=True, help="resample stems to the model rate (false: refuse)"),
    "time_chunk": Field(int, default=256, help="clock bins per task and per stored chunk"),
}
FEATURES_SCHEMA = {
    "extractors": Field(list, default=[], item=EXTRACTOR_SCHEMA, help="feature extractors to run"),
    "source": Field(str, default="stems", help="store with the audio"),
}
COVARIATES_SCHEMA = {
    "enabled": Field(bool, default=True, help="decode video frames into visual covariates"),
    "width": Field(int, default=160, help="frames are scaled to this width"),
    "cut_threshold": Field(float, default=0.5, help="histogram change that counts as a cut"),
}


def _params(spec: dict, rate: float, stimuli: list[str], elements: list[str]) -> dict:
    keys = {"hf": ("model", "revision", "random_init", "seed", "layers", "batch_seconds", "context_seconds"),
            "vggish": ("checkpoint", "random_init", "seed", "layers", "hop_seconds", "pool"),
            "torch": TORCH_KEYS, "lld": (), "egemaps": ()}[spec["kind"]]
    return {"kind": spec["kind"], **{k: spec[k] for k in keys}, "resample": spec["resample"],
            "time_chunk": spec["time_chunk"], "rate": rate, "stimuli": stimuli, "elements": elements,
            "version": 2}


def _inputs(spec: dict, source: str, study) -> list:
    out: list[Any] = [source]
    if spec["kind"] == "hf" and spec["model"] and study.resolve(spec["model"]).exists():
        out.append(str(study.resolve(spec["model"])))  # a local model folder: its content is part of the identity
    if spec["kind"] == "vggish" and spec["checkpoint"] and not spec["random_init"]:
        out.append(str(study.resolve(spec["checkpoint"])))
    if spec["kind"] == "torch":
        for key in ("torchscript",) + (() if spec["random_init"] else ("state_dict",)):
            if spec[key]:
                out.append(str(study.resolve(spec[key])))
    return out


def _reader(audio: Any, sr_in: float, sr_out: int, stats: tuple[float, float] | None):
    """A ``read(s, e)`` of model-rate samples from a lazy source waveform, and its length."""
    import soxr

    n_in = int(audio.shape[0])
    same = abs(float(sr_in) - sr_out) < 1e-6
    n_out = n_in if same else int(round(n_in * sr_out / sr_in))

    def get(a: int, b: int) -> np.ndarray:
        x = audio[a:b]
        return np.asarray(x.compute(scheduler="synchronous") if hasattr(x, "compute") else x, dtype=np.float32)

    def read(s: int, e: int) -> np.ndarray:
        s, e = max(0, s), min(n_out, e)
        if same:
            x = get(s, e)
        else:
            margin = int(0.1 * sr_in)
            a = max(0, int(math.floor(s * sr_in / sr_out)) - margin)
            b = min(n_in, int(math.ceil(e * sr_in / sr_out)) + margin)
            y = soxr.resample(get(a, b), float(sr_in), float(sr_out))
            off = int(round(a * sr_out / sr_in))
            x = y[s - off:e - off]
            if x.size < e - s:
                x = np.pad(x, (0, e - s - x.size))
        if stats is not None:
            x = (x - stats[0]) / stats[1]
        return x.astype(np.float32)

    return read, n_out


def _stems_groups(ws, source: str, study) -> dict[str, xr.Dataset]:
    if source not in ws:
        raise StoreError(f"features: no {source!r} store in {ws.url} (run `xaffect stems` first)")
    groups = {}
    for stim in study.stimuli:
        try:
            ds = ws.open(source, group=stim.name)
        except (KeyError, FileNotFoundError, OSError, ValueError):
            raise StoreError(f"features: stimulus {stim.name!r} has no group in the {source!r} store") from None
        if "audio" not in ds or "sr" not in ds.attrs:
            raise StoreError(f"features: {source}/{stim.name} lacks 'audio' or its 'sr' attr")
        groups[stim.name] = ds
    return groups


#: Progress bars of this process by id; a task run on a dask worker finds none and shows nothing.
_BARS: dict[int, Any] = {}


def _register_bar(bar) -> int:
    _BARS[id(bar)] = bar
    return id(bar)


def _block(ref, read, n: int, bins: tuple[int, int], opts: dict, bar_id: int, label: str) -> np.ndarray:
    """One (stimulus, element, block of clock bins) task: ``(bins, layer, unit)`` activations."""
    out = activations_on_clock(ref.get(), read, n, bins=bins, **opts)
    bar = _BARS.get(bar_id)
    if bar is not None:
        bar.set_postfix_str(label, refresh=False)
        bar.update(1)
    return out


def _build_deep(spec, study, groups, elements, progress) -> tuple[xr.Dataset, dict, Any]:
    ext, prov, n_layers = resolve_extractor(spec, study)
    first = FIRST_LAYER[spec["kind"]]
    if spec["kind"] == "torch":
        layers = list(range(n_layers))  # the layers named are the layers recorded
    else:
        layers = check_layers(spec["layers"], n_layers, what=f"extractor {store_name(spec)!r}", first=first)
    rate, tc = float(study.rate), int(spec["time_chunk"])
    n_tasks = 0
    per_stim, onsets, names = [], [], []
    bar = tqdm(total=0, desc=store_name(spec), unit="block", disable=not progress, leave=False)
    # the tasks carry what to load, not the network: a dask worker loads it once (ExtractorRef)
    ref = ExtractorRef(spec, study.root, loaded=ext)
    bar_id = _register_bar(bar)
    opts = {"rate": rate, "layers": layers, "batch_seconds": spec["batch_seconds"],
            "context_seconds": spec["context_seconds"]}

    for stim, ds in groups.items():
        sr_in = float(ds.attrs["sr"])
        if abs(sr_in - ext.sr) > 1e-6 and not spec["resample"]:
            raise InputError(f"stimulus {stim!r}: stems at {sr_in:g} Hz but {store_name(spec)} expects "
                             f"{ext.sr} Hz (set resample: true)")
        cubes = []
        for el in elements:
            audio = ds["audio"].sel(element=el).data
            stats = None
            if isinstance(ext, SpeechModel) and ext.normalize:
                mu, sd = dask.compute(audio.mean(), audio.std(), scheduler="synchronous")
                stats = (float(mu), float(np.sqrt(float(sd) ** 2 + 1e-7)))
            read, n = _reader(audio, sr_in, ext.sr, stats)
            nb = n_bins(n / ext.sr, rate)
            if nb == 0:
                raise InputError(f"stimulus {stim!r}: {n / ext.sr:.3f} s is shorter than one clock bin at {rate:g} Hz "
                                 f"({store_name(spec)})")
            parts = []
            for b0, b1 in plan_chunks(nb, tc):
                d = dask.delayed(_block, pure=False)(ref, read, n, (b0, b1), opts, bar_id, f"{stim} × {el}")
                parts.append(da.from_delayed(d, shape=(b1 - b0, len(layers), ext.n_units), dtype=np.float32))
                n_tasks += 1
            cubes.append(da.concatenate(parts, axis=0))
        nb = min(c.shape[0] for c in cubes)
        per_stim.append(da.stack([c[:nb] for c in cubes]))
        onsets.append(bin_centres(nb, rate))
        names.append(np.full(nb, stim))
    bar.total = n_tasks
    data = da.concatenate(per_stim, axis=1).rechunk({0: 1, 1: tc, 2: 1, 3: -1})
    coords = {"element": elements, "time": np.arange(data.shape[1]), "layer": [first + i for i in layers],
              "layer_name": ("layer", list(ext.layer_names(layers))),
              "onset": ("time", np.concatenate(onsets)), "stimulus": ("time", np.concatenate(names).astype(str))}
    if not isinstance(ext, SpeechModel):
        coords["n_units"] = ("layer", np.asarray(ext.widths)[layers])
    attrs = {"clock_rate": rate, "model": str(prov["name"]), "random_init": int(bool(spec["random_init"])),
             "n_layers": int(n_layers), "kind": spec["kind"]}
    ds = xr.Dataset({"activation": (("element", "time", "layer", "unit"), data)}, coords=coords, attrs=attrs)
    return ds, prov, bar


def _build_lld(spec, study, groups, elements) -> xr.Dataset:
    rate = float(study.rate)
    func = lld if spec["kind"] == "lld" else egemaps
    names = list(LLD_NAMES) if spec["kind"] == "lld" else \
        [str(d) for d in egemaps(np.zeros(LLD_SR, np.float32), LLD_SR)["descriptor"].values]
    per = {}
    for stim, ds in groups.items():
        sr = float(ds.attrs["sr"])
        if not spec["resample"] and abs(sr - LLD_SR) > 1e-6:
            raise InputError(f"stimulus {stim!r}: stems at {sr:g} Hz but the descriptors are computed at "
                             f"{LLD_SR} Hz (set resample: true)")
        nb = n_bins(ds.sizes["sample"] / sr, rate)
        if nb == 0:  # a zero-length block would drop the stimulus from the store without a word
            raise InputError(f"stimulus {stim!r}: {ds.sizes['sample'] / sr:.3f} s is shorter than one clock bin "
                             f"at {rate:g} Hz ({store_name(spec)})")
        rows = []
        for el in elements:
            def one(x, _stim=stim):
                return func(np.asarray(x), sr, rate=rate, resample=spec["resample"], stimulus=_stim).values
            d = dask.delayed(one, pure=False)(ds["audio"].sel(element=el).data)
            rows.append(da.from_delayed(d, shape=(nb, len(names)), dtype=np.float32))
        arr = xr.DataArray(da.stack(rows), dims=("element", "time", "descriptor"),
                           coords={"element": elements, "descriptor": names,
                                   "onset": ("time", bin_centres(nb, rate))})
        per[stim] = arr
    out = concat_stimuli(per).chunk({"element": 1})
    return xr.Dataset({"lld": out}, attrs={"clock_rate": rate, "kind": spec["kind"]})


def run_features(study, *, force: bool = False, progress: bool = True) -> list[str]:
    """Run every extractor of the study's ``features`` section.

    Returns
    -------
    list of str
        Names of the stores written or found current.
    """
    cfg = study.section("features")
    ws = study.workspace
    source = cfg["source"]
    if not cfg["extractors"]:
        return []
    seen = set()
    for spec in cfg["extractors"]:
        name = store_name(spec)
        if name in seen:
            raise ConfigError(f"features.extractors: two extractors write {name!r}; give them distinct names")
        seen.add(name)
    groups = _stems_groups(ws, source, study)
    stimuli = list(groups)
    have = [str(e) for e in next(iter(groups.values()))["element"].values]
    written: list[str] = []
    for spec in cfg["extractors"]:
        name = store_name(spec)
        elements = spec["elements"] or have
        unknown = [e for e in elements if e not in have]
        if unknown:
            raise ConfigError(f"features.extractors: {name}: elements {unknown} not in {source} (have {have})")
        params = _params(spec, float(study.rate), stimuli, list(elements))
        inputs = _inputs(spec, source, study)
        if force or not ws.is_current(name, stage="features", params=params, inputs=inputs):
            bar = None
            if spec["kind"] not in DEEP:
                ds = _build_lld(spec, study, groups, list(elements))
                prov = {"name": "librosa" if spec["kind"] == "lld" else "opensmile eGeMAPSv02"}
            else:
                ds, prov, bar = _build_deep(spec, study, groups, list(elements), progress)
            try:
                ws.write(name, ds, stage="features", params=params, inputs=inputs, model=prov, progress=progress,
                         description=f"{spec['kind']} features {name}",
                         metadata={"extractor": spec["kind"], "random_init": bool(spec["random_init"])})
            finally:
                if bar is not None:
                    bar.close()
                    _BARS.pop(id(bar), None)
        written.append(name)
        if spec["kind"] in DEEP and spec["pca"]:
            k = int(spec["pca"])
            pname = f"{name}.pca{k}"
            pparams = {"n_components": k, "joint": bool(spec["pca_joint"])}
            if force or not ws.is_current(pname, stage="features", params=pparams, inputs=[name]):
                red = reduce_layers(ws.open(name)["activation"], n_components=k, joint=spec["pca_joint"],
                                    progress=progress)
                red = red.chunk({"element": 1, "layer": 1})
                ws.write(pname, red, stage="features", params=pparams, inputs=[name], progress=progress,
                         description=f"{name}, PCA to {k} components per layer")
            written.append(pname)
    return written


def _video_of(stim) -> str:
    return str(stim.video or stim.path)


def _has_video(path: str) -> bool:
    import av

    try:
        with av.open(path) as c:
            return bool(c.streams.video)
    except (av.error.FFmpegError, OSError):
        return False


def run_covariates(study, *, force: bool = False, progress: bool = True) -> list[str]:
    """Decode each stimulus's video into ``covariates``: ``visual (time, descriptor)``.

    Returns ``[]`` when disabled or when no stimulus has a video stream;
    raises naming the stimulus when only some have one.
    """
    cfg = study.section("covariates")
    if not cfg["enabled"]:
        return []
    ws = study.workspace
    videos = {s.name: _video_of(s) for s in study.stimuli}
    has = {k: _has_video(v) for k, v in videos.items()}
    if not any(has.values()):
        return []
    lacking = [k for k, v in has.items() if not v]
    if lacking:
        raise InputError(f"covariates: stimulus {lacking[0]!r} ({videos[lacking[0]]}) has no video stream "
                         "(give it a `video:` file, or set covariates.enabled: false)")
    durations = {}
    inputs: list[Any] = list(videos.values())
    if "stems" in ws:
        inputs.append("stems")
        for name in videos:
            g = ws.open("stems", group=name)
            durations[name] = g.sizes["sample"] / float(g.attrs["sr"])
    params = {**cfg, "rate": float(study.rate), "stimuli": list(videos), "version": 1}
    name = "covariates"
    if force or not ws.is_current(name, stage="covariates", params=params, inputs=inputs):
        per = {}
        for stim, path in tqdm(videos.items(), desc="covariates", unit="stimulus", disable=not progress, leave=False):
            per[stim] = visual_covariates(path, rate=float(study.rate), width=cfg["width"],
                                          cut_threshold=cfg["cut_threshold"], stimulus=stim,
                                          duration=durations.get(stim))
        visual = concat_stimuli(per)
        ds = xr.Dataset({"visual": visual}, attrs={"clock_rate": float(study.rate)})
        ws.write(name, ds, stage="covariates", params=params, inputs=inputs, progress=progress,
                 description="visual covariates: " + ", ".join(VISUAL_NAMES))
    return [name]


STAGES = {
    "features": StageSpec(config=FEATURES_SCHEMA, run=run_features,
                          help="layer cubes (HF speech models, VGGish, any torch network), classical LLDs and PCA",
                          requires=("stems",), preflight=check_models),
    "covariates": StageSpec(config=COVARIATES_SCHEMA, run=run_covariates,
                            help="visual covariates from the video frames"),
}


def _make_random_model_command():
    import click

    from ..errors import XaffectError
    from .models import RANDOM_MODEL_KINDS, make_random_model

    @click.command(name="make-random-model")
    @click.argument("kind", type=click.Choice(RANDOM_MODEL_KINDS))
    @click.argument("path", type=click.Path())
    @click.option("--seed", default=0, show_default=True, help="Seed of the random weights.")
    @click.option("--size", type=click.Choice(["tiny", "base"]), default="tiny", show_default=True,
                  help="base: the published base architecture; tiny: a few small blocks.")
    def command(kind: str, path: str, seed: int, size: str) -> None:
        """Save a model of KIND with seeded random weights under PATH (loadable as `model: PATH`)."""
        try:
            out = make_random_model(kind, path, seed=seed, size=size)
        except XaffectError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(str(out))

    return command


CLI_COMMANDS = [_make_random_model_command()]
