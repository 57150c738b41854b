"""The console blocks of README.md and of the documentation's pages (docs/*.md), produced by running the
commands they show.

    python docs/readme_examples.py                  # run the tour; name the blocks that differ (exit 1)
    python docs/readme_examples.py --write          # rewrite those blocks with what the commands print now
    python docs/readme_examples.py --write --demo   # the demo's block too (runs the quick demo: minutes)

A console block is recognised by its first command line, in whichever page holds it (:func:`pages`); the
same block may be shown on several pages. The blocks in ``TOUR`` run in order, in one temporary folder with
a store of its own, shown as ``/home/me/imgvault-data``. Ids, run ids, key ids, times and durations change
from run to run: the check compares blocks with those normalised (:func:`normalise`), and --write puts in
the values of this run, in every page that shows the block. The rest of each page (other text, and
``sh``/``python`` blocks) is left exactly as it is.

The demo's block is the demo's output abbreviated by :func:`abbreviate_demo` (``...`` marks the lines
left out); tests/test_demo.py checks it against a ``demo --quick`` with the numbers normalised.
"""

import argparse
import difflib
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SHOWN_HOME = "/home/me"  # the temporary folder, as the pages show it
BLOCK = re.compile(r"```console\n(.*?)```", flags=re.S)
DEMO = "$ imgvault demo --quick"
DEMO_ROWS = {("aes", "-"), ("kmeans", "8"), ("le", "8"), ("pca", "8")}  # (method, k) of the demo-faces rows shown
THREAT_ROWS = {("aes", "collection"), ("kmeans", "k=8"), ("le", "k=8"), ("pca", "k=8")}  # the same, in the matrix


@dataclass
class Step:
    """One ``$ command`` of a block: ``{name}`` in it is an id taken from an earlier step's output by the
    ``take`` patterns (name -> regex with one group). A hidden step runs but is not shown."""

    command: str
    take: dict[str, str] = field(default_factory=dict)
    hidden: bool = False


def _skimage(name: str) -> str:
    import skimage.data

    return str(Path(skimage.data.__file__).parent / name)


PHOTOS = ("astronaut.png", "camera.png", "coffee.png", "chelsea.png", "moon.png", "coins.png", "rocket.jpg", "page.png")

# Each block, by its first command; the blocks run in this order, in one folder and one store.
TOUR: dict[str, list[Step]] = {
    "$ imgvault init": [
        Step("imgvault init"),
        Step(
            "imgvault put scans/ notes.txt -c scans",
            take={"knee": r"(\S+)  scans/knee.png", "wrist": r"(\S+)  scans/wrist.jpg"},
        ),
        Step("imgvault ls"),
        Step("imgvault get {knee} -o knee-copy.png"),
        Step("imgvault collections"),
        Step("imgvault key rotate"),
    ],
    "$ imgvault get": [
        Step("imgvault get"),
    ],
    "$ imgvault encode {knee} -m kmeans -k 8": [
        Step("imgvault encode {knee} -m kmeans -k 8", take={"encoded": r"encoded image (\S+)"}),
        Step("imgvault decode {encoded} -o knee-kmeans8.png"),
        Step("imgvault ls --encoded"),
        Step("imgvault rm {knee}"),
    ],
    "$ imgvault run -c photos -k 2,8": [
        Step("imgvault put " + " ".join(_skimage(name) for name in PHOTOS) + " -c photos", hidden=True),
        Step("imgvault run -c photos -k 2,8       # " + ", ".join(n.split(".")[0] for n in PHOTOS)),
    ],
    "$ imgvault put atlas/ -c atlas --label-from-folder": [
        Step("imgvault put atlas/ -c atlas --label-from-folder"),
        Step("imgvault labels -c atlas"),
    ],
}


def pages() -> dict[str, str]:
    """README.md and every page of docs/, by their path from the repository's root: name -> text."""
    files = [README, *sorted(DOCS.glob("*.md"))]
    return {path.relative_to(ROOT).as_posix(): path.read_text() for path in files}


def console_blocks(texts: dict[str, str]) -> list[tuple[str, str]]:
    """Every console block of ``texts`` (name -> text), as (name, block) in page order."""
    return [(name, match.group(1)) for name, text in texts.items() for match in BLOCK.finditer(text)]


