"""The report page: built from any scan, cast or quantize result, small, self-contained, and
in a real browser sortable, filterable, printable, with no network request."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from dtlab.cli.app import app
from dtlab.html import report_file
from html_browser import browser, foreign, open_page
from html_cases import big_scan

__all__ = ["browser"]  # the fixture, imported for pytest

runner = CliRunner()
HOSTILE = 'evil</script><script>document.title="pwned"</script><img src=x onerror=alert(1)>'


def dtlab(*args: str, check: bool = True) -> Any:
    """Run the real command in this process; the result has returncode, stdout and stderr."""
    result = runner.invoke(app, list(args))
    run = SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)
    if check:
        assert run.returncode == 0, run.stderr
    return run


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The embedded model's scan, as JSON and as the page that --html writes."""
    folder = tmp_path_factory.mktemp("scan")
    run = dtlab("model", "scan", "--json", "--html", str(folder / "scan.html"))
    (folder / "scan.json").write_text(run.stdout, encoding="utf-8")
    return {"json": folder / "scan.json", "html": folder / "scan.html"}


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("big")
    doc = big_scan(5000)
    doc["result"]["tensors"][3]["name"] = HOSTILE  # type: ignore[index]
    (folder / "big.json").write_text(json.dumps(doc), encoding="utf-8")
    run = dtlab("report", str(folder / "big.json"), "-o", str(folder / "big.html"))
    assert run.stdout.strip() == f"wrote {folder / 'big.html'}"
    return folder / "big.html"


def _external_urls(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z0-9+.-]*://[^\s\"'<>)]*", text, flags=re.I)


def test_the_scan_report_is_small_and_names_no_external_url(scan: dict[str, Path]) -> None:
    page = scan["html"].read_text(encoding="utf-8")
    size = scan["html"].stat().st_size
    assert size < 1_000_000, size
    assert _external_urls(page) == []
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # the page written by --html is the page dtlab report writes from the JSON
    assert (
        report_file(scan["json"])[1].replace(
            f"<tr><th>result file</th><td>{scan['json']}</td></tr>", ""
        )
        == page
    )


def test_a_report_of_5000_tensors_builds_and_escapes_what_it_shows(big: Path) -> None:
    page = big.read_text(encoding="utf-8")
    assert HOSTILE not in page and "</script><script>document.title" not in page
    assert page.count("model.layers.") > 15_000 - 10  # every row is there, as data
    assert _external_urls(page) == []


