"""Synthetic anatomy and simulated studies with known ground truth.

Imported lazily (PEP 562), so that ``xaffect demo --help`` reads
:mod:`xaffect.datasets.demo` without importing the simulation's stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .simulate import simulate_study
    from .simulate_fmri import simulate_fmri_study
    from ..neural.synthetic_subject import synthetic_subject

#: name -> module defining it; the synthetic subject lives with the source localisation that reads it
_LAZY = {"simulate_study": "xaffect.datasets.simulate", "simulate_fmri_study": "xaffect.datasets.simulate_fmri",
         "synthetic_subject": "xaffect.neural.synthetic_subject"}

__all__ = ["synthetic_subject", "simulate_study", "simulate_fmri_study"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
