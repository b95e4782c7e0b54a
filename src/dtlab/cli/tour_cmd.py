"""dtlab tour: the lesson, computed."""

from __future__ import annotations

import typer

from dtlab.cli.common import JSON_OPTION, emit, emit_json, fail, guarded, split_list
from dtlab.render.tour import chapter_view
from dtlab.tour import CHAPTERS, run_tour


@guarded
def tour_cmd(
    chapter: list[str] = typer.Option(
        None,
        "--chapter",
        "-c",
        help=f"Only these chapters, comma-separated or repeated: {', '.join(CHAPTERS)}.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """A guided tour of number formats, every figure computed on the spot.

    \b
    Examples:
      dtlab tour
      dtlab tour --chapter one-third
      dtlab tour -c integers,sizes
      dtlab tour --json
    """
    names = [name for given in chapter or [] for name in split_list(given)]
    if chapter and not names:
        raise fail("--chapter names nothing (example: -c integers,sizes)")
    chapters = run_tour(names or None)
    if as_json:
        emit_json("dtlab.tour/1", chapters)
        return
    for i, ch in enumerate(chapters, 1):
        emit(chapter_view(ch, i))