def first_command(block: str) -> str:
    """The block's first ``$`` line, without its comment."""
    line = next((line for line in block.splitlines() if line.startswith("$ ")), "")
    return line.split("  #", 1)[0].rstrip()


def key_of(block: str) -> str | None:
    """Which entry of ``TOUR`` (or the demo) produced ``block``: matched on the first command, ids aside."""
    shown = normalise(first_command(block))
    if shown == DEMO:
        return DEMO
    for key in TOUR:
        if normalise(re.sub(r"\{\w+\}", "01M8710QF5BCJ7RGRN1E1T3SQ4", key)) == shown:
            return key
    return None


def normalise(text: str) -> str:
    """``text`` with what changes from run to run replaced by placeholders, and the padding of table columns
    (which follows the width of what they hold) made two spaces."""
    text = re.sub(r"\b[0-9A-HJKMNP-TV-Z]{26}\b", "<ID>", text)  # ULIDs: images, encoded images, models
    text = re.sub(r"\b[0-9a-f]{32}\b", "<RUN>", text)  # MLflow run ids
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<TIME>", text)
    text = re.sub(r"(New primary key )\d+", r"\1<KEY>", text)
    text = re.sub(r"(retired keys: )[\d, ]+", r"\1<KEYS>", text)
    text = re.sub(r"(\w+_seconds +)[\d.,]+", r"\1<SECONDS>", text)
    return "\n".join(re.sub(r" {2,}", "  ", line).rstrip() for line in text.strip("\n").splitlines())


def tour_env(folder: Path) -> dict[str, str]:
    """This process's environment without imgvault's and MLflow's settings, with the tour's home."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("IMGVAULT_") and k not in ("MLFLOW_TRACKING_URI", "COLUMNS")}  # fmt: skip
    return {**env, "IMGVAULT_HOME": str(folder / "imgvault-data")}


def in_subprocess(folder: Path) -> Callable[[list[str]], str]:
    """Runs ``imgvault ARGS`` as a person does, in ``folder``: stdout and stderr in the order they came."""

    def invoke(args: list[str]) -> str:
        done = subprocess.run([sys.executable, "-m", "imgvault.cli", *args], cwd=folder, env=tour_env(folder),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        return done.stdout

    return invoke


class Tour:
    """The commands of the pages' console blocks, run for real in ``folder``, whose store is ``folder/imgvault-data``.

    ``invoke(args)`` runs ``imgvault args`` in ``folder`` with :func:`tour_env` and returns what it
    printed (:func:`in_subprocess`; the tests run the commands in their own process, which is faster).
    """

    def __init__(self, folder: Path, invoke: Callable[[list[str]], str] | None = None):
        self.folder = folder
        self.invoke = invoke or in_subprocess(folder)
        self.ids: dict[str, str] = {}
        (folder / "scans").mkdir()
        (folder / "scans" / "knee.png").write_bytes(Path(_skimage("camera.png")).read_bytes())
        (folder / "scans" / "wrist.jpg").write_bytes(Path(_skimage("rocket.jpg")).read_bytes())
        (folder / "notes.txt").write_text("not an image\n")
        for relative, name in [("knee/a.png", "camera.png"), ("knee/b.png", "moon.png"), ("wrist/c.jpg", "rocket.jpg")]:
            (folder / "atlas" / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / "atlas" / relative).write_bytes(Path(_skimage(name)).read_bytes())

    def run(self, step: Step) -> str:
        """What ``step`` prints, as the pages show it (``$ command``, then the output)."""
        command = step.command.format(**self.ids)
        args = shlex.split(command, comments=True)
        assert args[0] == "imgvault", command
        output = self.invoke(args[1:]).replace(str(self.folder), SHOWN_HOME)
        for name, pattern in step.take.items():
            match = re.search(pattern, output)
            if match is None:
                raise RuntimeError(f"{command}: no {name} in its output:\n{output}")
            self.ids[name] = match.group(1)
        return f"$ {command}\n{output}"

    def block(self, key: str) -> str:
        parts = []
        for step in TOUR[key]:
            shown = self.run(step)
            if not step.hidden:
                parts.append(shown.rstrip("\n") + "\n")
        return "\n".join(parts)


def abbreviate_demo(output: str) -> str:
    """The demo's output as the pages show it: the tables keep their headers and the rows of demo-faces
    for aes, and for kmeans and pca at k = 8; each frontier its header only (its points' order, their strongest
    attack and which are on the front vary with the keys the ciphers draw); each run of left-out lines becomes
    one ``...``."""
    kept: list[str] = []
    in_tables = in_frontier = False
    for line in output.rstrip("\n").splitlines():
        cells = line.split()
        if line.startswith("COLLECTION"):
            in_tables = True
        elif line.startswith("Wrote "):
            in_tables = False
        if line.startswith("Privacy-utility frontier of "):
            in_frontier = True
        elif not line.strip():
            in_frontier = False
        keep = True
        if in_frontier:
            keep = line.startswith(("Privacy-utility frontier of ", "POINT"))
        elif in_tables and line.startswith("n/a:"):
            keep = not any(k.startswith("n/a:") for k in kept)
        elif in_tables and cells and cells[0].startswith("demo-"):
            keep = cells[0] == "demo-faces" and tuple(cells[1:3]) in DEMO_ROWS | THREAT_ROWS
        if keep:
            kept.append(line)
        elif kept[-1] != "...":
            kept.append("...")
    return "\n".join(kept) + "\n"


def run_demo(folder: Path) -> str:
    """The quick demo's output, run in ``folder`` as the Quickstart runs the demo."""
    env = {k: v for k, v in tour_env(folder).items() if k != "IMGVAULT_HOME"}
    done = subprocess.run([sys.executable, "-m", "imgvault.cli", "demo", "--quick"], cwd=folder, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"the demo failed:\n{done.stdout[-3000:]}")
    return f"{DEMO}\n{done.stdout.replace(str(folder), SHOWN_HOME)}"


