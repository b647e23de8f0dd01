"""A small 1:1 protocol shared by the evaluation tests: subjects, templates, descriptors and pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from dmlfaces.eval.templates import unit_rows


@dataclass(frozen=True)
class SmallProtocol:
    """Template ids (T,), their subjects (T,), unit descriptors (T, D), all pairs (P, 2) and labels (P,)."""

    templates: np.ndarray
    subjects: np.ndarray
    descriptors: np.ndarray
    pairs: np.ndarray
    labels: np.ndarray


@pytest.fixture(scope="session")
def small_protocol() -> SmallProtocol:
    """60 subjects x 4 templates, every template pair once; genuine pairs score higher on average."""
    rng = np.random.default_rng(7)
    subjects = np.repeat(np.arange(100, 160), 4)
    centres = rng.normal(size=(60, 16))
    descriptors = unit_rows(centres[subjects - 100] + rng.normal(scale=1.2, size=(len(subjects), 16)))
    templates = np.arange(len(subjects)) * 3 + 11
    first, second = np.triu_indices(len(templates), k=1)
    pairs = np.stack([templates[first], templates[second]], axis=1)
    labels = (subjects[first] == subjects[second]).astype(np.int8)
    return SmallProtocol(templates, subjects, descriptors, pairs, labels)
