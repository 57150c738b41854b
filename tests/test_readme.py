"""The promises of the README and of the documentation's pages (docs/*.md) that can be checked without a
fresh machine."""

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from imgvault.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)


def test_the_quickstart_is_two_commands_install_and_run_then_test():
    install_and_run, test = quickstart_commands()
    assert "\n" not in install_and_run and "\n" not in test
    assert "pip install ." in install_and_run and "imgvault" in install_and_run
    assert test.endswith("pytest") and "'.[test]'" in test


def test_ci_runs_the_readme_test_command_verbatim():
    _, test = quickstart_commands()
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


def section(text: str, heading: str) -> str:
    """The section of a Markdown page under ``heading`` (any level), up to the next heading of its level or
    above (a ``#`` line inside a code block is not a heading)."""
    level, title = heading.split(" ", 1)
    lines, inside, fenced = [], False, False
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        is_heading = not fenced and re.match(r"#+ ", line)
        if is_heading and line.rstrip("\n") == heading:
            inside = True
            continue
        if inside and is_heading and len(line.split(" ", 1)[0]) <= len(level):
            break
        if inside:
            lines.append(line)
    assert inside, f"no section {title!r}"
    return "".join(lines)


def test_the_study_reproduction_prints_what_the_methods_page_shows(capsys):
    page = (ROOT / "docs" / "methods.md").read_text()
    study = section(page, "## Why our numbers differ from the original study")
    [code] = re.findall(r"```python\n(.*?)```", study, flags=re.S)
    [shown] = re.findall(r"```text\n(.*?)```", study, flags=re.S)
    exec(compile(code, "docs/methods.md", "exec"), {})
    assert capsys.readouterr().out == shown


def readme_examples():
    """docs/readme_examples.py, which makes the pages' console blocks by running their commands."""
    spec = importlib.util.spec_from_file_location("readme_examples", ROOT / "docs" / "readme_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def console_blocks() -> list[tuple[str, str]]:
    """Every console block of README.md and docs/*.md, as (page, block)."""
    examples = readme_examples()
    return examples.console_blocks(examples.pages())


def test_the_pages_are_the_readme_and_every_page_of_the_docs():
    names = list(readme_examples().pages())
    assert names[0] == "README.md"
    assert {"docs/index.md", "docs/cli.md", "docs/methods.md", "docs/mlflow.md"} <= set(names)


def test_every_console_block_of_every_page_is_made_by_running_its_commands():
    examples = readme_examples()
    blocks = console_blocks()
    assert {page for page, _ in blocks} >= {"README.md", "docs/cli.md", "docs/methods.md", "docs/mlflow.md"}
    unknown = [f"{page}: {block.splitlines()[0]}" for page, block in blocks if examples.key_of(block) is None]
    assert unknown == [], "add these blocks to TOUR in docs/readme_examples.py, then run it with --write"


def test_every_relative_link_of_the_readme_names_a_file_that_exists():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    relative = [t.split("#", 1)[0] for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]
    assert "docs/methods.md" in relative
    missing = [target for target in relative if not (ROOT / target).is_file()]
    assert missing == []


@pytest.mark.slow
def test_the_pages_console_blocks_are_what_the_commands_print(tmp_path, clean_env, monkeypatch,
                                                                migrated_tracking_db):  # fmt: skip
    examples = readme_examples()
    folder = tmp_path / "me"
    folder.mkdir()
    env = examples.tour_env(folder)
    for name in ("IMGVAULT_HOME", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMGVAULT_HOME", env["IMGVAULT_HOME"])
    monkeypatch.chdir(folder)
    (folder / "imgvault-data").mkdir()
    shutil.copy(migrated_tracking_db, folder / "imgvault-data" / "mlflow.db")  # MLflow's migrations: not ours

    def invoke(args: list[str]) -> str:
        return CliRunner().invoke(cli, args, prog_name="imgvault").output

    blocks = examples.generate(folder, invoke=invoke)
    problems = examples.compare(examples.pages(), blocks)
    assert not problems, "\n\n".join(problems) + "\n(python docs/readme_examples.py --write updates the pages)"


def test_the_demo_block_is_the_demos_output_abbreviated_as_the_generator_does():
    examples = readme_examples()
    demos = [block for _, block in console_blocks() if examples.key_of(block) == examples.DEMO]
    assert demos, "a page shows the demo's output"
    for demo in demos:
        kept = [line for line in demo.splitlines() if line != "..."]
        assert examples.abbreviate_demo(demo).splitlines() == demo.splitlines()  # already abbreviated
        assert len(kept) < len(demo.splitlines()), "the demo's block says where it leaves lines out"