def generate(folder: Path, demo: str | None = None, invoke=None) -> dict[str, str]:
    """Every block of ``TOUR`` (and the demo's, given its output), run in ``folder``: key -> block text."""
    tour = Tour(folder, invoke)
    blocks = {key: tour.block(key) for key in TOUR}
    if demo is not None:
        blocks[DEMO] = abbreviate_demo(demo)
    return blocks


def compare(texts: dict[str, str], blocks: dict[str, str]) -> list[str]:
    """What differs between the pages' blocks (``texts``: name -> text) and ``blocks`` (normalised), as
    unified diffs; every block of ``blocks`` is shown on at least one page."""
    problems = []
    found = console_blocks(texts)
    for key, block in blocks.items():
        shown = [(name, text) for name, text in found if key_of(text) == key]
        if not shown:
            problems.append(f"no page ({', '.join(texts)}) has a console block starting with {key!r}")
        got = normalise(block).splitlines()
        for name, text in shown:
            want = normalise(text).splitlines()
            if want != got:
                diff = difflib.unified_diff(want, got, name, "now", lineterm="")
                problems.append("\n".join(diff))
    return problems


def rewrite(text: str, blocks: dict[str, str]) -> str:
    """``text`` (one page) with each console block that ``blocks`` holds replaced by its new text."""

    def replace(match: re.Match) -> str:
        key = key_of(match.group(1))
        return f"```console\n{blocks[key]}```" if key in blocks else match.group(0)

    return BLOCK.sub(replace, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the pages' console blocks")
    parser.add_argument("--demo", action="store_true", help="also run the quick demo for its block (minutes)")
    parser.add_argument("--demo-output", type=Path, help="the demo's block from this saved `imgvault demo` output")
    parser.add_argument("--demo-home", default="/nonexistent", help="the folder of that demo, shown as /home/me")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imgvault-readme-") as folder:
        demo = None
        if options.demo_output:
            demo = f"{DEMO}\n" + options.demo_output.read_text().replace(str(options.demo_home), SHOWN_HOME)
        elif options.demo:
            demo_folder = Path(folder, "demo")
            demo_folder.mkdir()
            demo = run_demo(demo_folder)
        tour_folder = Path(folder, "tour")
        tour_folder.mkdir()
        blocks = generate(tour_folder, demo)
    texts = pages()
    if options.write:
        for name, text in texts.items():
            if (new := rewrite(text, blocks)) != text:
                (ROOT / name).write_text(new)
        return 0
    problems = compare(texts, blocks)
    for problem in problems:
        print(problem, end="\n\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
