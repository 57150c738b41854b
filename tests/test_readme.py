"""The README's promises that can be checked without a fresh machine."""

import re
from pathlib import Path

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
