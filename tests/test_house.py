"""House rules that keep the code readable and the clone light (issue 26), checked on the tree itself."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 80


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_the_model_module_knows_no_checkpoint_files():
    imported = _imported_modules(ROOT / "mitra_sklearn" / "model.py")
    assert not {name for name in imported if "checkpoint" in name and name != "torch.utils.checkpoint"}
    assert not {name for name in imported if "huggingface" in name or "safetensors" in name}


def test_the_estimator_base_is_abstract():
    from mitra_sklearn._base import MitraEstimatorBase

    with pytest.raises(TypeError, match="abstract"):
        MitraEstimatorBase()


def _count_calls(monkeypatch, module, names: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(names, 0)
    for name in names:
        original = getattr(module, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return counts


def test_fit_resolves_the_checkpoint_and_reads_its_config_once(tiny_classifier_checkpoint, monkeypatch):
    import pickle

    import numpy as np

    from mitra_sklearn import MitraClassifier, _base

    counts = _count_calls(monkeypatch, _base, ["resolve_checkpoint", "resolve_pinned", "load_config"])
    rng = np.random.RandomState(0)
    X, y = rng.randn(40, 3), rng.randint(0, 2, 40)
    clf = MitraClassifier(tiny_classifier_checkpoint, n_estimators=2, device=["cpu", "cpu"]).fit(X, y)
    clf.predict_proba(X)
    assert counts == {"resolve_checkpoint": 1, "resolve_pinned": 0, "load_config": 1}
    # An unpickled copy finds the recorded files again, once, and checks them against the record.
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    copy.predict_proba(X)
    assert counts == {"resolve_checkpoint": 1, "resolve_pinned": 1, "load_config": 2}


def _function_lengths(path: Path) -> list[tuple[str, int]]:
    """(qualified name, lines without the docstring) of every function in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value,
                                                                                                   str):
                lines -= first.end_lineno - first.lineno + 1
            found.append((f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", lines))
    return found


def test_no_function_is_longer_than_a_reader_can_hold():
    too_long = [(name, n) for package in ("mitra_sklearn", "pretraining")
                for path in sorted((ROOT / package).rglob("*.py"))
                for name, n in _function_lengths(path) if n > MAX_FUNCTION_LINES]
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines (docstrings aside): {too_long}"


def test_the_length_rule_counts_code_not_docstrings(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(81))
    (tmp_path / "long.py").write_text(f'def f():\n    """Doc\n\n    more.\n    """\n{body}\n')
    (tmp_path / "short.py").write_text('def g():\n    """' + "\n" * 100 + '"""\n    return 1\n')
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert [n for _, n in _function_lengths(tmp_path / "long.py")] == [82]
        assert [n for _, n in _function_lengths(tmp_path / "short.py")] == [2]
    finally:
        ROOT = saved


def _check_sizes():
    spec = importlib.util.spec_from_file_location("check_commit_sizes", ROOT / "scripts" / "check_commit_sizes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_a_commit_adding_more_than_the_limit_is_reported(tmp_path):
    check = _check_sizes()
    _git(tmp_path, "init", "-q")
    (tmp_path / "small.txt").write_bytes(b"x" * 1000)
    _git(tmp_path, "add", "small.txt")
    _git(tmp_path, "commit", "-q", "-m", "small")
    (tmp_path / "big.bin").write_bytes(bytes(range(256)) * 9000)  # 2.3 MB
    _git(tmp_path, "add", "big.bin")
    _git(tmp_path, "commit", "-q", "-m", "big")
    assert check.main(["--repo", str(tmp_path), "--since", "", "--limit-mb", "2"]) == 1
    assert check.main(["--repo", str(tmp_path), "--since", "", "--limit-mb", "3"]) == 0
    assert check.main(["--repo", str(tmp_path), "--since", "HEAD", "--limit-mb", "2"]) == 0  # history not checked


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout (an sdist or wheel has no history)")
def test_no_commit_of_this_repository_adds_more_than_20_mb():
    assert _check_sizes().main(["--repo", str(ROOT)]) == 0
