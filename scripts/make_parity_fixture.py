"""Build the parity fixture: small random-weight *official* Mitra models, fixed inputs and the
official outputs, for the weight-compatibility tests in ``tests/``.

This is a dev-only script. It needs the official AutoGluon code, which our package and its test
suite do NOT depend on. It runs in a throw-away virtualenv that you can recreate from scratch:

    python -m venv /tmp/agvenv \\
      && /tmp/agvenv/bin/pip install torch==2.13.0 \\
      && /tmp/agvenv/bin/pip install "autogluon.tabular[mitra]==1.6.3"

(On a machine without a GPU, install the CPU wheel of torch, e.g. add
``--index-url https://download.pytorch.org/whl/cpu`` to the first ``pip install``.)

Then, from the repository root:

    /tmp/agvenv/bin/python scripts/make_parity_fixture.py [--out tests/fixtures/parity]

What it writes, for each task in {classification, regression}, under ``<out>/<task>/``:

* ``config.json`` + ``model.safetensors``: a small official ``Tab2D`` (dim=64, n_layers=2,
  n_heads=4; dim_output=10 for classification, 1 for regression), saved with the official
  ``save_pretrained``. The official init draws N(0, 1) only for the embeddings and keeps the
  PyTorch defaults elsewhere (LayerNorm weight 1, bias 0), so every LayerNorm weight is overwritten
  with 1 + 0.1*N(0,1) and every LayerNorm bias with 0.1*N(0,1) (seeded) to make a parity test
  sensitive to every tensor.
* ``cases.safetensors``: for every case ``<name>``, the keys ``case_<name>.x_support``
  [b, n_s, f] float32, ``case_<name>.y_support`` [b, n_s] (int64 class ids for classification,
  float32 in [0, 1] for regression), ``case_<name>.x_query`` [b, n_q, f] float32,
  ``case_<name>.output`` (official fp32 forward, no autocast) and ``case_<name>.output_bf16``
  (official forward under ``torch.autocast("cpu", dtype=torch.bfloat16)``, as the official
  pipeline runs it; the bf16 result is upcast losslessly to float32 for storage). Outputs are
  logits [b, n_q, 10] for classification and predictions [b, n_q] for regression. All padding
  masks are all-False (no padding).
* ``cases.json``: case names, descriptions, shapes, versions, date, and a few numbers (bf16 vs
  fp32 gap, permutation-invariance checks).

Everything is seeded (torch and numpy, seed 0) and torch runs single-threaded, so reruns on the
same machine give the same fixture (apart from the date in ``cases.json``).

The script also prints sanity numbers (it never fails on them): the max abs difference of the
official outputs when the support rows are permuted (the model has no positional information, so
this should be float-rounding noise only), and a few related invariance checks.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

try:
    import autogluon.tabular as _agt
    from autogluon.tabular.models.mitra._internal.models.tab2d import Tab2D
except ImportError as exc:  # pragma: no cover - dev-only script
    sys.exit(
        f"This script needs the official AutoGluon Mitra code ({exc}).\n"
        "Recreate the throw-away venv as described in the module docstring and run it with "
        "/tmp/agvenv/bin/python."
    )

SEED = 0
MODEL_KW = dict(dim=64, n_layers=2, n_heads=4)
MAX_CLASSES = 10  # dim_output of the classifier
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "parity"

# k (number of classes actually used) per case and per batch element, for classification.
N_CLASSES = {
    "a_small_continuous": [2],
    "b_mixed_types": [3],
    "c_tiny": [2],
    "d_wide": [10],
    "e_batch3": [4, 7, 10],
}


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def build_model(task: str, dim_output: int | None = None) -> Tab2D:
    """A random-weight official Tab2D of the fixture's shape (``dim_output``: 10 classes or a scalar
    regression head by default), every LayerNorm perturbed (seeded by the caller)."""
    if dim_output is None:
        dim_output = MAX_CLASSES if task == "CLASSIFICATION" else 1
    model = Tab2D(
        dim=MODEL_KW["dim"],
        dim_output=dim_output,
        n_layers=MODEL_KW["n_layers"],
        n_heads=MODEL_KW["n_heads"],
        task=task,
        use_pretrained_weights=False,
        path_to_weights="",
        device="cpu",
    )
    n_ln = 0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(1.0 + 0.1 * torch.randn_like(module.weight))
                module.bias.copy_(0.1 * torch.randn_like(module.bias))
                n_ln += 1
    assert n_ln == 4 * MODEL_KW["n_layers"] + 1, n_ln
    assert not model.use_flash_attn
    return model.eval()


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def push_out_of_range(rng: np.random.Generator, xs: np.ndarray, xq: np.ndarray, cols, n_cells: int) -> None:
    """In place: put a few query values beyond the support min/max and a few exactly on them.

    xs: [n_s, f], xq: [n_q, f] (one table).
    """
    n_q = xq.shape[0]
    cols = list(cols)
    for i in range(n_cells):
        r = rng.integers(n_q)
        c = cols[rng.integers(len(cols))]
        lo, hi = xs[:, c].min(), xs[:, c].max()
        span = max(hi - lo, 1.0)
        kind = i % 4
        if kind == 0:
            xq[r, c] = hi + span * rng.uniform(0.05, 2.0)  # above the support range
        elif kind == 1:
            xq[r, c] = lo - span * rng.uniform(0.05, 2.0)  # below the support range
        elif kind == 2:
            xq[r, c] = hi  # exactly the support max
        else:
            xq[r, c] = lo  # exactly the support min


def case_a(rng):
    n_s, n_q, f = 50, 20, 3
    xs = rng.standard_normal((n_s, f))
    xq = 1.3 * rng.standard_normal((n_q, f))
    push_out_of_range(rng, xs, xq, range(f), 6)
    return xs[None], xq[None], "n_s=50, n_q=20, f=3 continuous N(0,1) features"


def _mixed_table(rng, n):
    cols = [
        rng.standard_normal(n),  # 0 continuous normal
        rng.lognormal(0.0, 1.0, n),  # 1 skewed positive
        rng.uniform(-5.0, 5.0, n),  # 2 uniform
        np.round(rng.standard_normal(n), 1),  # 3 continuous rounded to 0.1 (some ties)
        10.0 + 3.0 * rng.standard_t(3, n),  # 4 heavy-ish tails, offset
        rng.integers(0, 2, n).astype(float),  # 5 binary (ties)
        rng.integers(0, 3, n).astype(float),  # 6 three levels (ties)
        rng.integers(0, 5, n).astype(float),  # 7 five levels (ties)
        rng.choice([-1.0, 2.0, 7.0, 100.0], size=n, p=[0.6, 0.2, 0.15, 0.05]),  # 8 unbalanced levels
        np.full(n, 3.0),  # 9 constant
        rng.standard_normal(n),  # 10 heavy outliers (set below)
        rng.standard_normal(n) * 1e-3 + 1e4,  # 11 large offset, tiny scale
    ]
    x = np.stack(cols, axis=1)
    n_out = max(2, n // 20)
    idx = rng.choice(n, size=n_out, replace=False)
    x[idx, 10] = rng.choice([-1.0, 1.0], size=n_out) * 10.0 ** rng.uniform(3, 6, n_out)
    return x


def case_b(rng):
    n_s, n_q = 200, 37
    xs = _mixed_table(rng, n_s)
    xq = _mixed_table(rng, n_q)
    # categorical-like query values equal to support levels already (exact ties with quantile
    # boundaries); add a few unseen levels and values beyond the range
    xq[0, 6] = 5.0  # unseen level above
    xq[1, 7] = -1.0  # unseen level below
    xq[2, 8] = 3.0  # unseen level in between
    xq[3, 9] = 4.0  # constant column: query differs from the constant
    xq[4, 9] = -100.0
    xq[5, 10] = 1e7  # beyond the outliers
    xq[6, 10] = -1e7
    push_out_of_range(rng, xs, xq, [0, 1, 2, 3, 4, 11], 8)
    return xs[None], xq[None], (
        "n_s=200, n_q=37, f=12: continuous columns (normal, lognormal, uniform, rounded, t3), "
        "integer-valued categorical-like columns with 2/3/5/4 levels (ties), one constant column "
        "(col 9), one column with heavy outliers (col 10, |x| up to 1e6), one with a large offset "
        "and tiny scale (col 11); unseen levels and out-of-range values in the query"
    )


def case_c(rng):
    xs = rng.standard_normal((7, 1))
    xq = np.array([[xs.min() - 1.0], [xs.max() + 0.5], [xs[3, 0]], [0.5 * (xs[0, 0] + xs[1, 0])], [xs.min()]])
    return xs[None], xq[None], (
        "tiny: n_s=7, n_q=5, f=1; query = below min, above max, equal to a support value, "
        "between two support values, equal to min"
    )


def case_d(rng):
    n_s, n_q, f = 300, 64, 30
    scales = 10.0 ** rng.uniform(-2, 2, f)
    offsets = rng.normal(0, 5, f)
    xs = rng.standard_normal((n_s, f)) * scales + offsets
    xq = 1.2 * rng.standard_normal((n_q, f)) * scales + offsets
    int_cols = [3, 11, 19, 27]
    for c in int_cols:
        levels = int(rng.integers(2, 8))
        xs[:, c] = rng.integers(0, levels, n_s)
        xq[:, c] = rng.integers(0, levels, n_q)
    push_out_of_range(rng, xs, xq, [c for c in range(f) if c not in int_cols], 12)
    return xs[None], xq[None], (
        "wide: n_s=300, n_q=64, f=30 continuous columns with scales 1e-2..1e2 and offsets, four "
        "integer-valued columns (2-7 levels)"
    )


def case_e(rng):
    b, n_s, n_q, f = 3, 40, 10, 5
    xs = np.empty((b, n_s, f))
    xq = np.empty((b, n_q, f))
    # table 0: normal; table 1: uniform + integer columns; table 2: lognormal with an outlier
    xs[0], xq[0] = rng.standard_normal((n_s, f)), rng.standard_normal((n_q, f))
    xs[1], xq[1] = rng.uniform(0, 1, (n_s, f)), rng.uniform(-0.1, 1.1, (n_q, f))
    xs[1][:, 2], xq[1][:, 2] = rng.integers(0, 3, n_s), rng.integers(0, 3, n_q)
    xs[2], xq[2] = rng.lognormal(0, 1, (n_s, f)), rng.lognormal(0, 1, (n_q, f))
    xs[2][5, 4] = 1e5
    for t in range(b):
        push_out_of_range(rng, xs[t], xq[t], range(f), 3)
    return xs, xq, (
        "batch b=3 of equal-size tables (n_s=40, n_q=10, f=5), different data per table "
        "(normal / uniform with an integer column / lognormal with an outlier), no padding"
    )


CASE_BUILDERS = [
    ("a_small_continuous", case_a),
    ("b_mixed_types", case_b),
    ("c_tiny", case_c),
    ("d_wide", case_d),
    ("e_batch3", case_e),
]


def _rank_features(x: np.ndarray) -> np.ndarray:
    """Per-column ranks of one table scaled to [-1, 1] (robust to outliers, constant -> 0)."""
    n = x.shape[0]
    r = np.argsort(np.argsort(x, axis=0, kind="stable"), axis=0, kind="stable").astype(float)
    z = 2.0 * r / max(n - 1, 1) - 1.0
    z[:, np.ptp(x, axis=0) == 0] = 0.0
    return z


def make_targets(rng, task: str, name: str, xs: np.ndarray) -> np.ndarray:
    b, n_s, f = xs.shape
    ys = []
    for t in range(b):
        z = _rank_features(xs[t])
        w1 = rng.standard_normal(f)
        w2 = rng.standard_normal(f)
        score = np.sin(1.5 * z @ w1 / np.sqrt(f)) + 0.5 * (z @ w2 / np.sqrt(f)) ** 2
        score = score + 0.1 * rng.standard_normal(n_s)
        if task == "CLASSIFICATION":
            k = N_CLASSES[name][t]
            # balanced bins of the score, then a random relabelling of the bins
            order = np.argsort(score, kind="stable")
            y = np.empty(n_s, dtype=np.int64)
            y[order] = (np.arange(n_s) * k) // n_s
            y = rng.permutation(k)[y]
            assert y.min() >= 0 and y.max() < min(k, MAX_CLASSES)
            ys.append(y)
        else:
            y = (score - score.min()) / (score.max() - score.min())
            ys.append(y.astype(np.float32))
    return np.stack(ys)


# --------------------------------------------------------------------------------------------
# Official forward
# --------------------------------------------------------------------------------------------

_observations: dict[str, set] = {"output_dtype_fp32": set(), "output_dtype_bf16": set(), "inputs_modified": set()}


def official_forward(model: Tab2D, xs: torch.Tensor, ys: torch.Tensor, xq: torch.Tensor, bf16: bool) -> torch.Tensor:
    b, n_s, f = xs.shape
    n_q = xq.shape[1]
    pad_f = torch.zeros((b, f), dtype=torch.bool)
    pad_s = torch.zeros((b, n_s), dtype=torch.bool)
    pad_q = torch.zeros((b, n_q), dtype=torch.bool)
    # forward modifies x_support (and, for padded rows, y_support) in place -> pass clones
    xs_in, ys_in, xq_in = xs.clone(), ys.clone(), xq.clone()
    with torch.no_grad():
        if bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(xs_in, ys_in, xq_in, pad_f, pad_s, pad_q)
        else:
            out = model(xs_in, ys_in, xq_in, pad_f, pad_s, pad_q)
    _observations["output_dtype_bf16" if bf16 else "output_dtype_fp32"].add(str(out.dtype))
    for nm, a, a_in in (("x_support", xs, xs_in), ("y_support", ys, ys_in), ("x_query", xq, xq_in)):
        if not torch.equal(a, a_in):
            _observations["inputs_modified"].add(nm)
    return out.float().contiguous()


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def build_task(task: str, out_dir: Path, date: str, command: str) -> dict:
    task_dir = out_dir / task.lower()
    task_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(SEED)
    model = build_model(task)
    model.save_pretrained(str(task_dir))

    # round trip through the official loader: the saved files must reproduce the model exactly
    reloaded = Tab2D.from_pretrained(str(task_dir), device="cpu").eval()
    sd0, sd1 = model.state_dict(), reloaded.state_dict()
    assert sd0.keys() == sd1.keys() and all(torch.equal(sd0[k], sd1[k]) for k in sd0)

    rng = np.random.default_rng(SEED)
    tensors: dict[str, torch.Tensor] = {}
    cases_meta = []
    print(f"\n=== {task} ({task_dir}) ===")
    for name, builder in CASE_BUILDERS:
        xs_np, xq_np, desc = builder(rng)
        ys_np = make_targets(rng, task, name, xs_np)
        xs = torch.from_numpy(np.ascontiguousarray(xs_np, dtype=np.float32))
        xq = torch.from_numpy(np.ascontiguousarray(xq_np, dtype=np.float32))
        ys = torch.from_numpy(np.ascontiguousarray(ys_np))
        assert xs.dtype == xq.dtype == torch.float32
        assert ys.dtype == (torch.int64 if task == "CLASSIFICATION" else torch.float32)

        out = official_forward(model, xs, ys, xq, bf16=False)
        out_bf16 = official_forward(model, xs, ys, xq, bf16=True)
        out_reloaded = official_forward(reloaded, xs, ys, xq, bf16=False)
        assert torch.equal(out, out_reloaded), "from_pretrained round trip changed the outputs"

        # --- sanity checks (printed, never fatal) ---
        b, n_s, f = xs.shape
        n_q = xq.shape[1]
        g = torch.Generator().manual_seed(SEED + 1)
        perm_s = torch.randperm(n_s, generator=g)
        d_rows = max_abs(official_forward(model, xs[:, perm_s], ys[:, perm_s], xq, bf16=False), out)
        perm_f = torch.randperm(f, generator=g)
        d_cols = max_abs(official_forward(model, xs[:, :, perm_f], ys, xq[:, :, perm_f], bf16=False), out)
        perm_q = torch.randperm(n_q, generator=g)
        d_qperm = max_abs(official_forward(model, xs, ys, xq[:, perm_q], bf16=False), out[:, perm_q])
        n_half = max(1, n_q // 2)
        d_qsub = max_abs(official_forward(model, xs, ys, xq[:, :n_half], bf16=False), out[:, :n_half])
        d_bf16 = max_abs(out_bf16, out)
        print(
            f"case {name:20s} x_support {tuple(xs.shape)} x_query {tuple(xq.shape)} "
            f"output {tuple(out.shape)} |out|max={float(out.abs().max()):.3f}\n"
            f"    max|diff| support-row permutation: {d_rows:.3e}   feature permutation: {d_cols:.3e}   "
            f"query permutation: {d_qperm:.3e}   query subset: {d_qsub:.3e}   bf16-vs-fp32: {d_bf16:.3e}"
        )

        key = f"case_{name}"
        tensors[f"{key}.x_support"] = xs.contiguous()
        tensors[f"{key}.y_support"] = ys.contiguous()
        tensors[f"{key}.x_query"] = xq.contiguous()
        tensors[f"{key}.output"] = out.contiguous()
        tensors[f"{key}.output_bf16"] = out_bf16.contiguous()

        meta = {
            "name": name,
            "description": desc,
            "batch_size": b,
            "n_support": n_s,
            "n_query": n_q,
            "n_features": f,
            "shapes": {
                k[len(key) + 1 :]: list(v.shape) for k, v in tensors.items() if k.startswith(key + ".")
            },
            "dtypes": {
                k[len(key) + 1 :]: str(v.dtype).replace("torch.", "")
                for k, v in tensors.items()
                if k.startswith(key + ".")
            },
            "max_abs_output": float(out.abs().max()),
            "max_abs_diff_bf16_vs_fp32": d_bf16,
            "sanity_max_abs_diff": {
                "support_row_permutation": d_rows,
                "feature_permutation": d_cols,
                "query_row_permutation": d_qperm,
                "query_subset": d_qsub,
            },
        }
        if task == "CLASSIFICATION":
            meta["n_classes_per_table"] = N_CLASSES[name]
        cases_meta.append(meta)

    save_file(tensors, str(task_dir / "cases.safetensors"))

    info = {
        "task": task,
        "model_config": json.loads((task_dir / "config.json").read_text()),
        "seed": SEED,
        "layernorm_perturbation": "weight = 1 + 0.1*N(0,1), bias = 0.1*N(0,1) for every LayerNorm, "
        "drawn from torch.manual_seed(0) after the official init",
        "padding": "none: padding_features, padding_obs_support, padding_obs_query all False",
        "output": "official Tab2D.forward, float32, torch.no_grad(), no autocast, CPU (SDPA path)",
        "output_bf16": "official Tab2D.forward under torch.autocast('cpu', dtype=torch.bfloat16); "
        "the bf16 result is stored upcast to float32",
        "output_shape": "[b, n_query, 10] logits" if task == "CLASSIFICATION" else "[b, n_query]",
        "versions": {
            "autogluon.tabular": _agt.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "date": date,
        "command": command,
        "cases": cases_meta,
    }
    (task_dir / "cases.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: tests/fixtures/parity)")
    args = p.parse_args(argv)

    torch.set_num_threads(1)  # deterministic reductions -> reproducible outputs
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    date = _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    print(f"autogluon.tabular {_agt.__version__}, torch {torch.__version__}, numpy {np.__version__}")

    command = " ".join(["/tmp/agvenv/bin/python", "scripts/make_parity_fixture.py",
                        *(argv if argv is not None else sys.argv[1:])])
    for task in ("CLASSIFICATION", "REGRESSION"):
        build_task(task, args.out, date, command)

    print("\nobserved official behaviour:")
    print(f"    output dtype without autocast: {sorted(_observations['output_dtype_fp32'])}")
    print(f"    output dtype under bf16 autocast: {sorted(_observations['output_dtype_bf16'])}")
    print(f"    inputs modified in place (no padding): {sorted(_observations['inputs_modified']) or 'none'}")

    total = 0
    print("\nfiles:")
    for path in sorted(args.out.rglob("*")):
        if path.is_file():
            size = path.stat().st_size
            total += size
            print(f"    {path}  {size:,} B")
    print(f"    total {total:,} B ({total / 2**20:.2f} MiB)")
    if total > 2 * 2**20:
        print("WARNING: fixture is larger than 2 MiB")


if __name__ == "__main__":
    main()
