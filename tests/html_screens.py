"""Screenshots of the pages for the README, taken in the tests' browser, kept small."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any


def save_screenshot(
    driver: Any, path: Path, docs: str | None, height: int = 1400, element: str = ""
) -> Path:
    """The page (its first ``height`` pixels, or the element of that id) as a palette PNG at
    ``path``; also written into the folder ``docs`` when given (DTLAB_SCREENSHOTS=docs: the
    README's pictures)."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    full = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1200, min(int(full) + 120, height if not element else 3000))
    if element:
        png = driver.find_element(By.ID, element).screenshot_as_png
    else:
        png = driver.get_screenshot_as_png()
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    if docs:
        target = Path(docs) / path.name
        small.save(target, optimize=True)
    driver.set_window_size(1200, 900)
    return path
