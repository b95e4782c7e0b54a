"""The README's command examples, re-run: ``--write`` pastes each command's real output under
it, ``--check`` (the default) says which examples no longer match what the code prints.

An example is a ```` ```text ```` block whose first line is ``$ dtlab ...``; the command runs
in a shell (pipes work) in a scratch folder, at 100 columns, with this checkout's ``dtlab``
first on PATH. Figures that change from run to run (seconds, throughput) are masked when
comparing, and whitespace is compared loosely, since a shorter timing reflows a line.

    python tools/readme_examples.py           # exit 1 and a diff when an example is stale
    python tools/readme_examples.py --write   # regenerate them (make readme)
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"^```text\n(\$ (dtlab [^\n]*))\n(.*?)^```$", re.M | re.S)
COLUMNS = 100
# what differs between two runs of the same command: wall-clock time and rates
VOLATILE = [
    re.compile(r"\d[\d,.]* s\b"),
    re.compile(r"\d[\d,.]* M params/s"),
    re.compile(r"\d+ workers?\b"),
]


@dataclass(frozen=True)
class Example:
    command: str  # after "$ "
    shown: str  # the output pasted in the README
    start: int  # offsets of the output in the README
    end: int


def examples(text: str) -> list[Example]:
    return [Example(m.group(2), m.group(3), m.start(3), m.end(3)) for m in BLOCK.finditer(text)]


def run(command: str) -> str:
    """What the command prints (stdout, then stderr), as a terminal of COLUMNS would show it."""
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "COLUMNS": str(COLUMNS),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("DTLAB_DEBUG", None)
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{command!r} exited {done.returncode}: {done.stderr.strip()}")
    out = done.stdout + done.stderr
    return "".join(line.rstrip() + "\n" for line in out.splitlines())


def comparable(output: str) -> str:
    output = " ".join(output.split())
    for pattern in VOLATILE:
        output = pattern.sub("#", output)
    return output


def stale(text: str) -> list[tuple[Example, str]]:
    """The examples whose output no longer matches, with what the command prints now."""
    out = []
    for ex in examples(text):
        now = run(ex.command)
        if comparable(now) != comparable(ex.shown):
            out.append((ex, now))
    return out


def write(text: str) -> str:
    parts, last = [], 0
    for ex in examples(text):
        parts += [text[last : ex.start], run(ex.command)]
        last = ex.end
    return "".join(parts) + text[last:]


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    if "--write" in argv:
        README.write_text(write(text), encoding="utf-8")
        print(f"{len(examples(text))} examples in {README.name} regenerated")
        return 0
    bad = stale(text)
    for ex, now in bad:
        diff = difflib.unified_diff(
            ex.shown.splitlines(), now.splitlines(), "README", "now", lineterm=""
        )
        print(f"$ {ex.command}\n" + "\n".join(diff) + "\n")
    if bad:
        print(f"{len(bad)} README examples are stale: make readme regenerates them")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
