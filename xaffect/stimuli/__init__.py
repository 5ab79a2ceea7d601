"""Stimuli: decoding films and music, separating voice and soundtrack, the stems store.

* :func:`load_audio` / :func:`iter_audio` — any container FFmpeg reads (PyAV),
  mono mixdown, soxr resampling, streamed in bounded memory;
  :func:`make_stimulus_table` — name, path, duration, native rate, hash.
* :func:`separate` — ``{"voice", "soundtrack"}`` by ``nnfilter`` (REPET-SIM, no
  weights, default), ``demucs`` (in process) or ``spleeter`` (own environment,
  :func:`setup_spleeter`).
* :func:`make_stems` — the ``stems`` stage (store ``stems``) with per-second
  energy and voice/soundtrack energy ratio on the clock.
"""

from .decode import content_hash, iter_audio, load_audio, make_stimulus_table, probe_audio, resample
from .energy import energy_on_clock, energy_ratio_db, frame_power
from .nnfilter import nn_median_filter, separate_nnfilter
from .separate import BACKENDS, backend_info, separate
from .spleeter import setup_spleeter
from .stage import ELEMENTS, make_stems
from .synth import make_mixture, make_music, make_voice

__all__ = [
    "load_audio", "iter_audio", "probe_audio", "resample", "content_hash", "make_stimulus_table",
    "separate", "BACKENDS", "backend_info", "separate_nnfilter", "nn_median_filter", "setup_spleeter",
    "make_stems", "ELEMENTS", "energy_on_clock", "energy_ratio_db", "frame_power",
    "make_voice", "make_music", "make_mixture",
]
