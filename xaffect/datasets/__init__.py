"""Synthetic anatomy and simulated studies with known ground truth."""

from .simulate import simulate_study
from .synthetic_subject import synthetic_subject

__all__ = ["synthetic_subject", "simulate_study"]
