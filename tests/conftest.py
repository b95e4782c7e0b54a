"""Fixtures shared between test modules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without Debian's chromium, the browser tests are set aside; one line says how to run
    them (in the summary at the end)."""
    from html_browser import have_browser

    if have_browser():
        return
    marked = [i for i in items if i.get_closest_marker("browser")]
    if marked:
        config.hook.pytest_deselected(items=marked)
        items[:] = [i for i in items if not i.get_closest_marker("browser")]
        config.stash[_BROWSER_SKIPPED] = len(marked)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from html_browser import HOW

    skipped = config.stash.get(_BROWSER_SKIPPED, 0)
    if skipped:
        terminalreporter.write_line(f"{skipped} browser tests skipped: {HOW}")


_BROWSER_SKIPPED = pytest.StashKey[int]()
