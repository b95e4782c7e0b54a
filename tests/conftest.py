"""Fixtures shared between test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module")
def _one_thread() -> Iterator[None]:
    """One torch intra-op thread for a whole module. The pure-torch path is many element-wise
    passes over ~10**6 elements: on a small shared machine two intra-op threads contend and run
    several times slower than one.

    Not autouse: a module opts in with ``pytestmark = pytest.mark.usefixtures("_one_thread")``,
    so that the modules that do not ask keep torch's own thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
