"""Sphinx configuration of the mitra-sklearn documentation site.

Build from the repository root (offline; the gallery examples run during the build)::

    pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# `pretraining/` is used from a checkout, never installed: the API pages and the gallery
# examples that import it need the repository root on the path (the examples run in this process).
sys.path.insert(0, str(ROOT))
# Nothing in the build may reach the network: the examples pin shipped checkpoints, and this makes
# sure a Hub look-up (checkpoint=None) falls back to them at once instead of trying to download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# OpenMP threads sleep instead of spinning while they wait: on a machine whose cores are busy
# with other work, spinning threads made small fits of the examples 2-50x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Figures are drawn without a screen.
os.environ.setdefault("MPLBACKEND", "Agg")

import mitra_sklearn  # noqa: E402

project = "mitra-sklearn"
author = "mitra-sklearn developers"
copyright = "mitra-sklearn developers"
release = mitra_sklearn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**/sg_execution_times.rst"]
# Single backticks link to Python objects (as in the docstrings): `MitraClassifier`.
default_role = "py:obj"
# A reference to a documented object that does not resolve is a warning (so -W fails the build);
# names of other projects are not documented here (no intersphinx: the build stays offline).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(dataclasses|enum|abc|os|pathlib|argparse|numpy|np|pandas|pd|scipy|sklearn|torch|joblib|"
               r"huggingface_hub|safetensors|tqdm|matplotlib)(\..*)?"),
    (r"py:.*", r"(optional|default|array-like|ndarray|DataFrame|Series|Tensor|path|path-like|callable|mapping|"
               r"sequence|iterable|instance|of|or|and|shape|str|int|float|bool|dict|list|tuple|None|object|Any|"
               r"Path|os\.PathLike|PathLike|sparse matrix|RandomState|Generator)"),
    # Base classes shown by show-inheritance that are private or of the standard library.
    (r"py:class", r"(enum\.Enum|abc\.ABC|mitra_sklearn\._base\..*|mitra_sklearn\.checkpoint\.PretrainedMixin|"
                  r"pretraining\.priors\.trees\.TreePrior)"),
]
# The result tables under docs/results/ start at a second-level heading (they are sections of
# the evaluation pages, included there).
suppress_warnings = ["myst.header"]

# --------------------------------------------------------------------------- API reference
autosummary_generate = True
autodoc_default_options = {
    "members": True,
    # scikit-learn's metadata-routing setters are documented by scikit-learn, not here.
    "exclude-members": "set_fit_request, set_predict_request, set_score_request, set_output",
}
autodoc_typehints = "none"  # the numpydoc sections say the types
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# --------------------------------------------------------------------------- Markdown pages
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# --------------------------------------------------------------------------- the gallery
sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": ["auto_examples"],
    # Every example runs, the quickstart script included.
    "filename_pattern": r".*\.py$",
    "ignore_pattern": r"__init__\.py|/_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    # A failing example fails the build.
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "reset_modules": ("matplotlib",),
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "doc_module": ("mitra_sklearn", "pretraining"),
    "backreferences_dir": "gen_modules/backreferences",
    "show_memory": False,
    "remove_config_comments": True,
    "write_computation_times": True,
}

# --------------------------------------------------------------------------- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"mitra-sklearn {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "navbar_align": "left",
    "header_links_before_dropdown": 7,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_show_sourcelink = False


# --------------------------------------------------------------------------- CLI pages
def _write_cli_help(app) -> None:
    """Write ``python -m pretraining ... --help`` of every command to files the CLI page includes.

    In-process and at build time, so that the page always shows the parsers as they are.
    """
    from pretraining import cli

    out = DOCS / "api" / "generated" / "cli"
    out.mkdir(parents=True, exist_ok=True)
    commands = ["", "train", "resume", "presets", "pack", "unpack", "held-out", "evaluate", "generalizability"]
    os.environ["COLUMNS"] = "100"  # argparse wraps help text to this width
    for command in commands:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
            cli.main([command, "--help"] if command else ["--help"])
        text = buffer.getvalue()
        path = out / f"{command or 'pretraining'}.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def setup(app):
    app.connect("builder-inited", _write_cli_help)
