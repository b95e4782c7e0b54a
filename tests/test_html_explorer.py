"""The explorer in a real browser: its JavaScript answers exactly what dtlab's Python answers
(every field of `dtlab show --json` / `dtlab decode --json`), its bits and cells click, and it
makes no network request."""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dtlab.formats import get_format
from dtlab.html import explorer_page
from dtlab.render.jsonable import to_data
from dtlab.scalar import explain, explain_code
from html_browser import browser, foreign, open_page, requests_made
from html_cases import (
    MODES,
    POLICIES,
    SHOW_FORMATS,
    all_codes,
    expected_decode,
    expected_show,
    random_values,
    show_cases,
)

__all__ = ["browser"]  # the fixture, imported for pytest


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("explorer") / "explorer.html"
    path.write_text(explorer_page(), encoding="utf-8")
    return path


@pytest.fixture()
def explorer(browser: Any, page: Path) -> Iterator[Any]:
    made = open_page(browser, page)
    assert foreign(made, page) == []
    yield browser


def _run(driver: Any, calls: list[list[Any]]) -> list[Any]:
    """Run dtlab.explain / dtlab.decode in the page for each call; errors come back as such."""
    script = """
        const calls = JSON.parse(arguments[0]);
        const out = calls.map(([fn, a, b, c]) => {
          try { return fn === "explain" ? dtlab.explain(a, b, c) : dtlab.decode(a, b); }
          catch (e) { return {error: String(e.message)}; }
        });
        return dtlab.toJSON(out);
    """
    got: list[Any] = json.loads(driver.execute_script(script, json.dumps(calls)))
    return got


@pytest.mark.browser
def test_every_code_of_every_small_format_decodes_as_dtlab_decode(explorer: Any) -> None:
    codes = all_codes()
    assert len(codes) > 3000  # 11 floats and int1..8/uint1..8 of <= 8 bits
    got = _run(explorer, [["decode", bits, name] for bits, name in codes])
    for (bits, name), record in zip(codes, got, strict=False):
        assert record == expected_decode(bits, name), (bits, name)


@pytest.mark.browser
def test_2000_values_in_eight_formats_under_every_mode_match_dtlab_show(explorer: Any) -> None:
    cases = show_cases(2000)
    got = _run(
        explorer, [["explain", v, s, {"rounding": m, "overflow": p}] for v, s, m, p in cases]
    )
    seen = set()
    for case, record in zip(cases, got, strict=False):
        assert record == expected_show(*case), case
        seen.add((case[1], case[2], case[3]))
    assert len(seen) == 8 * 5 * 2  # each format met every (rounding, overflow) pair


@pytest.mark.browser
def test_the_pages_records_are_the_cli_json_itself(explorer: Any) -> None:
    """The CLI's own output (not only the library's records): dtlab show --json and dtlab
    decode --json, run as commands, for values in all eight formats under every pair."""
    from typer.testing import CliRunner

    from dtlab.cli.app import app

    runner = CliRunner()
    specs = ",".join(SHOW_FORMATS)
    pairs = [(m, p) for m in MODES for p in POLICIES]
    for i, value in enumerate(random_values(40, seed=3)):
        mode, policy = pairs[i % len(pairs)]
        args = ["show", value, "--as", specs, "-r", mode, "--overflow", policy, "--json"]
        out = runner.invoke(app, args)
        assert out.exit_code == 0, out.stderr
        want = json.loads(out.stdout)["result"]
        calls = [
            ["explain", value, s, {"rounding": mode, "overflow": policy}] for s in SHOW_FORMATS
        ]
        assert _run(explorer, calls) == want, value
    for bits in ("0x00", "0x7e", "0x80", "0xff"):
        out = runner.invoke(app, ["decode", bits, "--as", "e4m3fn,e5m2,e8m0,uint8,int8", "--json"])
        want = json.loads(out.stdout)["result"]
        calls = [["decode", bits, s] for s in ("e4m3fn", "e5m2", "e8m0", "uint8", "int8")]
        assert _run(explorer, calls) == want, bits


@pytest.mark.browser
def test_wide_formats_and_big_codes_match_too(explorer: Any) -> None:
    cases = [("1/3", f, "nearest-even", None) for f in ("fp64", "fp32", "tf32", "e8m0", "int64")]
    cases += [("-2^-1074", "fp64", "up", None), ("1e308", "fp64", "nearest-away", "saturate")]
    cases += [("-1", "uint64", "nearest-even", "wrap"), ("2^70", "int64", "down", "wrap")]
    got = _run(
        explorer, [["explain", v, s, {"rounding": m, "overflow": p}] for v, s, m, p in cases]
    )
    for (v, s, m, p), record in zip(cases, got, strict=False):
        assert record == to_data(explain(v, get_format(s), rounding=m, overflow=p)), (v, s)
    codes = [("0xfff8000000000001", "fp64"), ("0x8000000000000000", "int64"), ("0x7f", "e8m0")]
    got = _run(explorer, [["decode", b, s] for b, s in codes])
    for (b, s), record in zip(codes, got, strict=False):
        assert record == to_data(explain_code(int(b, 16), get_format(s)))


@pytest.mark.slow
@pytest.mark.browser
def test_every_value_under_every_mode_and_policy_in_every_format(explorer: Any) -> None:
    """The full product (make test-all): 2,000 values x 8 formats x 5 modes x 2 policies."""
    values = random_values(2000)
    cases = [(v, s, m, p) for v in values for s in SHOW_FORMATS for m in MODES for p in POLICIES]
    for start in range(0, len(cases), 20_000):
        part = cases[start : start + 20_000]
        got = _run(
            explorer, [["explain", v, s, {"rounding": m, "overflow": p}] for v, s, m, p in part]
        )
        for case, record in zip(part, got, strict=True):
            assert record == expected_show(*case), case


