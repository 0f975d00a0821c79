"""Copy the official Mitra model code into a folder that a bare machine can import (dev only).

The GPU machine lent to this project has torch, safetensors and huggingface_hub but no
``autogluon`` and no network. ``benchmarks/official_speed.py`` and
``benchmarks/train_throughput.py`` only need AutoGluon's ``Tab2D`` module and its three
sibling modules, plus the pure-Python packages ``einops``, ``einx`` and ``frozendict``. This
script copies exactly those from an environment that has ``autogluon.tabular[mitra]``
installed into ``DEST`` (default ``.official/``, git-ignored), with empty ``__init__.py`` files
in place of AutoGluon's heavy package initialisers. The copy is never committed: AutoGluon is
Apache-2.0 code of its authors and stays a dev-only reference.

Run it with the interpreter of an AutoGluon environment::

    /tmp/agvenv/bin/python scripts/vendor_official.py .official

or, with no such environment, from the wheels alone (seconds; nothing is installed)::

    pip download --no-deps "autogluon.tabular==1.6.3" einops einx frozendict -d /tmp/wheels
    python scripts/vendor_official.py .official --wheels /tmp/wheels

then pass ``--official-path .official`` to the benchmarks (and ``carry: [".official"]`` to the
device tool).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import tempfile
import zipfile
from pathlib import Path

# Module files of autogluon.tabular.models.mitra._internal that Tab2D imports.
MITRA_INTERNAL_FILES = ("config/enums.py", "models/base.py", "models/embedding.py", "models/tab2d.py")
PURE_PYTHON_PACKAGES = ("einops", "einx", "frozendict")
PACKAGE_CHAIN = ("autogluon", "tabular", "models", "mitra", "_internal")


def package_dir(name: str, wheel_root: Path | None = None) -> Path:
    """Folder of an installed package, or of one unpacked from the wheels."""
    if wheel_root is not None:
        folder = wheel_root.joinpath(*name.split("."))
        if not folder.is_dir():
            raise SystemExit(f"{name} is not in the wheels given with --wheels.")
        return folder
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed in this interpreter; run with the AutoGluon venv's python.")
    return Path(next(iter(spec.submodule_search_locations)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", nargs="?", default=".official", help="folder to write (replaced if present)")
    parser.add_argument("--wheels", default=None, help="folder of downloaded wheels to take the files from")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as unpacked:
        wheel_root = None
        if args.wheels:
            wheel_root = Path(unpacked)
            for wheel in sorted(Path(args.wheels).glob("*.whl")):
                with zipfile.ZipFile(wheel) as archive:
                    archive.extractall(wheel_root)
        vendor(Path(args.dest), wheel_root)


def vendor(dest: Path, wheel_root: Path | None) -> None:
    """Write the package chain, the four model files and the pure-Python helpers into ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)

    internal_src = package_dir("autogluon.tabular.models.mitra._internal", wheel_root)
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
        shutil.copytree(package_dir(name, wheel_root), dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    print(f"copied Tab2D from {internal_src} and {', '.join(PURE_PYTHON_PACKAGES)} into {dest}")


if __name__ == "__main__":
    main()
