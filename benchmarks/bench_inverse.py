"""Fused region filter vs MNE's apply_inverse_raw + extract_label_time_course.

Both sides run in this process on the same recording (64-channel EEG
simulated through the synthetic subject's forward model), the same inverse
operator and the same 68 Desikan–Killiany labels (mode ``mean_flip``):

* **MNE**: ``apply_inverse_raw(raw, inv, lambda2, method, pick_ori="normal")``
  then ``extract_label_time_course(stc, labels, src, mode="mean_flip")``;
* **MNE, generator**: the memory-saving way MNE's documentation shows for
  long recordings -- ``apply_inverse_raw`` on 60-s chunks (``start``/``stop``)
  fed as a generator of source estimates to ``extract_label_time_course``,
  so no whole-recording source estimate is ever held; the fair baseline;
* **xaffect**: ``region_filter`` (the same two MNE calls on an identity
  "recording", giving one (68 × 64) matrix) then ``apply_region_filter``
  over the recording in 60-s dask blocks.

Two settings: *step* shares one prepared inverse (the work being replaced:
applying the inverse and extracting labels); *end-to-end* lets each side
prepare the inverse itself (eLORETA's weight fitting included on both).
Reports medians over repeats, the ratio, peak traced memory (tracemalloc,
which sees numpy's buffers) and the largest relative difference.

    python benchmarks/bench_inverse.py            # 2-minute recording
    python benchmarks/bench_inverse.py --full     # the issue's 10-minute, 64-channel recording
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
import tracemalloc
import warnings

import numpy as np
import xarray as xr

warnings.filterwarnings("ignore")


def _measure(fn, repeats):
    """Median wall time over ``repeats`` untraced runs, then one traced run for peak memory."""
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        del out
    gc.collect()
    tracemalloc.start()
    out = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), peak, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="10-minute recording (the issue's size)")
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--sfreq", type=float, default=250.0)
    ap.add_argument("--spacing", default="oct5", help="source spacing (oct5: 2052 sources, oct6: 8196)")
    ap.add_argument("--methods", default="eLORETA,dSPM", help="comma-separated inverse methods")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    minutes = args.minutes or (10.0 if args.full else 2.0)

    import mne
    from mne.minimum_norm import apply_inverse_raw, prepare_inverse_operator

    from xaffect.datasets import synthetic_subject
    from xaffect.neural import (apply_region_filter, forward_model, make_inverse, region_filter, region_labels,
                                set_standard_montage, simulate_raw)
    from xaffect.store.compute import compute

    sd = tempfile.mkdtemp(prefix="xaffect-bench-")
    synthetic_subject(sd)
    mont = mne.channels.make_standard_montage("standard_1005")
    names = ["Fp1", "Fpz", "Fp2", "AF7", "AF3", "AFz", "AF4", "AF8", "F7", "F5", "F3", "F1", "Fz", "F2", "F4",
             "F6", "F8", "FT7", "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1",
             "Cz", "C2", "C4", "C6", "T8", "TP7", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "TP8", "P7",
             "P5", "P3", "P1", "Pz", "P2", "P4", "P6", "P8", "PO7", "PO3", "POz", "PO4", "PO8", "O1", "Oz", "O2",
             "Iz", "TP9", "TP10"]
    assert len(names) == 64 and all(n in mont.ch_names for n in names)
    info0 = mne.io.RawArray(np.zeros((64, 1)), mne.create_info(names, args.sfreq, "eeg"), verbose="error")
    set_standard_montage(info0)
    fwd = forward_model(info0.info, subjects_dir=sd, subject="xaffect-synth", spacing=args.spacing)
    labels = region_labels(subjects_dir=sd, subject="xaffect-synth")
    n = int(minutes * 60 * args.sfreq)
    rng = np.random.default_rng(0)
    sig = xr.DataArray(rng.standard_normal((n, 68)).astype(np.float64) * 1e-9, dims=("time", "region"),
                       coords={"region": [lab.name for lab in labels]})
    raw = simulate_raw(sig, info0.info, fwd, labels, noise=0.3, seed=1)
    del sig
    raw.set_eeg_reference("average", projection=True, verbose="error")
    inv = make_inverse(raw.info, fwd)
    lambda2 = 1.0 / 9.0
    n_src = sum(len(s["vertno"]) for s in fwd["src"])
    print(f"recording: 64 channels x {n} samples ({minutes:g} min at {args.sfreq:g} Hz, "
          f"{raw.get_data().nbytes / 2**20:.0f} MiB); {n_src} sources; 68 regions; mean_flip; "
          f"median of {args.repeats}")

    def mne_side(inverse, prepared, method):
        stc = apply_inverse_raw(raw, inverse, lambda2, method=method, pick_ori="normal", prepared=prepared,
                                verbose="error")
        return mne.extract_label_time_course(stc, labels, inverse["src"], mode="mean_flip", verbose="error").T

    def mne_generator_side(inverse, prepared, method, chunk=60.0):
        if not prepared:    # prepared once for all chunks, inside the timing, as an expert would
            inverse, prepared = prepare_inverse_operator(inverse, 1, lambda2, method, verbose="error"), True
        step = int(chunk * raw.info["sfreq"])
        stcs = (apply_inverse_raw(raw, inverse, lambda2, method=method, pick_ori="normal", prepared=prepared,
                                  start=a, stop=min(a + step, raw.n_times), verbose="error")
                for a in range(0, raw.n_times, step))
        parts = mne.extract_label_time_course(stcs, labels, inverse["src"], mode="mean_flip",
                                              return_generator=True, verbose="error")
        return np.concatenate(list(parts), axis=1).T

    def fused_side(inverse, prepared, method):
        w, ch = region_filter(inverse, labels, method=method, lambda2=lambda2, prepared=prepared)
        (out,) = compute(apply_region_filter(w, raw, ch, block=60.0), progress=False)
        return out

    rows = []
    for method in args.methods.split(","):
        prep = prepare_inverse_operator(inv, 1, lambda2, method, verbose="error")
        for setting, inverse, prepared in (("step", prep, True), ("end-to-end", inv, False)):
            t_m, p_m, ref = _measure(lambda: mne_side(inverse, prepared, method), args.repeats)
            t_g, p_g, gen = _measure(lambda: mne_generator_side(inverse, prepared, method), args.repeats)
            t_f, p_f, out = _measure(lambda: fused_side(inverse, prepared, method), args.repeats)
            rel = float(np.abs(out - ref).max() / np.abs(ref).max())
            rel_g = float(np.abs(gen - ref).max() / np.abs(ref).max())
            del ref, out, gen
            rows.append((f"{method} {setting}", "MNE whole", t_m, t_f, p_m, p_f, rel))
            rows.append((f"{method} {setting}", "MNE generator", t_g, t_f, p_g, p_f, rel_g))
    print("step: one prepared inverse shared by both sides; end-to-end: each side prepares it itself")
    print("generator: 60-s chunks; end-to-end, it prepares the inverse once inside the timing, shared by the chunks")
    print(f"{'setting':20s} {'baseline':14s} {'MNE s':>8s} {'fused s':>8s} {'speed-up':>9s} {'MNE MiB':>9s} "
          f"{'fused MiB':>9s} {'mem ratio':>9s} {'max rel diff':>12s}")
    for setting, base, t_m, t_f, p_m, p_f, rel in rows:
        print(f"{setting:20s} {base:14s} {t_m:8.3f} {t_f:8.3f} {t_m / t_f:8.1f}x {p_m / 2**20:9.1f} "
              f"{p_f / 2**20:9.1f} {p_m / p_f:8.1f}x {rel:12.2e}")
    import os
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
