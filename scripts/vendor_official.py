"""Copy the official Mitra model code into a folder that a bare machine can import (dev only).

The GPU machine lent to this project has torch, safetensors and huggingface_hub but no
``autogluon`` and no network. ``benchmarks/official_speed.py`` and
``benchmarks/train_throughput.py`` only need AutoGluon's ``Tab2D`` module and its three
sibling modules, plus the pure-Python packages ``einops``, ``einx`` and ``frozendict``. This
script copies exactly those from an environment that has ``autogluon.tabular[mitra]``
installed into ``DEST`` (default ``.official/``, git-ignored), with empty ``__init__.py`` files
in place of AutoGluon's heavy package initialisers. The copy is never committed: AutoGluon is
Apache-2.0 code of its authors and stays a dev-only reference.

Run it with the interpreter of the AutoGluon environment::

    /tmp/agvenv/bin/python scripts/vendor_official.py .official

then pass ``--official-path .official`` to the benchmarks (and ``carry: [".official"]`` to the
device tool).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
from pathlib import Path

# Module files of autogluon.tabular.models.mitra._internal that Tab2D imports.
MITRA_INTERNAL_FILES = ("config/enums.py", "models/base.py", "models/embedding.py", "models/tab2d.py")
PURE_PYTHON_PACKAGES = ("einops", "einx", "frozendict")
PACKAGE_CHAIN = ("autogluon", "tabular", "models", "mitra", "_internal")


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed in this interpreter; run with the AutoGluon venv's python.")
    return Path(next(iter(spec.submodule_search_locations)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", nargs="?", default=".official", help="folder to write (replaced if present)")
    args = parser.parse_args()
    dest = Path(args.dest)
    if dest.exists():
        shutil.rmtree(dest)

    internal_src = package_dir("autogluon.tabular.models.mitra._internal")
    package = dest
    for part in PACKAGE_CHAIN:  # empty initialisers: AutoGluon's own import half of PyPI
        package = package / part
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
    for sub in ("config", "models"):
        (package / sub).mkdir()
        (package / sub / "__init__.py").write_text("")
    for relative in MITRA_INTERNAL_FILES:
        shutil.copy2(internal_src / relative, package / relative)

    for name in PURE_PYTHON_PACKAGES:
        shutil.copytree(package_dir(name), dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    version = importlib.util.find_spec("autogluon.tabular")
    print(f"copied Tab2D from {internal_src} and {', '.join(PURE_PYTHON_PACKAGES)} into {dest} ({version.origin})")


if __name__ == "__main__":
    main()
