"""Benchmark: layer-cube extraction against a bare forward pass; memory vs stimulus length; RTF.

Run::

    python benchmarks/bench_features.py            # default sizes (a few minutes on 2 cores)
    python benchmarks/bench_features.py --full     # wav2vec2-base for the memory test too (long)

1. Throughput: ``model(x, output_hidden_states=True)`` over one clip, against
   xaffect's extraction of the same clip (a) ``layer_activations`` + writing
   the cube to a Zarr store through the workspace, and (b) the whole
   ``features`` stage (reads the stems store, loads the model, writes the
   store). Both on the random-weight wav2vec2-base architecture.
2. Peak memory (max RSS of a fresh process running the ``features`` stage) for
   a 5-minute and a 60-minute stimulus (tiny model by default, base with --full).
3. Real-time factor of the wav2vec2-base architecture on this machine's cores.
4. ``kind: torch`` on CREPE's trained CNN (``--crepe``, or ``--only-crepe``):
   a bare forward over the same normalised frames (``net(frames)`` in the same
   batches) against ``torch_activations`` (framing, hooks on 7 layers with
   copies, clock pooling) and the whole ``features`` stage with ``kind: torch``
   (stems read, store written). Goal: ≥ 0.85 of the bare throughput.
5. ``--demo-seeds N``: the quick demo's deep plant (trained CREPE) over N
   seeds: the simulation's layer-specificity figure, the best layer recovered
   vs planted, and the random-weight control's r beside the trained one's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

SR = 16000


def _make_study(root: Path, model_dir: Path, seconds: float, *, batch_seconds: float = 60.0) -> Path:
    """A one-stimulus study whose stems store holds ``seconds`` of noise (written lazily)."""
    import dask.array as da
    import xarray as xr

    from xaffect.study import load_study

    root.mkdir(parents=True, exist_ok=True)
    (root / "s.wav").write_bytes(b"placeholder: the stems store below is the input")
    (root / "study.yaml").write_text(textwrap.dedent(f"""\
        workspace: ws
        stimuli: [{{name: s, path: s.wav}}]
        features:
          extractors: [{{name: w2v, kind: hf, model: {model_dir}, pca: null, batch_seconds: {batch_seconds},
                         elements: [original]}}]
        """))
    study = load_study(root / "study.yaml")
    n = int(seconds * SR)
    audio = (da.random.RandomState(0).standard_normal((1, n), chunks=(1, 60 * SR)) * 0.1).astype(np.float32)
    tree = xr.DataTree.from_dict({"/": xr.Dataset(), "/s": xr.Dataset(
        {"audio": (("element", "sample"), audio)}, coords={"element": ["original"]}, attrs={"sr": SR})})
    study.workspace.write("stems", tree, stage="stems", params={"bench": seconds}, progress=False)
    return root / "study.yaml"


def _child_memory(study_yaml: str) -> None:
    from xaffect.features.stage import run_features
    from xaffect.study import load_study

    t0 = time.perf_counter()
    run_features(load_study(study_yaml), force=True, progress=False)
    # VmHWM (this process's own peak): ru_maxrss would carry the parent's peak across fork+exec
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(json.dumps({"maxrss_mb": hwm / 1024,
                      "seconds": time.perf_counter() - t0}))


def bench_throughput(tmp: Path, clip: float, repeats: int) -> dict:
    import torch

    from xaffect.features import layer_activations, load_model, make_random_model
    from xaffect.features.stage import run_features
    from xaffect.store import Workspace
    from xaffect.study import load_study

    base = make_random_model("wav2vec2", tmp / "base", seed=0, size="base")
    sm = load_model(base)
    x = (np.random.RandomState(0).randn(int(clip * SR)) * 0.1).astype(np.float32)
    ws = Workspace.init(tmp / "tput")

    def bare():
        with torch.inference_mode():
            out = sm.module(torch.from_numpy(x)[None], output_hidden_states=True)
        return out.hidden_states

    def ours():
        cube = layer_activations(x, SR, sm)
        ds = cube.expand_dims(element=["original"]).to_dataset().chunk({"layer": 1})
        ws.write("features.bench", ds, stage="features", params={"t": time.time()}, progress=False)

    study = load_study(_make_study(tmp / "tput-study", base, clip))
    run_features(study, progress=False)  # warm up (and numba/torch first-call costs)

    def stage():
        run_features(study, force=True, progress=False)

    times = {"bare": [], "ours": [], "stage": []}
    bare()
    for _ in range(repeats):
        for name, fn in (("bare", bare), ("ours", ours), ("stage", stage)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"clip_s": clip, "median_s": med, "throughput_ratio_core": med["bare"] / med["ours"],
            "throughput_ratio_stage": med["bare"] / med["stage"], "rtf_bare": med["bare"] / clip,
            "rtf_stage": med["stage"] / clip, "threads": torch.get_num_threads()}


def bench_crepe(tmp: Path, clip: float, repeats: int, capacity: str = "tiny", hop: float = 0.01) -> dict:
    """Throughput of ``kind: torch`` on trained CREPE against a bare forward of the same frames."""
    import torch
    import yaml

    from xaffect.features import crepe_extractor_spec, load_torch_network, torch_activations
    from xaffect.features.stage import run_features
    from xaffect.study import load_study

    spec = crepe_extractor_spec("crepe", capacity=capacity, hop_seconds=hop, pca=None, elements=["original"])
    net = load_torch_network(**{k: v for k, v in spec.items() if k not in ("name", "kind", "pca", "elements")})
    x = (np.random.RandomState(0).randn(int(clip * SR)) * 0.1).astype(np.float32)
    frames = net._frames_input(x, net.n_frames(x.size))

    def bare():
        with torch.inference_mode():
            return [net.module(torch.from_numpy(frames[a:a + net.batch_frames]))
                    for a in range(0, len(frames), net.batch_frames)]

    def ours():
        return torch_activations(x, SR, net)

    root = tmp / "crepe-study"
    _make_study(root, tmp, clip)  # a stems store with the same kind of noise; the extractor is replaced below
    cfg = yaml.safe_load((root / "study.yaml").read_text())
    cfg["features"]["extractors"] = [spec]
    (root / "study.yaml").write_text(yaml.safe_dump(cfg))
    study = load_study(root / "study.yaml")
    run_features(study, progress=False)

    def stage():
        run_features(study, force=True, progress=False)

    times = {"bare": [], "ours": [], "stage": []}
    bare()
    ours()
    for _ in range(repeats):
        for name, fn in (("bare", bare), ("ours", ours), ("stage", stage)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"clip_s": clip, "capacity": capacity, "frames": int(len(frames)), "median_s": med,
            "ratio_core": med["bare"] / med["ours"], "ratio_stage": med["bare"] / med["stage"],
            "frames_per_s_bare": len(frames) / med["bare"]}


def bench_demo_seeds(tmp: Path, seeds: int) -> list[dict]:
    """The quick demo's deep plant over ``seeds`` seeds: specificity, best layer, control."""
    from xaffect.datasets.demo import demo_settings, run_demo

    rows = []
    for seed in range(seeds):
        t0 = time.perf_counter()
        res = run_demo(tmp / f"demo{seed}", seed=seed, quick=True, echo=lambda *a, **k: None, progress=False,
                       settings=demo_settings(True))
        sim = json.loads((tmp / f"demo{seed}" / "simulation.json").read_text())
        deep = [r for r in res["comparison"]["planted"] if r.get("layer") is not None][0]
        ctrl = res["control"][0] if res["control"] else {}
        rows.append({"seed": seed, "specificity": sim["deep_layer_specificity"][deep["target"]],
                     "planted": deep["layer"], "recovered": deep["recovered_layer"], "r": deep["r"],
                     "p_fdr": deep["p_fdr"], "random_r": ctrl.get("random_r"), "random_layer": ctrl.get("random_layer"),
                     "all_recovered": res["comparison"]["all_recovered"],
                     "null_n": res["comparison"]["null"]["n"], "null_fraction": res["comparison"]["null"]["fraction"],
                     "seconds": time.perf_counter() - t0})
        print(json.dumps(rows[-1]), flush=True)      # one line per seed as it finishes
    return rows


