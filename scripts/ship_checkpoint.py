"""Copy a trained checkpoint into the package (mitra_sklearn/checkpoints/<name>/) with checksums.

    python scripts/ship_checkpoint.py runs/cpu-small-classification/latest mitra-small-classifier

Writes ``config.json`` and ``model.safetensors`` (float32, or bfloat16 with ``--bf16`` to halve
the size) and ``<file>.sha256`` next to each, which ``mitra_sklearn.checkpoint`` verifies at load time.
``--declare KEY=JSON`` adds an inference default to ``config.json`` (``max_classes_per_member``,
``softmax_temperature``, ``context_limits``, ``ensemble_with``, ...; see `mitra_sklearn.catalog`).
Refuses files over 30 MB (the limit for checkpoints shipped in the wheel).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch

from mitra_sklearn import load_model, save_model
from mitra_sklearn.catalog import CheckpointDefaults
from mitra_sklearn.checkpoint import SHIPPED_CHECKPOINTS_DIR, write_checksums

MAX_BYTES = 30 * 1000 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="checkpoint folder (config.json + model.safetensors)")
    parser.add_argument("name", help="name inside mitra_sklearn/checkpoints/")
    parser.add_argument("--bf16", action="store_true", help="store the weights in bfloat16")
    parser.add_argument("--declare", action="append", default=[], metavar="KEY=JSON",
                        help='an inference default for config.json, e.g. max_classes_per_member=5 or '
                             'ensemble_with=\'["mitra-small-classifier-v3"]\' (repeatable)')
    args = parser.parse_args()
    declared = {}
    for entry in args.declare:
        key, _, value = entry.partition("=")
        if key not in CheckpointDefaults._KEYS:
            raise SystemExit(f"--declare {entry!r}: {key!r} is not one of {', '.join(CheckpointDefaults._KEYS)}")
        declared[key] = json.loads(value)
    try:
        CheckpointDefaults.from_config(declared)  # malformed values fail here, not at the users' load
    except ValueError as err:
        raise SystemExit(f"--declare: {err}") from err

    model = load_model(args.source, use_cache=False)
    if args.bf16:
        model = model.to(torch.bfloat16)
    target = SHIPPED_CHECKPOINTS_DIR / args.name
    with tempfile.TemporaryDirectory() as tmp:
        save_model(model, tmp)
        if declared:
            config_path = Path(tmp) / "config.json"
            config_path.write_text(json.dumps({**json.loads(config_path.read_text()), **declared}))
        size = (Path(tmp) / "model.safetensors").stat().st_size
        if size > MAX_BYTES:
            raise SystemExit(f"{args.name}: {size / 1e6:.1f} MB is over the 30 MB limit for shipped checkpoints")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(tmp, target)
    write_checksums(target)
    target.chmod(0o755)  # temporary folders are private; installed package data must be readable
    for path in target.iterdir():
        path.chmod(0o644)
    print(f"shipped {args.source} as {target} ({size / 1e6:.2f} MB, {model.config})")


if __name__ == "__main__":
    main()