@pytest.mark.parametrize(
    ("kind", "args"),
    [
        ("dtlab.cast/1", ["cast", "normal:1e4", "--as", "bf16,fp8,fp4"]),
        (
            "dtlab.quantize/1",
            ["quantize", "normal:1e4", "--shape", "10x1000", "--as", "int8,int4:g128,mxfp4"],
        ),
    ],
)
def test_cast_and_quantize_write_their_report(tmp_path: Path, kind: str, args: list[str]) -> None:
    out = tmp_path / "r.html"
    dtlab(*args, "--html", str(out))
    page = out.read_text(encoding="utf-8")
    assert f"<td>{kind}</td>" in page and "<svg" in page
    assert _external_urls(page) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe", "not UTF-8 text"),
        (b"{not json", "not JSON (Expecting property name"),
        (b"[1, 2]", "not a dtlab result"),
        (
            b'{"schema": "dtlab.tour/1", "result": []}',
            "no report for results of schema 'dtlab.tour/1'",
        ),
        (
            b'{"schema": "dtlab.scan/1", "result": {"tensors": []}}',
            "malformed dtlab.scan/1 result: no field 'summaries'",
        ),
        (b'{"schema": "dtlab.cast/1", "result": {"analysis": 3}}', "malformed dtlab.cast/1 result"),
        (b"[" * 100_000, "JSON nested too deeply"),
    ],
)
def test_a_bad_result_file_is_one_line_and_status_2(
    tmp_path: Path, content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    run = dtlab("report", str(bad), "-o", str(tmp_path / "r.html"), check=False)
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert not (tmp_path / "r.html").exists()


def test_report_refuses_a_missing_file_and_a_non_html_output(tmp_path: Path) -> None:
    run = dtlab("report", str(tmp_path / "none.json"), "-o", str(tmp_path / "r.html"), check=False)
    assert run.returncode == 2 and "no such file" in run.stderr
    (tmp_path / "a.json").write_text("{}")
    run = dtlab("report", str(tmp_path / "a.json"), "-o", str(tmp_path / "r.txt"), check=False)
    assert run.returncode == 2 and "reports are written as .html" in run.stderr
    run = dtlab("cast", "normal:100", "--html", str(tmp_path / "r.png"), check=False)
    assert run.returncode == 2 and "reports are written as .html" in run.stderr


# ---- in the browser --------------------------------------------------------------------------


def _column(driver: Any, key: str) -> list[str]:
    """The texts of one column's shown cells, read in one call."""
    script = """
        const heads = [...document.querySelectorAll('#rows thead th')].map((th) => th.dataset.key);
        const i = heads.indexOf(arguments[0]);
        const rows = [...document.querySelectorAll('#rows tbody tr')];
        return rows.map((tr) => tr.cells[i].textContent);
    """
    cells: list[str] = driver.execute_script(script, key)
    return cells


def _num(text: str) -> float:
    text = text.replace("≈", "").replace(",", "")
    return float("nan") if text == "—" else float(text)


def _count(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    text: str = driver.find_element(By.ID, "count").text
    return text


@pytest.mark.browser
def test_the_scan_report_sorts_filters_and_makes_no_request(
    browser: Any, scan: dict[str, Path]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    assert foreign(open_page(browser, scan["html"]), scan["html"]) == []
    data = json.loads(scan["json"].read_text())["result"]
    total = sum(max(1, len(t["verdicts"])) for t in data["tensors"])
    assert _count(browser) == f"{total} of {total} rows; showing 1–100"
    Select(browser.find_element(By.ID, "page-size")).select_by_value("0")  # all rows
    sqnr_head = browser.find_element(By.CSS_SELECTOR, '#rows th[data-key="sqnr_db"]')
    sqnr_head.click()
    values = [_num(v) for v in _column(browser, "sqnr_db") if v not in ("—", "inf")]
    assert values == sorted(values) and len(values) > 200
    assert sqnr_head.get_attribute("aria-sort") == "ascending"
    browser.find_element(By.CSS_SELECTOR, '#rows th[data-key="sqnr_db"]').click()
    values = [_num(v) for v in _column(browser, "sqnr_db") if v not in ("—", "inf")]
    assert values == sorted(values, reverse=True)
    browser.find_element(By.ID, "filter").send_keys("attention.self.key")
    names = _column(browser, "tensor")
    assert names and all("attention.self.key" in n for n in names)
    Select(browser.find_element(By.ID, "facet-status")).select_by_value("lossy")
    lossy = sum(s["lossy"] for s in data["summaries"])
    want = sum(
        1
        for t in data["tensors"]
        for v in t["verdicts"]
        if v["status"] == "lossy" and "attention.self.key" in t["name"]
    )
    assert 0 < want <= lossy
    assert set(_column(browser, "status")) == {"lossy"} and len(_column(browser, "tensor")) == want
    assert _count(browser) == f"{want} of {total} rows"


@pytest.mark.browser
def test_printing_shows_every_row_and_hides_the_controls(
    browser: Any, scan: dict[str, Path]
) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, scan["html"])
    assert len(browser.find_elements(By.CSS_SELECTOR, "#rows tbody tr")) == 100
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        browser.execute_script("window.dispatchEvent(new Event('beforeprint'))")
        rows = len(browser.find_elements(By.CSS_SELECTOR, "#rows tbody tr"))
        assert rows > 100 and _count(browser).startswith(f"{rows} of {rows} rows")
        assert not browser.find_element(By.ID, "filter").is_displayed()
        pdf = browser.print_page()  # base64 PDF of the printed report
        assert len(pdf) > 10_000
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        browser.execute_script("window.dispatchEvent(new Event('afterprint'))")


@pytest.mark.browser
def test_5000_tensors_stay_readable_and_hostile_names_stay_text(browser: Any, big: Path) -> None:
    from selenium.webdriver.common.by import By

    assert foreign(open_page(browser, big), big) == []
    assert browser.title == "dtlab model scan report"  # the hostile name ran no script
    assert _count(browser) == "15,000 of 15,000 rows; showing 1–100"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#rows tbody tr")) == 100
    browser.find_element(By.ID, "filter").send_keys("evil</script>")
    assert _column(browser, "tensor") == [HOSTILE] * 3
    browser.find_element(By.ID, "filter").clear()
    browser.find_element(By.ID, "filter").send_keys(" ")  # an input event with no words
    browser.find_element(By.CSS_SELECTOR, '#rows th[data-key="numel"]').click()
    browser.find_element(By.CSS_SELECTOR, '#rows th[data-key="numel"]').click()  # descending
    top = [_num(v) for v in _column(browser, "numel")]
    assert top == sorted(top, reverse=True) and top[0] == 4096 * 64
    browser.find_element(By.ID, "next").click()
    assert "showing 101–200" in _count(browser)


@pytest.mark.browser
def test_screenshot_of_the_report(browser: Any, scan: dict[str, Path], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from html_screens import save_screenshot

    open_page(browser, scan["html"])
    docs = os.environ.get("DTLAB_SCREENSHOTS")
    shot = save_screenshot(browser, tmp_path / "report.png", docs, height=1300)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    browser.find_element(By.ID, "filter").send_keys("layer.0.attention.self")
    browser.find_element(By.CSS_SELECTOR, '#rows th[data-key="sqnr_db"]').click()
    table = save_screenshot(browser, tmp_path / "report-table.png", docs, element="table-section")
    assert table.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
