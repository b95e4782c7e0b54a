"""Accept what dtlab prints, refuse what it cannot mean (issue 15): the Unicode minus reads as
'-', digits of other scripts and unbalanced parentheses are refused; DTLAB_DEBUG=0 is off;
--workers is capped at the machine's cores with a note."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dtlab.checkpoint.scan import max_workers
from dtlab.cli.app import app
from dtlab.errors import ParseError
from dtlab.values import parse_value

runner = CliRunner()


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("\u22125", "-5"),
        ("\u22121/3", "-1/3"),
        ("1e\u22123", "0.001"),
        ("2^(-3)", "0.125"),
        ("2**(3)", "8"),
        ("2^-24", "0.000000059604644775390625"),
    ],
)
def test_what_dtlab_prints_is_read_back(text: str, want: str) -> None:
    assert str(parse_value(text)) == want


@pytest.mark.parametrize("text", ["٣", "३.५", "1e٣", "0x١", "2^(3", "2^3)", "2^((3))", "٣/4"])
def test_what_cannot_be_meant_is_refused(text: str) -> None:
    with pytest.raises(ParseError):
        parse_value(text)


def test_the_printed_minus_round_trips_through_show() -> None:
    r = runner.invoke(app, ["show", "\u22122.5", "--as", "fp16", "--json"])
    assert r.exit_code == 0 and '"-2.5"' in r.stdout


@pytest.mark.parametrize(("value", "traceback"), [("0", False), ("", False), ("1", True)])
def test_dtlab_debug_zero_means_off(value: str, traceback: bool) -> None:
    env = {**os.environ, "DTLAB_DEBUG": value}
    done = subprocess.run(
        [sys.executable, "-c", "from dtlab.cli.app import main; main()", "show", "abc"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode != 0
    assert ("Traceback" in done.stderr) is traceback, done.stderr


def test_workers_are_capped_at_the_cores_with_a_note() -> None:
    r = runner.invoke(app, ["model", "scan", "--to", "fp16", "--workers", "1000", "--json"])
    assert r.exit_code == 0, r.stderr
    assert f"capped at {max_workers()}" in r.stderr
    assert f'"workers": {max_workers()}' in r.stdout


@pytest.mark.parametrize(
    ("redirect", "fragment"),
    [(">&-", "standard output is closed"), ("> /dev/full", "No space left")],
)
def test_an_unwritable_stdout_is_one_line_and_status_2(redirect: str, fragment: str) -> None:
    if redirect.endswith("/dev/full") and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    main = "from dtlab.cli.app import main; main()"
    cmd = f"'{sys.executable}' -c '{main}' show 1 --as fp8 {redirect}"
    done = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and fragment in done.stderr, done.stderr


def test_tour_chapters_take_a_list_as_every_list_option_does() -> None:
    def keys(*args: str) -> list[str]:
        r = runner.invoke(app, ["tour", *args, "--json"])
        assert r.exit_code == 0, r.stderr
        return [c["key"] for c in json.loads(r.stdout)["result"]]

    assert keys("-c", "integers,sizes") == keys("-c", "integers", "-c", "sizes")
    assert keys("-c", "integers,sizes") == ["integers", "sizes"]
    assert runner.invoke(app, ["tour", "-c", ","]).exit_code == 2


def test_suggestions_are_formats_themselves() -> None:
    r = runner.invoke(app, ["info", "e0m0"])
    assert r.exit_code == 2 and "e0m0fn" not in r.stderr, r.stderr
    r = runner.invoke(app, ["info", "e3m0"])  # too small for IEEE inf and NaN: e3m0fn works
    assert r.exit_code == 2 and "try e3m0fn" in r.stderr
    assert runner.invoke(app, ["info", "e3m0fn"]).exit_code == 0


@pytest.mark.parametrize(
    ("code", "previous", "following"), [("0b00", "-1", "2"), ("0b10", "-2", "1")]
)
def test_neighbours_cross_a_missing_zero(code: str, previous: str, following: str) -> None:
    """e1m0fn holds -2, -1, 1, 2 (no zero): below 1 lies -1, above -1 lies 1."""
    r = runner.invoke(app, ["decode", code, "--as", "e1m0fn", "--json"])
    (doc,) = json.loads(r.stdout)["result"]
    assert (doc["previous"], doc["next"]) == (previous, following), doc


def test_minus_o_means_output_and_shows_old_spelling_is_deprecated() -> None:
    new = runner.invoke(app, ["show", "1000", "--as", "fp8", "--overflow", "saturate", "--json"])
    old = runner.invoke(app, ["show", "1000", "--as", "fp8", "-o", "saturate", "--json"])
    assert new.exit_code == old.exit_code == 0
    assert json.loads(old.stdout) == json.loads(new.stdout)  # the old spelling still works
    assert "deprecated" in old.stderr and "deprecated" not in new.stderr
    assert " -o" not in runner.invoke(app, ["show", "--help"]).stdout  # taught no more


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs an unwritable HOME")
def test_matplotlib_notices_stay_off_stderr_under_an_unwritable_home(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MPLCONFIGDIR"} | {"HOME": "/proc"}
    main = "from dtlab.cli.app import main; main()"
    args = ["cast", "normal:100", "--as", "fp8", "--plot", str(tmp_path / "x.png")]
    done = subprocess.run(
        [sys.executable, "-c", main, *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert (tmp_path / "x.png").stat().st_size > 0
