"""Speed and memory of separation: xaffect's blocked nnfilter vs librosa's
REPET-SIM recipe (the tool a user would otherwise use), and Demucs (random
weights, htdemucs architecture) for reference.

Each measurement runs in a fresh child process (so peak RSS is its own);
all on the same synthetic mixture.

    python benchmarks/bench_nnfilter.py            # 10-min nnfilter, 1-min librosa, 20-s demucs
    python benchmarks/bench_nnfilter.py --full     # librosa and demucs on 10 min too (slow)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import tempfile
import time

import numpy as np

SR = 16000
_MIX: dict[float, str] = {}


def _mixture(seconds: float) -> np.ndarray:
    from xaffect.stimuli.synth import make_mixture

    return make_mixture(seconds, SR, seed=0)["mixture"]


def _librosa_repet_sim(y: np.ndarray, sr: int) -> np.ndarray:
    """librosa's vocal-separation example over the whole spectrogram (same STFT/mask settings)."""
    import librosa

    D = librosa.stft(y, n_fft=1024, hop_length=512)
    S = np.abs(D)
    F = librosa.decompose.nn_filter(S, aggregate=np.median, metric="cosine", k=100,
                                    width=int(round(2.0 * sr / 512)), mode="distance")
    F = np.minimum(S, F)
    mask = librosa.util.softmask(S - F, 1.0 * F, power=2)
    mask[:4] = 0
    return librosa.istft(mask * D, hop_length=512, n_fft=1024, length=y.size)


def _demucs_random(y: np.ndarray, sr: int) -> np.ndarray:
    import torch
    from demucs.apply import apply_model
    from demucs.htdemucs import HTDemucs

    from xaffect.stimuli.decode import resample

    torch.manual_seed(0)
    net = HTDemucs(sources=["drums", "bass", "other", "vocals"], segment=7.8).eval()  # htdemucs shape
    x = resample(y, sr, 44100)
    mix = torch.from_numpy(np.stack([x, x]))[None]
    with torch.inference_mode():
        est = apply_model(net, mix, shifts=1, split=True, overlap=0.25)
    return est[0, 3].mean(0).numpy()


def _hwm_mib() -> float:
    """Peak resident memory of this process (VmHWM; reset by exec, unlike ru_maxrss)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _child(kind: str, path: str, queue) -> None:
    y = np.load(path)
    seconds = y.size / SR
    if kind == "nnfilter":
        from xaffect.stimuli import separate

        separate(y[: SR * 3], SR)  # compile the numba kernel outside the timing
    base = _hwm_mib()
    c = _cpu()
    if kind == "nnfilter":
        t = time.perf_counter()
        separate(y, SR, backend="nnfilter")
    elif kind == "librosa":
        t = time.perf_counter()
        _librosa_repet_sim(y, SR)
    else:
        t = time.perf_counter()
        _demucs_random(y, SR)
    dt = time.perf_counter() - t
    cpu = _cpu() - c
    peak = _hwm_mib()
    queue.put({"seconds": dt, "cpu_s": cpu, "peak_rss_mib": peak, "base_rss_mib": base,
               "audio_s": seconds})


def measure(kind: str, seconds: float, repeats: int) -> dict:
    ctx = mp.get_context("spawn")
    runs = []
    path = _MIX[seconds]
    for _ in range(repeats):
        q = ctx.Queue()
        p = ctx.Process(target=_child, args=(kind, path, q))
        p.start()
        runs.append(q.get())
        p.join()
    med = statistics.median(r["seconds"] for r in runs)
    cpu = statistics.median(r["cpu_s"] for r in runs)
    return {"kind": kind, "audio_s": seconds, "median_s": med, "rtf": seconds / med,
            "median_cpu_s": cpu,
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "peak_over_base_mib": max(r["peak_rss_mib"] - r["base_rss_mib"] for r in runs),
            "repeats": repeats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="librosa and demucs on the full 10 minutes")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--demucs-seconds", type=float, default=20.0)
    args = ap.parse_args()
    full = args.minutes * 60
    short = full if args.full else 60.0
    print(f"cpus: {os.cpu_count()}  load: {os.getloadavg()}")
    tmp = tempfile.mkdtemp()
    dsec = full if args.full else args.demucs_seconds
    for sec in {full, short, dsec}:
        _MIX[sec] = f"{tmp}/mix{int(sec)}.npy"
        np.save(_MIX[sec], _mixture(sec))
    res = []

    def show(r: dict) -> None:
        res.append(r)
        print(f"{r['kind']:9s} {r['audio_s']:6.0f} s audio: median {r['median_s']:7.2f} s wall "
              f"(RTF {r['rtf']:6.1f}x)  CPU {r['median_cpu_s']:7.2f} s (audio/CPU {r['audio_s'] / r['median_cpu_s']:6.1f}x)"
              f"  peak RSS {r['peak_rss_mib']:5.0f} MiB (+{r['peak_over_base_mib']:.0f} over start)", flush=True)

    show(measure("nnfilter", full, args.repeats))
    if short != full:
        show(measure("nnfilter", short, args.repeats))
    show(measure("librosa", short, 1 if short > 120 else args.repeats))
    nn, lib = res[-2], res[-1]
    print(f"speed-up nnfilter / librosa nn_filter on {short:.0f} s: wall {lib['median_s'] / nn['median_s']:.1f}x, "
          f"CPU {lib['median_cpu_s'] / nn['median_cpu_s']:.1f}x", flush=True)
    show(measure("demucs", dsec, 1))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