@pytest.mark.browser
def test_errors_are_dtlabs_messages(explorer: Any) -> None:
    got = _run(
        explorer,
        [
            ["explain", "1/0", "fp16", {}],
            ["explain", "1", "e9m9x", {}],
            ["decode", "0x1ff", "fp8", None],
            ["explain", "1", "fp16", {"overflow": "wrap"}],
        ],
    )
    assert got[0] == {"error": "'1/0': division by zero"}
    assert got[1]["error"].startswith("unknown format 'e9m9x'")
    assert got[2] == {"error": "'0x1ff' is too wide for the 8 bits of float8_e4m3fn"}
    assert got[3] == {"error": "wrap-around is for integers; float16 can saturate or use inf-nan"}


def _field(driver: Any, name: str) -> str:
    from selenium.webdriver.common.by import By

    text: str = driver.find_element(By.CSS_SELECTOR, f'#facts dd[data-field="{name}"]').text
    return text


@pytest.mark.browser
def test_clicking_a_bit_changes_the_value_shown(explorer: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(explorer.find_element(By.ID, "format")).select_by_value("float8_e4m3fn")
    value = explorer.find_element(By.ID, "value")
    value.clear()
    value.send_keys("448")
    assert _field(explorer, "stored") == "448"
    fmt = get_format("fp8")
    explorer.find_element(By.CSS_SELECTOR, '#bits button[data-bit="6"]').click()  # top exponent bit
    want = to_data(explain_code(0x7E ^ 0x40, fmt))
    assert _field(explorer, "stored") == want["value"] == "1.75"
    assert _field(explorer, "formula") == want["formula"]
    assert value.get_attribute("value") == "1.75"
    explorer.find_element(By.CSS_SELECTOR, '#bits button[data-bit="0"]').click()
    assert _field(explorer, "stored") == to_data(explain_code(0x3E ^ 1, fmt))["value"]


@pytest.mark.browser
def test_the_value_table_has_every_code_and_its_cells_click(explorer: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(explorer.find_element(By.ID, "format")).select_by_value("float8_e5m2")
    cells = explorer.find_elements(By.CSS_SELECTOR, "#value-grid td")
    assert (
        len(cells) == 256
        and len(explorer.find_elements(By.CSS_SELECTOR, "#value-grid tbody tr")) == 16
    )
    explorer.find_element(By.CSS_SELECTOR, '#value-grid td[data-code="0x7b"]').click()
    assert _field(explorer, "stored") == "57344"
    assert _field(explorer, "category") == "normal"
    assert "current" in explorer.find_element(
        By.CSS_SELECTOR, 'td[data-code="0x7b"]'
    ).get_attribute("class")


@pytest.mark.browser
def test_a_typed_spec_rounding_and_overflow_drive_the_page(explorer: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    explorer.find_element(By.ID, "spec").send_keys("e4m3:bias=5")
    value = explorer.find_element(By.ID, "value")
    value.clear()
    value.send_keys("5000")
    Select(explorer.find_element(By.ID, "overflow")).select_by_value("saturate")
    Select(explorer.find_element(By.ID, "rounding")).select_by_value("toward-zero")
    fmt = get_format("e4m3:bias=5")
    want = to_data(explain("5000", fmt, rounding="toward-zero", overflow="saturate"))
    assert _field(explorer, "format") == "float8_e4m3b5fn"
    assert _field(explorer, "stored") == want["stored"]["value"] == "1792"
    assert _field(explorer, "outcome") == want["outcome"] == "saturated"
    assert len(explorer.find_elements(By.CSS_SELECTOR, "#value-grid td")) == 256
    explorer.find_element(By.ID, "spec").send_keys("x")  # e4m3:bias=5x: not a format
    error = explorer.find_element(By.ID, "error")
    assert error.is_displayed() and "bias must be an integer" in error.text


@pytest.mark.browser
def test_side_by_side_shows_the_lessons_one_third(explorer: Any) -> None:
    from selenium.webdriver.common.by import By

    rows = explorer.find_elements(By.CSS_SELECTOR, "#compare-body tr")
    names = [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows]
    assert names[:4] == ["float64", "float32", "float16", "bfloat16"]
    for r, name in zip(rows, names, strict=False):
        stored = r.find_elements(By.TAG_NAME, "td")[1].text
        assert stored == to_data(explain("1/3", get_format(name)))["stored"]["value"]


@pytest.mark.browser
def test_the_request_recorder_sees_a_request_when_one_is_made(browser: Any, tmp_path: Path) -> None:
    """A control: the same recording catches an image fetched from a server on 127.0.0.1, so an
    empty list above means no request, not a blind recorder."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/probe.png"
        probe = tmp_path / "probe.html"
        probe.write_text(f'<!doctype html><img src="{url}">', encoding="utf-8")
        made = open_page(browser, probe)
        made += requests_made(browser)
        assert url in foreign(made, probe)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
def test_screenshot_of_the_explorer(explorer: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from html_screens import save_screenshot

    Select(explorer.find_element(By.ID, "format")).select_by_value("float8_e4m3fn")
    docs = os.environ.get("DTLAB_SCREENSHOTS")
    shot = save_screenshot(explorer, tmp_path / "explorer.png", docs, height=1300)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grid = save_screenshot(explorer, tmp_path / "explorer-grid.png", docs, element="grid")
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
