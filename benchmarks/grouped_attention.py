"""Why retrieval ('nearest') costs more per query row than one shared support set: the attention alone.

With ``support_selection="nearest"`` every neighbourhood has its own support keys and values, and a
predict call's rows are split among the neighbourhoods they fall in; ``"random"`` has one support
set for all the call's rows. This script times the column attention of one layer (the shipped
small model's shape: 4 heads of 24, one column per feature plus the label's, bf16 keys/values as
cached under the default ``inference_precision="auto"`` on CPUs with native bf16) against
``--support-rows`` keys, per query row, three ways in the same process:

* ``per group``: one ``scaled_dot_product_attention`` call per neighbourhood (what the model does),
* ``one call``: all neighbourhoods in a single batched call (equal group sizes, so no padding),
* ``shared``: every row against one support set (``"random"``; the baseline of every ratio),

and the keys/values read per query row, with the bandwidth that reading implies. Run with one
thread::

    OMP_NUM_THREADS=1 python benchmarks/grouped_attention.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _measure import cpu_name  # benchmarks/ is the script's folder

HEADS, HEAD_DIM, DTYPE = 4, 24, torch.bfloat16  # the small model's column attention, bf16 caches


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def time_group_size(groups: int, rows: int, support_rows: int, columns: int,
                    repeats: int) -> tuple[float, float, float]:
    """Seconds of one layer's column attention for ``groups`` x ``rows`` query rows: per group, one call, shared."""
    keys = torch.randn(groups, columns, HEADS, support_rows, HEAD_DIM, dtype=DTYPE)
    values = torch.randn_like(keys)
    query = torch.randn(columns, HEADS, groups * rows, HEAD_DIM, dtype=DTYPE)
    stacked = query.view(columns, HEADS, groups, rows, HEAD_DIM).permute(2, 0, 1, 3, 4).contiguous()
    flat = (groups * columns, HEADS)

    def per_group() -> object:
        return [F.scaled_dot_product_attention(part, keys[g], values[g])
                for g, part in enumerate(query.split(rows, dim=2))]

    def one_call() -> object:
        return F.scaled_dot_product_attention(stacked.view(*flat, rows, HEAD_DIM), keys.view(*flat, -1, HEAD_DIM),
                                              values.view(*flat, -1, HEAD_DIM))

    def shared() -> object:
        return F.scaled_dot_product_attention(query, keys[0], values[0])

    return tuple(best_seconds(fn, repeats) for fn in (per_group, one_call, shared))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--support-rows", type=int, default=2048)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--query-rows", type=int, default=500, help="query rows of the call")
    parser.add_argument("--rows-per-group", type=int, nargs="+", default=[5, 10, 25, 100, 500])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(0)
    columns = args.features + 1
    kv_bytes = 2 * columns * HEADS * args.support_rows * HEAD_DIM * torch.finfo(DTYPE).bits // 8
    print(f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
          f"{args.support_rows} support rows x {columns} columns, {args.query_rows} query rows, "
          f"keys + values {kv_bytes / 2**20:.1f} MiB per support set and layer")
    print(f"{'rows/group':>10} {'groups':>6} {'per group ms/row':>17} {'one call ms/row':>16} "
          f"{'shared ms/row':>14} {'per group / shared':>19} {'KiB read/row':>13} {'GB/s':>6}")
    for rows in args.rows_per_group:
        groups = max(1, args.query_rows // rows)
        grouped_s, batched_s, shared_s = time_group_size(groups, rows, args.support_rows, columns, args.repeats)
        n = groups * rows
        print(f"{rows:>10} {groups:>6} {grouped_s / n * 1e3:>17.4f} {batched_s / n * 1e3:>16.4f} "
              f"{shared_s / n * 1e3:>14.4f} {grouped_s / shared_s:>18.2f}x {groups * kv_bytes / n / 1024:>13.0f} "
              f"{groups * kv_bytes / grouped_s / 1e9:>6.1f}")


if __name__ == "__main__":
    main()
