"""Shared fixtures: the embedded Gemma 3 270M, loaded once per test session."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GEMMA_SMOKE", "1")


@pytest.fixture(scope="session")
def embedded():
    """(model, tokenizer) of the embedded base 270M through plain transformers, fp32."""
    from gemma_helpers import models

    return models.load("embedded", backend="transformers")
