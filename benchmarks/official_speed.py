"""Our inference against the official AutoGluon implementation, same weights, one process.

Both models get the same random weights of the chosen shape (default: the released 12 x 512)
and the same inputs. The official model predicts the way AutoGluon's ``MitraClassifier`` does:
query chunks of 1,024 rows, each chunk re-running the whole support set, under bf16 autocast on
every device. Ours predicts the way ``MitraClassifier`` does: the support rows run once, layer by
layer together with every chunk of queries (chunk size from free memory), bf16 autocast on CUDA
and float32 on the CPU. Only model time is measured
(preprocessing is the same cheap NumPy work for both). Peak memory: CUDA allocator peak on GPUs,
peak resident memory above the starting point on the CPU (sampled every 2 ms).

The official code is dev-only: run this script with an interpreter that has
``autogluon.tabular[mitra]`` installed, with this repository on ``PYTHONPATH``::

    PYTHONPATH=. /tmp/agvenv/bin/python benchmarks/official_speed.py --cases small
    PYTHONPATH=. python benchmarks/official_speed.py --cases all      # on a GPU machine

``--official-path DIR`` adds a folder holding the ``autogluon`` package (e.g. a copied
site-packages) to ``sys.path`` for machines where it cannot be pip-installed.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import numpy as np
import torch
from _measure import PeakMemory
from _official import official_tab2d

from mitra_sklearn._inference import InferenceRunner
from mitra_sklearn.devices import resolve_precision
from mitra_sklearn.model import MitraConfig, MitraModel

CASES = {
    "1000x1000x10": (1000, 1000, 10),
    "5000x5000x20": (5000, 5000, 20),
    "8192x10240x20": (8192, 10240, 20),
    "8192x2048x100": (8192, 2048, 100),
}
SMALL = ("1000x1000x10",)
OFFICIAL_CHUNK = 1024
H100_BF16_PEAK_TFLOPS = 800.0  # dense bf16 peak seen on an 8192^3 matmul (gpu-measurements.md)


def inference_flops(dim: int, layers: int, support: int, query: int, features: int, support_passes: int) -> float:
    """Nominal forward FLOPs: dense layers and attention, the support set run ``support_passes`` times.

    Every cell is counted through every layer, as in the reference's H100 figures, although our
    model skips the last layer's support updates and its non-label query updates; the TFLOP/s
    printed are therefore model-FLOP utilisation (nominal work over time), comparable with the
    reference's, not a count of the operations the kernels ran.
    """
    cells_s, cells_q = support * (features + 1), query * (features + 1)
    per_cell_dense = 48 * dim * dim
    per_cell_attention = 4 * dim * support + 4 * dim * (features + 1)
    return layers * (support_passes * cells_s + cells_q) * (per_cell_dense + per_cell_attention)


def measure(fn: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, float]:
    """Best wall time of ``repeats`` runs (after one warm-up) and peak memory in GiB."""
    fn()
    times = []
    with PeakMemory(device) as memory:
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return min(times), memory.peak_gib


def official_predict(official: torch.nn.Module, xs: torch.Tensor, ys: torch.Tensor, x_query: np.ndarray,
                     pad_f: torch.Tensor, pad_s: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
    """The official model on ``x_query`` as AutoGluon runs it: chunks of ``OFFICIAL_CHUNK`` rows,
    the whole support set re-run for every chunk, under bf16 autocast."""
    outputs = []
    with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        for start in range(0, len(x_query), OFFICIAL_CHUNK):
            xq = torch.as_tensor(x_query[start : start + OFFICIAL_CHUNK], device=device)[None]
            pad_q = torch.zeros(1, xq.shape[1], dtype=torch.bool, device=device)
            outputs.append(official(xs.clone(), ys.clone(), xq, pad_f, pad_s, pad_q).float().cpu())
    return outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="small",
                        help="'small', 'all' or comma-separated names of " + ", ".join(CASES))
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", default="auto", help="our query chunk: rows, or 'auto' (from free memory)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                        help="our compute dtype (auto: bf16 on CUDA, float32 on CPU, as MitraClassifier)")
    parser.add_argument("--official-path", default=None, help="folder to add to sys.path for autogluon")
    parser.add_argument("--skip-official", action="store_true", help="time only our model")
    args = parser.parse_args()
    device = torch.device(args.device)
    names = SMALL if args.cases == "small" else tuple(CASES) if args.cases == "all" else tuple(args.cases.split(","))

    torch.manual_seed(0)
    config = MitraConfig(dim=args.dim, dim_output=10, n_layers=args.layers, n_heads=args.heads)
    ours = MitraModel(config).to(device).eval()
    official = None
    if not args.skip_official:
        official = official_tab2d(args.dim, args.layers, args.heads, device, args.official_path).eval()
        official.load_state_dict(ours.state_dict())
    dtype = resolve_precision(args.precision, device)
    chunk = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    runner = InferenceRunner(model=ours, device=device, dtype=dtype, batch_size=chunk, support_cache="predict")
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {label}; torch {torch.__version__}; model dim {args.dim} x {args.layers} layers")
    print(f"ours: support once per call (layer by layer), {dtype}, chunks of {chunk} rows; "
          f"official: chunks of {OFFICIAL_CHUNK}, support re-run per chunk, bf16 autocast\n")
    print(f"{'case':>15s} {'ours s':>8s} {'off. s':>8s} {'speed-up':>8s} {'ours GiB':>9s} {'off. GiB':>9s} "
          f"{'mem ratio':>9s} {'ours TFLOP/s':>12s}")

    rng = np.random.RandomState(0)
    for name in names:
        support, query, features = CASES[name]
        x_support = rng.randn(support, features).astype(np.float32)
        y_support = rng.randint(0, 10, support)
        x_query = rng.randn(query, features).astype(np.float32)
        run_ours = functools.partial(runner.predict, x_support, y_support, x_query)
        ours_s, ours_gib = measure(run_ours, device, args.repeats)
        flops = inference_flops(args.dim, args.layers, support, query, features, support_passes=1)
        row = f"{name:>15s} {ours_s:8.3f}"
        if official is not None:
            xs = torch.as_tensor(x_support, device=device)[None]
            ys = torch.as_tensor(y_support, device=device)[None]
            pad_f = torch.zeros(1, features, dtype=torch.bool, device=device)
            pad_s = torch.zeros(1, support, dtype=torch.bool, device=device)
            run_official = functools.partial(official_predict, official, xs, ys, x_query, pad_f, pad_s, device)
            official_s, official_gib = measure(run_official, device, args.repeats)
            row += (f" {official_s:8.3f} {official_s / ours_s:7.2f}x {ours_gib:9.2f} {official_gib:9.2f} "
                    f"{ours_gib / max(official_gib, 1e-9):9.2f}")
        else:
            row += f" {'-':>8s} {'-':>8s} {ours_gib:9.2f} {'-':>9s} {'-':>9s}"
        tflops = flops / ours_s / 1e12
        row += f" {tflops:12.2f}"
        if device.type == "cuda":
            row += f" ({100 * tflops / H100_BF16_PEAK_TFLOPS:.0f}% of H100 bf16 peak)"
        print(row, flush=True)


if __name__ == "__main__":
    main()
