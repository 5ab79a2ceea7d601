"""Shared pytest fixtures."""

import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MNE_LOGGING_LEVEL", "ERROR")


@pytest.fixture
def workspace(tmp_path):
    """A fresh local workspace."""
    from xaffect import Workspace

    return Workspace.init(tmp_path / "ws")
