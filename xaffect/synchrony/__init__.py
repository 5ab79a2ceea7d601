"""Sliding-window inter-subject correlation with valid nulls, and continuous ratings as targets.

Kernels on arrays live in :mod:`._kernels` (streaming running-sum ISC in
bounded memory) and :mod:`._clusters` (max-statistic and temporal-cluster
inference over windows x regions); surrogates come from
:mod:`xaffect.surrogates`. :mod:`._inputs` and :mod:`.bands` prepare the
data, :mod:`.isc` is the xarray layer, :mod:`.ratings` the rating readers and
clock, :mod:`.plots` the figures and :mod:`.stage` the ``synchrony`` and
``targets`` stages.
"""

from .isc import BANDS, METHODS, NULLS, ISCWarning, band_envelopes, fdr_bh, fisher_mean, isc_test, sliding_isc
from .plots import plot_isc, plot_ratings
from .ratings import LIRIS_SCALES, rater_agreement, ratings_to_clock, read_liris_ratings, read_rating_table

__all__ = [
    "sliding_isc", "isc_test", "band_envelopes", "fdr_bh", "fisher_mean", "BANDS", "METHODS", "NULLS", "ISCWarning",
    "read_liris_ratings", "read_rating_table", "ratings_to_clock", "rater_agreement", "LIRIS_SCALES",
    "plot_isc", "plot_ratings",
]
