"""Separation quality on real recordings held out from tuning, speed and memory.

Mixtures: recorded speech (Debian asterisk prompts of the *held-out* prompt
families, plus *held-out* espeak-ng voices) over recorded music (the
*held-out* music-on-hold tracks), see ``xaffect.stimuli.recordings``; none of
it was used to train or tune ``masknet``. At -6, 0 and +6 dB voice-to-music
(energy over the whole excerpt).

Per stem: SI-SDR (fast_bss_eval) and SDR (mir_eval, BSS-eval v3), medians
over the mixtures, for the mixture-as-estimate baseline, the oracle ideal
ratio mask (the ceiling of any masking method at this STFT), ``masknet``
(default), ``nnfilter`` (REPET-SIM) and, on request, Demucs / Spleeter.
Then speed (x real time) and peak memory of the default backend on
10 minutes of audio, each in a fresh subprocess.

    python benchmarks/bench_separation.py                    # 3 mixtures x 20 s per ratio
    python benchmarks/bench_separation.py --mixtures 5 --events 0.1   # + held-out bells/phones
    python benchmarks/bench_separation.py --demucs-model htdemucs     # + pretrained Demucs if cached
    python benchmarks/bench_separation.py --spleeter         # + Spleeter 2stems if installed
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

SR = 16000


def oracle_irm(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ideal ratio mask (power) at masknet's STFT, from the true stems."""
    import librosa

    from xaffect.stimuli.masknet import HOP, N_FFT

    V = librosa.stft(m["voice"], n_fft=N_FFT, hop_length=HOP)
    A = librosa.stft(m["soundtrack"], n_fft=N_FFT, hop_length=HOP)
    mask = np.abs(V) ** 2 / (np.abs(V) ** 2 + np.abs(A) ** 2 + 1e-12)
    v = librosa.istft(mask * (V + A), hop_length=HOP, n_fft=N_FFT, length=m["voice"].size)
    return {"voice": v, "soundtrack": m["mixture"] - v}


def scores(m: dict[str, np.ndarray], est: dict[str, np.ndarray]) -> dict[str, float]:
    """SDR (mir_eval) and SI-SDR (fast_bss_eval) of both stems, dB."""
    import fast_bss_eval
    import mir_eval

    ref = np.stack([m["voice"], m["soundtrack"]]).astype(np.float64)
    out = np.stack([est["voice"], est["soundtrack"]]).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdr, _, _, _ = mir_eval.separation.bss_eval_sources(ref, out, compute_permutation=False)
    si = fast_bss_eval.si_sdr(ref, out)
    return {"sdr_voice": sdr[0], "sdr_soundtrack": sdr[1], "si_sdr_voice": si[0], "si_sdr_soundtrack": si[1]}


def measure_cost(backend: str, seconds: float) -> dict[str, float]:
    """Separate ``seconds`` of held-out mixture in a fresh interpreter: x real time and peak RSS.

    The mixture is made here and handed over as a ``.npy`` file, so the
    child's peak resident memory is that of loading xaffect and separating.
    """
    import tempfile

    from xaffect.stimuli.recordings import make_recorded_mixture

    with tempfile.TemporaryDirectory(prefix="xaffect-bench-") as tmp:
        path = os.path.join(tmp, "mix.npy")
        np.save(path, make_recorded_mixture(seconds, SR, seed=99)["mixture"])
        code = f"""
import json, resource, time, numpy as np
from xaffect.stimuli import separate
x = np.load({path!r})
separate(x[:{SR}], {SR}, backend={backend!r})  # load weights, warm up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
separate(x, {SR}, backend={backend!r})
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": dt, "peak_rss_mib": peak / 1024, "rss_before_mib": before / 1024}}))
"""
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["x_real_time"] = seconds / res["seconds"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--mixtures", type=int, default=3)
    ap.add_argument("--snr", type=float, nargs="+", default=[-6.0, 0.0, 6.0],
                    help="voice-to-music ratios (dB)")
    ap.add_argument("--events", type=float, default=0.0, help="held-out sound events per second in the music")
    ap.add_argument("--split", default="heldout", choices=["heldout", "tuning"])
    ap.add_argument("--weights", default=None, help="masknet weight file (default: the shipped one)")
    ap.add_argument("--demucs-model", default=None, help="add Demucs with this pretrained model (if cached)")
    ap.add_argument("--spleeter", action="store_true", help="add Spleeter 2stems (needs its env and checkpoint)")
    ap.add_argument("--cost-seconds", type=float, default=600.0, help="audio for speed/memory (0: skip)")
    ap.add_argument("--cost-only", action="store_true", help="only speed and memory")
    args = ap.parse_args()

    from xaffect.stimuli import separate
    from xaffect.stimuli.recordings import make_recorded_mixture

    masknet_opts = {"weights": args.weights} if args.weights else {}
    methods = {"mixture (baseline)": lambda m: {"voice": m["mixture"], "soundtrack": m["mixture"]},
               "oracle IRM": oracle_irm,
               "masknet (default)": lambda m: separate(m["mixture"], SR, backend="masknet", **masknet_opts),
               "nnfilter (REPET-SIM)": lambda m: separate(m["mixture"], SR, backend="nnfilter")}
    if args.demucs_model:
        methods[f"demucs {args.demucs_model}"] = lambda m: separate(m["mixture"], SR, backend="demucs",
                                                                    model=args.demucs_model)
    if args.spleeter:
        methods["spleeter 2stems"] = lambda m: separate(m["mixture"], SR, backend="spleeter")
    print(f"{args.split} recordings: {args.mixtures} mixtures x {args.seconds:.0f} s per ratio, "
          f"{args.events:g} events/s; medians (dB)")
    print(f"{'v/m dB':>6s} {'method':22s} {'SDR v':>7s} {'SDR s':>7s} {'SI-SDR v':>9s} {'SI-SDR s':>9s} "
          f"{'gain v':>7s} {'gain s':>7s}")
    for snr in ([] if args.cost_only else args.snr):
        mixes = [make_recorded_mixture(args.seconds, SR, snr_db=snr, split=args.split, seed=1000 + i,
                                       events=args.events) for i in range(args.mixtures)]
        base = None
        for name, fn in methods.items():
            rows = [scores(m, fn(m)) for m in mixes]
            med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
            if base is None:
                base = rows
            gain = {k: float(np.median([r[k] - b[k] for r, b in zip(rows, base)]))
                    for k in ("si_sdr_voice", "si_sdr_soundtrack")}
            print(f"{snr:+6.0f} {name:22s} {med['sdr_voice']:7.2f} {med['sdr_soundtrack']:7.2f} "
                  f"{med['si_sdr_voice']:9.2f} {med['si_sdr_soundtrack']:9.2f} "
                  f"{gain['si_sdr_voice']:+7.2f} {gain['si_sdr_soundtrack']:+7.2f}", flush=True)
    if args.cost_seconds > 0:
        for backend in ("masknet", "nnfilter"):
            load = os.getloadavg()[0]
            c = measure_cost(backend, args.cost_seconds)
            print(f"{backend}: {args.cost_seconds:.0f} s of audio in {c['seconds']:.1f} s = "
                  f"{c['x_real_time']:.0f}x real time; peak RSS {c['peak_rss_mib']:.0f} MiB "
                  f"({c['rss_before_mib']:.0f} MiB after loading), torch threads "
                  f"{os.environ.get('OMP_NUM_THREADS', 'default')}, load average {load:.1f} before, "
                  f"{os.getloadavg()[0]:.1f} after", flush=True)


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t0:.0f} s")
