"""Separation quality on mixtures whose voice and soundtrack are known.

Voice: the synthetic voice of ``xaffect.stimuli.synth`` and, when Debian's
``espeak-ng`` is on PATH, real synthetic speech; soundtrack: the synthesiser
loop (chords + percussion). SDR by mir_eval (BSS-eval v3), SI-SDR by
fast_bss_eval, for voice and soundtrack, against the mixture-as-estimate
baseline and an oracle ideal ratio mask (an upper bound for masking methods).

    python benchmarks/bench_separation.py                 # nnfilter, 3 mixtures x 2 voices
    python benchmarks/bench_separation.py --demucs         # + Demucs, random htdemucs weights
    python benchmarks/bench_separation.py --spleeter-params P.json   # + Spleeter with a checkpoint
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import warnings

import numpy as np

SR = 16000
SENTENCES = [
    "The storm had passed, and the valley lay quiet under a pale and silver sky.",
    "Nobody expected the letter to arrive on a Sunday, least of all my grandmother.",
    "We walked along the river until the lights of the city disappeared behind us.",
    "Is this really what you wanted, after everything we have been through together?",
    "The children laughed and ran towards the sea, shouting each other's names.",
]


def espeak_voice(seconds: float, seed: int) -> np.ndarray | None:
    """Concatenated espeak-ng sentences (with pauses), or None without espeak-ng."""
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if exe is None:
        return None
    from xaffect.stimuli import load_audio

    rng = np.random.default_rng(seed)
    parts, total = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        i = 0
        while total < seconds * SR:
            text = SENTENCES[rng.integers(len(SENTENCES))]
            wav = f"{tmp}/{i}.wav"
            subprocess.run([exe, "-s", str(int(rng.integers(140, 180))), "-p", str(int(rng.integers(30, 70))),
                            "-w", wav, text], check=True, capture_output=True)
            y, _ = load_audio(wav, sr=SR)
            parts += [y, np.zeros(int(rng.uniform(0.2, 0.8) * SR), np.float32)]
            total += y.size + parts[-1].size
            i += 1
    y = np.concatenate(parts)[: int(seconds * SR)]
    return y / np.max(np.abs(y))


def mixture(voice: np.ndarray, seed: int, snr_db: float) -> dict[str, np.ndarray]:
    from xaffect.stimuli.synth import make_music

    music = make_music(voice.size / SR, SR, seed=seed + 1)
    music = music * np.sqrt(np.mean(voice ** 2) / np.mean(music ** 2) / 10 ** (snr_db / 10))
    scale = 0.9 / np.max(np.abs(voice + music))
    v, m = (voice * scale).astype(np.float32), (music * scale).astype(np.float32)
    return {"mixture": v + m, "voice": v, "soundtrack": m}


def oracle_irm(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import librosa

    V = librosa.stft(m["voice"], n_fft=1024, hop_length=256)
    A = librosa.stft(m["soundtrack"], n_fft=1024, hop_length=256)
    mask = np.abs(V) ** 2 / (np.abs(V) ** 2 + np.abs(A) ** 2 + 1e-12)
    v = librosa.istft(mask * (V + A), hop_length=256, n_fft=1024, length=m["voice"].size)
    return {"voice": v, "soundtrack": m["mixture"] - v}


def scores(m: dict[str, np.ndarray], est: dict[str, np.ndarray]) -> dict[str, float]:
    import fast_bss_eval
    import mir_eval

    ref = np.stack([m["voice"], m["soundtrack"]]).astype(np.float64)
    out = np.stack([est["voice"], est["soundtrack"]]).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdr, _, _, _ = mir_eval.separation.bss_eval_sources(ref, out, compute_permutation=False)
    si = fast_bss_eval.si_sdr(ref, out)
    return {"sdr_voice": sdr[0], "sdr_soundtrack": sdr[1], "si_sdr_voice": si[0], "si_sdr_soundtrack": si[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--mixtures", type=int, default=3)
    ap.add_argument("--snr", type=float, default=0.0, help="voice/soundtrack energy ratio (dB)")
    ap.add_argument("--demucs", action="store_true", help="add Demucs (random htdemucs weights)")
    ap.add_argument("--spleeter-params", default=None, help="add Spleeter with this JSON configuration")
    args = ap.parse_args()

    from xaffect.stimuli import separate
    from xaffect.stimuli.synth import make_voice

    methods = {"mixture (baseline)": lambda m: {"voice": m["mixture"], "soundtrack": m["mixture"]},
               "oracle IRM": oracle_irm,
               "nnfilter": lambda m: separate(m["mixture"], SR, backend="nnfilter")}
    if args.demucs:
        import torch
        from demucs.htdemucs import HTDemucs
        from demucs.states import get_state

        torch.manual_seed(0)
        net = HTDemucs(sources=["drums", "bass", "other", "vocals"], segment=7.8)
        a, k = net._init_args_kwargs
        path = tempfile.mkdtemp() + "/htdemucs_random.th"
        torch.save({"klass": HTDemucs, "args": a, "kwargs": k, "state": get_state(net, None, False)}, path)
        methods["demucs (random weights)"] = lambda m: separate(m["mixture"], SR, backend="demucs",
                                                                model_path=path)
    if args.spleeter_params:
        methods["spleeter"] = lambda m: separate(m["mixture"], SR, backend="spleeter",
                                                 params=args.spleeter_params)
    voices = {"synthetic voice": lambda s: make_voice(args.seconds, SR, seed=s)}
    if espeak_voice(1.0, 0) is not None:
        voices["espeak-ng speech"] = lambda s: espeak_voice(args.seconds, s)
    print(f"{args.mixtures} mixtures x {args.seconds:.0f} s at {args.snr:+.0f} dB voice/soundtrack; medians (dB)")
    print(f"{'voice source':18s} {'method':24s} {'SDR v':>7s} {'SDR s':>7s} {'SI-SDR v':>9s} {'SI-SDR s':>9s}")
    for vname, make in voices.items():
        mixes = [mixture(make(seed), seed, args.snr) for seed in range(args.mixtures)]
        for mname, fn in methods.items():
            rows = [scores(m, fn(m)) for m in mixes]
            med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
            print(f"{vname:18s} {mname:24s} {med['sdr_voice']:7.2f} {med['sdr_soundtrack']:7.2f} "
                  f"{med['si_sdr_voice']:9.2f} {med['si_sdr_soundtrack']:9.2f}", flush=True)


if __name__ == "__main__":
    main()
