"""README.md's code blocks: the Python ones run as written, the commands are the ones CI runs."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.DOTALL | re.MULTILINE)


PYTHON_BLOCKS = _blocks("python")


def test_readme_has_python_blocks() -> None:
    assert len(PYTHON_BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_python_block_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Offline, on an empty Hub cache (conftest): checkpoint=None falls back to the shipped checkpoint.
    monkeypatch.chdir(tmp_path)  # blocks may write files ("my-folder")
    namespace: dict = {"__name__": f"readme_block_{index}"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fallback warning is the documented behaviour
        exec(compile(PYTHON_BLOCKS[index], f"README.md python block {index}", "exec"), namespace)
    if "clf" in namespace and "X_test" in namespace:
        # The usage block ends in clf.score(...): it must really have fitted and predicted.
        assert namespace["clf"].score(namespace["X_test"], namespace["y_test"]) > 0.9


def test_readme_test_command_is_what_ci_runs() -> None:
    commands = [line for block in _blocks("bash") for line in block.splitlines()]
    test_command = next(line for line in commands if "pytest" in line)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # README's test command, minus the torch pin that .ci/run installs on a line of its own.
    assert test_command.split(" && ", 1)[1] in ci


def test_readme_docs_build_command_is_what_ci_runs() -> None:
    commands = [line for block in _blocks("bash") for line in block.splitlines()]
    docs_command = next(line for line in commands if "sphinx" in line)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert docs_command.split(" && ", 1)[1] in ci