def bench_memory(tmp: Path, size: str, minutes: tuple[int, int]) -> dict:
    from xaffect.features import make_random_model

    model = make_random_model("wav2vec2", tmp / f"mem-{size}", seed=0, size=size)
    out = {}
    for m in minutes:
        study = _make_study(tmp / f"mem-{size}-{m}", model, m * 60.0)
        res = subprocess.run([sys.executable, __file__, "--child-memory", str(study)], check=True,
                             capture_output=True, text=True)
        out[m] = json.loads(res.stdout.strip().splitlines()[-1])
    a, b = minutes
    return {"model": f"wav2vec2-{size}", "runs": out, "peak_ratio": out[b]["maxrss_mb"] / out[a]["maxrss_mb"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="memory test with wav2vec2-base (slow)")
    ap.add_argument("--clip", type=float, default=30.0, help="seconds of audio for the throughput test")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--crepe", action="store_true", help="also the kind: torch throughput on CREPE")
    ap.add_argument("--only-crepe", action="store_true", help="only the kind: torch throughput on CREPE")
    ap.add_argument("--capacity", default="tiny", choices=("tiny", "full"), help="CREPE capacity")
    ap.add_argument("--demo-seeds", type=int, default=0, help="run the quick demo's deep plant over N seeds")
    ap.add_argument("--child-memory", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_memory:
        _child_memory(args.child_memory)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.crepe or args.only_crepe:
            cr = bench_crepe(tmp, args.clip, args.repeats, args.capacity)
            print(f"kind: torch, trained CREPE-{cr['capacity']} ({cr['clip_s']:.0f} s clip, {cr['frames']} frames, "
                  f"{cr['frames_per_s_bare']:.0f} frames/s bare)")
            for k, v in cr["median_s"].items():
                print(f"  median {k:6s} {v:7.2f} s")
            print(f"  ratio bare/torch_activations (frames + hooks + clock): {cr['ratio_core']:.2f}x")
            print(f"  ratio bare/features stage (+ stems read, store write):  {cr['ratio_stage']:.2f}x")
        if args.demo_seeds:
            rows = bench_demo_seeds(tmp, args.demo_seeds)
            print(f"median specificity {statistics.median(r['specificity'] for r in rows):.2f}; best layer within "
                  f"±1 of the planted one in {sum(abs(r['recovered'] - r['planted']) <= 1 for r in rows)}/{len(rows)} "
                  f"(exact {sum(r['recovered'] == r['planted'] for r in rows)}/{len(rows)}); every plant recovered in "
                  f"{sum(bool(r['all_recovered']) for r in rows)}/{len(rows)} seeds; null targets significant under the "
                  f"claim's family: median {statistics.median(r['null_fraction'] for r in rows):.3f}, "
                  f"max {max(r['null_fraction'] for r in rows):.3f} (of {rows[0]['null_n']} per seed)")
        if args.only_crepe or args.demo_seeds:
            return
        tput = bench_throughput(tmp, args.clip, args.repeats)
        print(f"throughput ({tput['clip_s']:.0f} s clip, wav2vec2-base random, {tput['threads']} torch threads)")
        for k, v in tput["median_s"].items():
            print(f"  median {k:6s} {v:7.2f} s")
        print(f"  ratio bare/ours (extract + pool + zarr write): {tput['throughput_ratio_core']:.2f}x")
        print(f"  ratio bare/stage (+ stems read + model load):   {tput['throughput_ratio_stage']:.2f}x")
        print(f"  real-time factor: bare forward {tput['rtf_bare']:.3f}, stage {tput['rtf_stage']:.3f}")
        mem = bench_memory(tmp, "base" if args.full else "tiny", (5, 60))
        print(f"peak memory, features stage, {mem['model']}:")
        for m, r in mem["runs"].items():
            print(f"  {m:3d} min stimulus: max RSS {r['maxrss_mb']:8.1f} MB in {r['seconds']:.1f} s")
        print(f"  ratio 60 min / 5 min: {mem['peak_ratio']:.2f}x")


if __name__ == "__main__":
    main()
