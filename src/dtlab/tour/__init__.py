"""The guided tour: the seed lesson walked through with computed output.

A chapter is a function returning a Chapter; adding one is adding a function to CHAPTERS.
"""

from __future__ import annotations

from dtlab.errors import OptionError
from dtlab.tour.checkpoint import CHECKPOINT_CHAPTERS
from dtlab.tour.downcast import ANALYSIS_CHAPTERS
from dtlab.tour.lesson import LESSON_CHAPTERS
from dtlab.tour.loading import LOADING_CHAPTERS
from dtlab.tour.model import Block, Chapter, ChapterFn, Paragraph, TableBlock

CHAPTERS: dict[str, ChapterFn] = {
    **LESSON_CHAPTERS,
    **ANALYSIS_CHAPTERS,
    **CHECKPOINT_CHAPTERS,
    **LOADING_CHAPTERS,
}


def run_tour(only: list[str] | None = None) -> list[Chapter]:
    """Compute the chapters (all, or the named ones, in tour order)."""
    keys = list(CHAPTERS)
    if only:
        unknown = [k for k in only if k not in CHAPTERS]
        if unknown:
            raise OptionError(f"unknown chapter {unknown[0]!r}; chapters: {', '.join(keys)}")
        keys = [k for k in keys if k in only]
    return [CHAPTERS[k]() for k in keys]


__all__ = ["CHAPTERS", "Block", "Chapter", "Paragraph", "TableBlock", "run_tour"]
