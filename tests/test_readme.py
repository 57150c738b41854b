"""The README's promises that can be checked without a fresh machine."""

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


def test_the_study_reproduction_prints_what_the_readme_shows(capsys):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Why our numbers differ from the original study", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    [shown] = re.findall(r"```text\n(.*?)```", section, flags=re.S)
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == shown


def readme_examples():
    """docs/readme_examples.py, which makes the README's console blocks by running their commands."""
    spec = importlib.util.spec_from_file_location("readme_examples", ROOT / "docs" / "readme_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def console_blocks() -> list[str]:
    return re.findall(r"```console\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_every_console_block_of_the_readme_is_made_by_running_its_commands():
    examples = readme_examples()
    unknown = [block.splitlines()[0] for block in console_blocks() if examples.key_of(block) is None]
    assert unknown == [], "add these blocks to TOUR in docs/readme_examples.py, then run it with --write"


@pytest.mark.slow
def test_the_readmes_console_blocks_are_what_the_commands_print(tmp_path, clean_env, monkeypatch,
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
    problems = examples.compare((ROOT / "README.md").read_text(), blocks)
    assert not problems, "\n\n".join(problems) + "\n(python docs/readme_examples.py --write updates the README)"


def test_the_readmes_demo_block_is_the_demos_output_abbreviated_as_the_generator_does():
    examples = readme_examples()
    [demo] = [block for block in console_blocks() if examples.key_of(block) == examples.DEMO]
    kept = [line for line in demo.splitlines() if line != "..."]
    assert examples.abbreviate_demo(demo).splitlines() == demo.splitlines()  # already abbreviated
    assert len(kept) < len(demo.splitlines()), "the demo's block says where it leaves lines out"
