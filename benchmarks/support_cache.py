"""Prediction time and memory of the three support schedules, and the size of a pickled estimator.

The same fitted MitraClassifier predicts the same query rows in one process with
``support_cache="predict"`` (the default: support rows run once, layer by layer together with
every chunk of queries), ``"fit"`` (every layer's keys/values encoded in ``fit`` and reused; the
timing excludes that encoding) and ``"off"`` (support rows re-run with every chunk, as the official
code does). Weights are random (the speed does not depend on their values) in the released shape
(12 layers, dim 512, 4 heads) unless --dim/--layers/--heads say otherwise. Peak memory: CUDA
allocator peak, or resident memory above the start of each prediction on the CPU.

Example::

    python benchmarks/support_cache.py --support 1024 --query 8192 --features 20
"""

from __future__ import annotations

import argparse
import pickle
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
from _measure import timed_with_peak

from mitra_sklearn import MitraClassifier
from mitra_sklearn.model import MitraConfig, MitraModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--support", type=int, default=1024)
    parser.add_argument("--query", type=int, default=8192)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1024, help="query rows per chunk")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.RandomState(0)
    X = rng.randn(args.support + args.query, args.features).astype(np.float32)
    y = (X[:, 0] + rng.randn(len(X)) > 0).astype(int)
    X_train, y_train, X_query = X[: args.support], y[: args.support], X[args.support :]

    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        config = MitraConfig(dim=args.dim, dim_output=10, n_layers=args.layers, n_heads=args.heads)
        MitraModel(config).save_pretrained(folder)
        n_params = sum(p.numel() for p in MitraModel(config).parameters())
        print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} CPU threads, device {args.device}")
        print(f"model: dim {args.dim}, {args.layers} layers, {args.heads} heads, {n_params / 1e6:.2f} M parameters")
        print(f"table: {args.support} support rows x {args.query} query rows x {args.features} features, "
              f"chunks of {args.batch_size} query rows, 1 ensemble member")

        clf = MitraClassifier(folder, n_estimators=1, device=args.device, inference_precision=args.precision,
                              batch_size=args.batch_size, random_state=0).fit(X_train, y_train)
        clf.predict_proba(X_query[:8])  # warm-up (lazy initialisation of kernels)

        timings, peaks, outputs = {}, {}, {}
        for mode in ("predict", "fit", "off"):
            clf.set_params(support_cache=mode)
            if mode == "fit":
                clf.fit(X_train, y_train)  # encodes the support set now; predict reuses it
            outputs[mode], timings[mode], peaks[mode] = timed_with_peak(lambda: clf.predict_proba(X_query), args.device)
        for mode, label in (("predict", "layer by layer, default"), ("fit", "encoded in fit"),
                            ("off", "support per chunk")):
            print(f"support_cache={mode!r:10s} ({label:23s}): {timings[mode]:8.2f} s, peak {peaks[mode]:6.2f} GiB, "
                  f"max |p - p_off| {np.abs(outputs[mode] - outputs['off']).max():.1e}")
        print(f"speed-up of 'predict' over 'off'          : {timings['off'] / timings['predict']:8.2f}x")
        clf.set_params(support_cache="predict")

        blob = pickle.dumps(clf)
        weights_mb = Path(folder, "model.safetensors").stat().st_size / 1e6
        print(f"pickled fitted estimator           : {len(blob) / 1e3:8.1f} kB "
              f"(training data {X_train.nbytes / 1e3:.1f} kB; weights not included: {weights_mb:.1f} MB)")


if __name__ == "__main__":
    main()
