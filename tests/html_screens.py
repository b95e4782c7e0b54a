"""Screenshots of the pages for the README, taken in the tests' browser, kept small."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any


def save_screenshot(driver: Any, path: Path, docs: str | None, height: int = 1400) -> Path:
    """The page (its first ``height`` pixels) as a palette PNG at ``path``; also copied into the
    folder ``docs`` when given (DTLAB_SCREENSHOTS=docs, the README's pictures)."""
    from PIL import Image

    full = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1200, min(int(full) + 120, height))
    png = driver.get_screenshot_as_png()
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    if docs:
        target = Path(docs) / path.name
        small.save(target, optimize=True)
    driver.set_window_size(1200, 900)
    return path
