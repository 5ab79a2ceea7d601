"""Speed and memory of separation: xaffect's blocked nnfilter vs librosa's
REPET-SIM recipe (the tool a user would otherwise use), and Demucs (random
weights, htdemucs architecture) for reference.

The fair baseline is librosa's recipe *with the same blocking* (what an expert
user writes for long audio: the same 20-s blocks with 2 s of context either
side, the same STFT, k, width and masks, librosa's ``nn_filter`` per block);
librosa's recipe over the whole spectrogram (quadratic in duration) is a
second row on a shorter excerpt. Each measurement runs in a fresh child
process (so peak RSS is its own), the sides interleaved (A B A B ...), all on
the same synthetic mixture; medians, load average printed.

    python benchmarks/bench_nnfilter.py            # 10 min blocked both sides, 1 min whole-spectrogram, 20-s demucs
    python benchmarks/bench_nnfilter.py --full     # whole-spectrogram librosa and demucs on 10 min too (slow)
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


def _librosa_repet_sim_blocked(y: np.ndarray, sr: int, block: float = 20.0, context: float = 2.0) -> np.ndarray:
    """librosa's recipe per block of ``block`` s with ``context`` s either side (xaffect nnfilter's defaults:
    the same blocks, STFT, k = 100, 2-s width, masks and 100-Hz cut-off), keeping each block's own samples."""
    blk, ctx = int(block * sr), int(context * sr)
    voice = np.empty_like(y)
    for start in range(0, y.size, blk):
        stop = min(start + blk, y.size)
        a, b = max(0, start - ctx), min(y.size, stop + ctx)
        voice[start:stop] = _librosa_repet_sim(y[a:b], sr)[start - a:stop - a]
    return voice


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

        separate(y[: SR * 3], SR, backend="nnfilter")  # compile the numba kernel outside the timing
    elif kind.startswith("librosa"):
        _librosa_repet_sim(y[: SR * 10], SR)            # librosa's imports and its own numba caches, likewise
    base = _hwm_mib()
    c = _cpu()
    if kind == "nnfilter":
        t = time.perf_counter()
        separate(y, SR, backend="nnfilter")
    elif kind == "librosa":
        t = time.perf_counter()
        _librosa_repet_sim(y, SR)
    elif kind == "librosa-blocked":
        t = time.perf_counter()
        _librosa_repet_sim_blocked(y, SR)
    else:
        t = time.perf_counter()
        _demucs_random(y, SR)
    dt = time.perf_counter() - t
    cpu = _cpu() - c
    peak = _hwm_mib()
    queue.put({"seconds": dt, "cpu_s": cpu, "peak_rss_mib": peak, "base_rss_mib": base,
               "audio_s": seconds})


def _one(kind: str, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(kind, _MIX[seconds], q))
    p.start()
    out = q.get()
    p.join()
    return out


def _summary(kind: str, seconds: float, runs: list[dict]) -> dict:
    med = statistics.median(r["seconds"] for r in runs)
    return {"kind": kind, "audio_s": seconds, "median_s": med, "rtf": seconds / med,
            "median_cpu_s": statistics.median(r["cpu_s"] for r in runs),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "peak_over_base_mib": max(r["peak_rss_mib"] - r["base_rss_mib"] for r in runs),
            "repeats": len(runs), "all_s": [round(r["seconds"], 2) for r in runs]}


def measure(kinds: list[str], seconds: float, repeats: int) -> list[dict]:
    """Each kind ``repeats`` times in fresh processes, interleaved (A B A B ...)."""
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    for _ in range(repeats):
        for k in kinds:
            runs[k].append(_one(k, seconds))
    return [_summary(k, seconds, runs[k]) for k in kinds]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="librosa and demucs on the full 10 minutes")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--demucs-seconds", type=float, default=20.0)
    ap.add_argument("--skip-demucs", action="store_true")
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

    nn, blocked = measure(["nnfilter", "librosa-blocked"], full, args.repeats)
    show(nn)
    show(blocked)
    print(f"same blocking ({full:.0f} s): nnfilter vs librosa nn_filter per block: wall "
          f"{blocked['median_s'] / nn['median_s']:.2f}x, CPU {blocked['median_cpu_s'] / nn['median_cpu_s']:.2f}x, "
          f"peak over start {blocked['peak_over_base_mib']:.0f} vs {nn['peak_over_base_mib']:.0f} MiB  "
          f"(load {os.getloadavg()})", flush=True)
    nn_s, lib = measure(["nnfilter", "librosa"], short, 1 if short > 120 else args.repeats)
    show(nn_s)
    show(lib)
    print(f"whole spectrogram ({short:.0f} s): nnfilter vs librosa's recipe unblocked: wall "
          f"{lib['median_s'] / nn_s['median_s']:.1f}x, CPU {lib['median_cpu_s'] / nn_s['median_cpu_s']:.1f}x", flush=True)
    if not args.skip_demucs:
        show(measure(["demucs"], dsec, 1)[0])
    print(f"load after: {os.getloadavg()}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
