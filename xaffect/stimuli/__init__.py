"""Stimuli: decoding films and music, separating voice and soundtrack, the stems store.

* :func:`load_audio` / :func:`iter_audio` — any container FFmpeg reads (PyAV),
  mono mixdown, soxr resampling, streamed in bounded memory;
  :func:`make_stimulus_table` — name, path, duration, native rate, hash.
* :func:`separate` — ``{"voice", "soundtrack"}`` by ``masknet`` (default; a
  small mask network xaffect trains on freely licensed recordings, weights
  shipped), ``nnfilter`` (REPET-SIM, no weights), ``demucs`` (in process),
  ``spleeter`` (own environment, :func:`setup_spleeter`) or ``auto`` (the
  best available, :func:`resolve_backend`).
* :func:`make_recorded_mixture` — real speech over real music (Debian's
  asterisk prompts and music-on-hold, espeak-ng voices), split into a tuning
  and a held-out set.
* :func:`make_stems` — the ``stems`` stage (store ``stems``) with per-second
  energy and voice/soundtrack energy ratio on the clock.
"""

from .decode import content_hash, iter_audio, load_audio, make_stimulus_table, probe_audio, resample
from .energy import energy_on_clock, energy_ratio_db, frame_power
from .masknet import load_masknet, separate_masknet
from .nnfilter import nn_median_filter, separate_nnfilter
from .recordings import make_recorded_mixture
from .separate import BACKENDS, DEFAULT_BACKEND, backend_info, resolve_backend, separate
from .spleeter import setup_spleeter
from .stage import ELEMENTS, make_stems
from .synth import make_mixture, make_music, make_voice

__all__ = [
    "load_audio", "iter_audio", "probe_audio", "resample", "content_hash", "make_stimulus_table",
    "separate", "BACKENDS", "DEFAULT_BACKEND", "backend_info", "resolve_backend", "separate_masknet",
    "load_masknet", "make_recorded_mixture", "separate_nnfilter", "nn_median_filter", "setup_spleeter",
    "make_stems", "ELEMENTS", "energy_on_clock", "energy_ratio_db", "frame_power",
    "make_voice", "make_music", "make_mixture",
]
