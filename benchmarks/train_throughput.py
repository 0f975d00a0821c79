"""Pretraining throughput of our model (and, when importable, the official AutoGluon Tab2D).

Random tables shaped like pretraining data go through forward + backward + AdamW steps with the
same settings for both implementations (bf16 autocast on CUDA, float32 on CPU). Prints tables/s,
seconds per step, peak memory and the achieved TFLOP/s (dense + attention FLOPs, estimated).

Example (one H100, the released 12 x 512 shape, 640-row x 16-feature tables)::

    PYTHONPATH=. python benchmarks/train_throughput.py --dim 512 --layers 12 --tables 32 \\
        --support 512 --query 128 --features 16 --official

``--official`` needs ``autogluon.tabular`` (dev only) importable; the ratio is printed when both ran.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from _official import official_tab2d

from mitra_sklearn.devices import autocast_context, resolve_precision
from mitra_sklearn.model import MitraConfig, MitraModel, optimizer_groups


def step_flops(dim: int, layers: int, tables: int, support: int, query: int, features: int) -> float:
    """Forward + backward FLOPs of one step (3x the forward pass)."""
    cells_s, cells_q = tables * support * (features + 1), tables * query * (features + 1)
    dense = 48 * dim * dim * (cells_s + cells_q)  # q, k, v, o twice and two 4x MLPs, 2 FLOPs per MAC
    column_attention = 4 * dim * support * (cells_s + cells_q)  # every cell attends to the support column
    row_attention = 4 * dim * (features + 1) * (cells_s + cells_q)
    return 3.0 * layers * (dense + column_attention + row_attention)


def run(model: torch.nn.Module, forward, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    optimizer = torch.optim.AdamW(optimizer_groups(model, 0.01), lr=1e-4, fused=device.type == "cuda")
    generator = torch.Generator().manual_seed(0)
    x_support = torch.randn(args.tables, args.support, args.features, generator=generator).to(device)
    x_query = torch.randn(args.tables, args.query, args.features, generator=generator).to(device)
    y_support = torch.randint(0, 10, (args.tables, args.support), generator=generator).to(device)
    y_query = torch.randint(0, 10, (args.tables, args.query), generator=generator).to(device)
    autocast = autocast_context(device, resolve_precision("auto", device))  # bf16 on CUDA, float32 on the CPU

    def one_step() -> None:
        with autocast:
            logits = forward(x_support.clone(), y_support.clone(), x_query.clone())
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y_query.reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    flops = step_flops(args.dim, args.layers, args.tables, args.support, args.query, args.features)
    return {
        "s_per_step": seconds,
        "tables_per_s": args.tables / seconds,
        "tflops": flops / seconds / 1e12,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--tables", type=int, default=32, help="tables per step")
    parser.add_argument("--support", type=int, default=512)
    parser.add_argument("--query", type=int, default=128)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--checkpointing", action="store_true", help="activation checkpointing in our model")
    parser.add_argument("--compile", action="store_true", help="torch.compile our model")
    parser.add_argument("--official", action="store_true", help="also run AutoGluon's Tab2D (dev only)")
    parser.add_argument("--official-path", default=None,
                        help="folder to add to sys.path for autogluon (scripts/vendor_official.py writes one)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device {name}; model dim {args.dim} x {args.layers} layers; {args.tables} tables x "
          f"({args.support}+{args.query}) rows x {args.features} features per step")

    torch.manual_seed(0)
    ours = MitraModel(MitraConfig(dim=args.dim, dim_output=10, n_layers=args.layers, n_heads=args.heads)).to(device)
    ours.gradient_checkpointing = args.checkpointing
    ours.train()
    forward = torch.compile(ours) if args.compile else ours
    results = {"ours": run(ours, forward, args, device)}

    if args.official:
        try:
            official = official_tab2d(args.dim, args.layers, args.heads, device, args.official_path).train()
        except ImportError as err:
            print(f"official code not importable ({err}); install autogluon.tabular[mitra] in a dev venv")
        else:
            b, s, q, f = args.tables, args.support, args.query, args.features

            def official_forward(xs, ys, xq):
                return official(xs, ys, xq, torch.zeros(b, f, dtype=torch.bool, device=device),
                                torch.zeros(b, s, dtype=torch.bool, device=device),
                                torch.zeros(b, q, dtype=torch.bool, device=device))

            results["official"] = run(official, official_forward, args, device)

    for label, r in results.items():
        print(f"{label:9s} {r['s_per_step']:8.3f} s/step {r['tables_per_s']:9.1f} tables/s "
              f"{r['tflops']:7.1f} TFLOP/s  peak {r['peak_gib']:.1f} GiB")
    if "official" in results:
        ratio = results["ours"]["tables_per_s"] / results["official"]["tables_per_s"]
        print(f"speed ratio ours/official: {ratio:.2f}x")


if __name__ == "__main__":
    main()
