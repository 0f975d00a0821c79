"""Build the parity fixture for the Mitra-v2 binned regressor: a small random-weight *official*
``Tab2D`` with a 1,000-bin regression head, fixed inputs, and the official y-side transform, bin
mapping, logits and point predictions.

This is a dev-only script, the v2 companion of ``scripts/make_parity_fixture.py`` (which stays as
it is). It needs the official code, which our package and its test suite do NOT depend on. It runs
in the same throw-away virtualenv, plus the mitra-finetune package (installed without its
dependencies: its own requirements are AutoGluon's, and ``tabarena`` is only needed for the bagged
fit, which this script does not run):

    python -m venv /tmp/agvenv \\
      && /tmp/agvenv/bin/pip install torch==2.13.0 \\
      && /tmp/agvenv/bin/pip install "autogluon.tabular[mitra]==1.6.3" \\
      && /tmp/agvenv/bin/pip install --no-deps mitra-finetune==0.3.0

(On a machine without a GPU, install the CPU wheel of torch, e.g. add
``--index-url https://download.pytorch.org/whl/cpu`` to the first ``pip install``.)

Then, from the repository root:

    /tmp/agvenv/bin/python scripts/make_parity_fixture_v2.py [--out tests/fixtures/parity/regression-binned]

What the official code does with a 1,000-bin regressor, and what this script pins:

* AutoGluon 1.6.3 ships the whole binned-regression path in ``TrainerFinetune`` (reached when
  ``task == REGRESSION`` and ``hyperparams["regression_loss"] == CROSS_ENTROPY``; no public
  hyperparameter selects it). mitra-finetune 0.3.0 (``patches.install_reg_ce_patches``) switches it
  on by forcing ``regression_loss = CROSS_ENTROPY`` and ``dim_output = n_bins`` in
  ``MitraBase._create_config``, and rewrites the two decode lines of ``TrainerFinetune.predict`` and
  ``evaluate`` from "argmax bin centre" to "softmax-weighted mean of the bin centres".
* This script builds exactly that configuration, runs the official ``TrainerFinetune.predict``
  twice per case (stock decode, then after ``install_reg_ce_patches``), and records the model's
  inputs and outputs with forward hooks, so the stored support bin ids and logits are the ones the
  official pipeline fed to and got from the model.

Deviations from the production pipeline, all on the X side or in RNG draws (the y side, the bin
mapping and the decode are untouched):

* ``random_mirror_x`` is off, and the inputs have no NaN and no constant column, so the official
  ``Preprocessor.transform_X`` is the identity on the stored float32 ``x_support`` / ``x_query``
  (it only casts to float32). The X side is pinned by the v1 fixture.
* The per-chunk support draw (``rng.choice(n_support, n_support, replace=False)``, a permutation
  when the support is below the cap) is replaced by the identity, so the support order inside the
  model equals the stored order. The model is permutation invariant up to float rounding.
* ``regression_mirror`` (officially a fair coin from the global NumPy RNG at ``Preprocessor.fit``)
  is set explicitly per case and stored.
* The fp32 logits come from ``precision = "float32"``: CPU autocast does not support float32, so
  torch disables it and the forward runs in plain float32. The official default
  (``"bfloat16"``, autocast) is also run, and its end-to-end point predictions are stored as
  ``*_bf16``.

What it writes under ``<out>/``: ``config.json`` + ``model.safetensors`` (official
``save_pretrained``; Tab2D(dim=64, n_layers=2, n_heads=4, task=REGRESSION, dim_output=1000),
LayerNorms perturbed as in the v1 script), ``cases.safetensors`` and ``cases.json``. See
``tests/fixtures/parity/README.md`` for the key list.

Everything is seeded (torch and numpy, seed 0) and torch runs single-threaded.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

try:
    import autogluon.tabular as _agt
    from autogluon.tabular.models.mitra import sklearn_interface
    from autogluon.tabular.models.mitra._internal.config.enums import LossName, Task
    from autogluon.tabular.models.mitra._internal.core import (
        trainer_finetune as trainer_module,
    )
    from autogluon.tabular.models.mitra._internal.models.tab2d import Tab2D
except ImportError as exc:  # pragma: no cover - dev-only script
    sys.exit(
        f"This script needs the official AutoGluon Mitra code ({exc}).\n"
        "Recreate the throw-away venv as described in the module docstring and run it with "
        "/tmp/agvenv/bin/python."
    )
try:
    import mitra_finetune
    from mitra_finetune import patches as mf_patches
    from mitra_finetune.distribution import RegressionDistribution
except ImportError as exc:  # pragma: no cover - dev-only script
    sys.exit(f"This script needs mitra-finetune 0.3.0 ({exc}): pip install --no-deps mitra-finetune==0.3.0")

# The v1 fixture's script, beside this one (its folder is on sys.path when this runs as a script).
from make_parity_fixture import build_model as build_model_v1_script  # noqa: E402

SEED = 0
N_BINS = 1000
MODEL_KW = dict(dim=64, n_layers=2, n_heads=4)
QUANTILE_LEVELS = [0.05, 0.25, 0.5, 0.75, 0.95]
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "parity" / "regression-binned"


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


def build_model() -> Tab2D:
    model = build_model_v1_script("REGRESSION", dim_output=N_BINS)  # the v1 fixture's model code, 1,000 bins
    # dim_output > 1 on REGRESSION: the class-style label embedding, one row per bin
    assert type(model.y_embedding).__name__ == "Tab2DEmbeddingYClasses"
    assert tuple(model.y_embedding.y_embedding.weight.shape) == (N_BINS, MODEL_KW["dim"])
    return model.eval()


# --------------------------------------------------------------------------------------------
# Official trainer, with recording hooks
# --------------------------------------------------------------------------------------------


class IdentityDraw(np.random.RandomState):
    """RandomState whose full-size draw without replacement is the identity permutation.

    ``DatasetFinetune.__getitem__`` draws ``choice(n_support, size=min(cap, n_support),
    replace=False)``; below the cap that is a permutation, which the model ignores up to float
    rounding. Returning ``arange`` keeps the support order of the fixture.
    """

    def choice(self, a, size=None, replace=True, p=None):
        if isinstance(a, (int, np.integer)) and not replace and p is None and size == a:
            return np.arange(a)
        raise AssertionError(f"unexpected draw: choice({a!r}, size={size!r}, replace={replace!r})")


class Recorder:
    """Forward pre-hook + hook: keeps clones of the model inputs and its output for every call."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls: list[dict] = []
        self._pending = None
        model.register_forward_pre_hook(self._pre)
        model.register_forward_hook(self._post)

    def _pre(self, module, args):
        self._pending = [a.detach().clone() for a in args]

    def _post(self, module, args, out):
        xs, ys, xq, pf, ps, pq = self._pending
        self.calls.append(dict(x_support=xs, y_support=ys, x_query=xq, pad_f=pf, pad_s=ps, pad_q=pq,
                               out=out.detach().clone()))
        self._pending = None

    def take_one(self) -> dict:
        assert len(self.calls) == 1, f"expected one forward per predict, got {len(self.calls)}"
        call = self.calls.pop()
        for key in ("pad_f", "pad_s", "pad_q"):
            assert not bool(call[key].any()), f"unexpected padding in {key}"
        return call


def make_trainer(model_dir: Path) -> tuple[trainer_module.TrainerFinetune, Recorder]:
    """A TrainerFinetune configured as mitra-finetune configures it for a 1,000-bin regressor."""
    est = sklearn_interface.MitraRegressor(device="cpu", hf_model=str(model_dir), fine_tune=False, seed=SEED,
                                           verbose=False)
    # stock AutoGluon config (MitraRegressor.fit passes dim_output=1) ...
    cfg, _ = est._create_config("regression", 1, None)
    assert cfg.hyperparams["regression_loss"] == "mse" and cfg.hyperparams["dim_output"] == 1
    # ... then exactly what mitra_finetune.patches.install_reg_ce_patches' _create_config does
    cfg.task = Task.REGRESSION
    cfg.hyperparams["regression_loss"] = LossName.CROSS_ENTROPY
    cfg.hyperparams["dim_output"] = N_BINS
    # fixture-only deviations (see module docstring)
    cfg.hyperparams["random_mirror_x"] = False
    cfg.hyperparams["precision"] = "float32"
    model = Tab2D.from_pretrained(str(model_dir), device="cpu")
    trainer = trainer_module.TrainerFinetune(cfg, model, n_classes=0, device="cpu", rng=IdentityDraw(SEED),
                                             verbose=False)
    assert trainer.bins.dtype == torch.float32 and trainer.bins.shape == (N_BINS + 1,)
    return trainer, Recorder(trainer.model)


def fit_y_side(trainer, x_fit: np.ndarray, y_fit: np.ndarray, mirror: bool, draw_seed: int) -> dict:
    """Official Preprocessor.fit on the fit rows; the regression mirror is then set explicitly."""
    np.random.seed(draw_seed)  # the official mirror coin comes from the global NumPy RNG
    trainer.preprocessor.fit(x_fit.copy(), y_fit.copy())
    drawn = bool(trainer.preprocessor.regression_mirror)
    trainer.preprocessor.regression_mirror = bool(mirror)
    pp = trainer.preprocessor
    assert pp.random_mirror_regression and not pp.random_mirror_x and not pp.singular_features.any()
    return {"y_min": float(pp.y_min), "y_max": float(pp.y_max), "mirror": bool(mirror),
            "mirror_drawn_by_official_fit": drawn}


def official_predict(trainer, rec: Recorder, xs: np.ndarray, ys: np.ndarray, xq: np.ndarray, precision: str):
    trainer.cfg.hyperparams["precision"] = precision
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pred = trainer.predict(xs.copy(), ys.copy(), xq.copy())
    call = rec.take_one()
    msgs = sorted({str(w.message).split("\n")[0][:120] for w in caught})
    return np.asarray(pred), call, msgs


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _rank_features(x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    r = np.argsort(np.argsort(x, axis=0, kind="stable"), axis=0, kind="stable").astype(float)
    return 2.0 * r / max(n - 1, 1) - 1.0


def features(rng, n_s: int, n_q: int, f: int) -> tuple[np.ndarray, np.ndarray]:
    scales = 10.0 ** rng.uniform(-1, 1, f)
    offsets = rng.normal(0, 3, f)
    xs = rng.standard_normal((n_s, f)) * scales + offsets
    xq = 1.2 * rng.standard_normal((n_q, f)) * scales + offsets
    xq[0, 0] = xs[:, 0].max() + 2 * scales[0]  # one value beyond the support range
    return xs.astype(np.float32), xq.astype(np.float32)


def score(rng, x_all: np.ndarray, n_s: int) -> np.ndarray:
    """A smooth function of the (joint) ranks plus noise, roughly in [-1.5, 1.5]."""
    z = _rank_features(x_all.astype(np.float64))
    f = x_all.shape[1]
    w1, w2 = rng.standard_normal(f), rng.standard_normal(f)
    s = np.sin(1.5 * z @ w1 / np.sqrt(f)) + 0.5 * (z @ w2 / np.sqrt(f)) ** 2
    return s + 0.1 * rng.standard_normal(len(s))


def make_case(rng, name: str):
    """Returns dict(xs, xq, ys (float64, y units), yq_true, members=[dict(fit_index, mirror)], desc)."""
    if name == "b_large_scale_mirror":
        n_s, n_q, f = 96, 4, 6
        xs, xq = features(rng, n_s, n_q, f)
        s = score(rng, np.concatenate([xs, xq]), n_s)
        y = 2.0e4 + 8.0e3 * s
        members = [dict(fit_index=np.arange(n_s), mirror=True)]
        desc = ("n_s=96, n_q=4, f=6; y = 2e4 + 8e3*score (large scale, range ~2e4); "
                "scaling fitted on the whole support; mirrored")
    elif name == "c_negative_subset_fit":
        n_s, n_q, f = 64, 5, 4
        xs, xq = features(rng, n_s, n_q, f)
        s = score(rng, np.concatenate([xs, xq]), n_s)
        y = -350.0 + 120.0 * s
        # the last 8 support rows play a bag child's held-out fold (mitra-finetune's default
        # "heldout in support"): they are in the support but not in the scaling fit; two of them
        # fall beyond the bin grid (scaled < -0.5 and > 1.5) and must be clamped to bins 0 / 999
        fit = np.arange(56)
        y_fit_min, y_fit_max = y[fit].min(), y[fit].max()
        span = y_fit_max - y_fit_min
        y[56] = y_fit_min - 0.9 * span
        y[57] = y_fit_max + 0.8 * span
        y[58] = y_fit_min - 0.2 * span
        y[59] = y_fit_max + 0.3 * span
        members = [dict(fit_index=fit, mirror=False)]
        desc = (
            "n_s=64, n_q=5, f=4; all targets negative (y = -350 + 120*score); scaling fitted on the first "
            "56 support rows only, the other 8 are extra support rows as with mitra-finetune's held-out-in-"
            "support rule: rows 56/57 scale to < -0.5 / > 1.5 (clamped to bins 0 / 999), rows 58/59 to "
            "about -0.2 / 1.3 (inside the grid, outside [0, 1]); no mirror"
        )
    elif name == "d_edge_ties":
        n_s, n_q, f = 24, 4, 2
        xs, xq = features(rng, n_s, n_q, f)
        s = score(rng, np.concatenate([xs, xq]), n_s)
        y = (s - s[:n_s].min()) / (s[:n_s].max() - s[:n_s].min())  # in [0, 1], min 0 and max 1 exactly
        edges = torch.linspace(-0.5, 1.5, N_BINS + 1).numpy().astype(np.float64)
        fit = np.arange(16)
        y[0], y[1] = 0.0, 1.0  # fit rows hold the exact min 0 and max 1 -> scaled == y exactly
        y[2:16] = np.clip(y[2:16], 0.01, 0.99)
        # extra support rows (not in the fit): exact float32 edge values and beyond-grid values
        y[16:24] = [edges[0], edges[1], edges[250], edges[500], edges[999], edges[1000], -0.7, 1.9]
        members = [dict(fit_index=fit, mirror=False)]
        desc = (
            "n_s=24, n_q=4, f=2; scaling fitted on rows 0-15 with min exactly 0 and max exactly 1, so the "
            "scaled target equals y; rows 16-23 are exact float32 bin edges (edges[0]=-0.5, edges[1], "
            "edges[250]=2.37e-8, edges[500], edges[999], edges[1000]=1.5) and -0.7 / 1.9: pins the "
            "bucketize side (an edge value goes to the bin below it), the clamping, and the fact that "
            "y_min (scaled 0.0) lands in bin 249 because edges[250] > 0; no mirror"
        )
    elif name == "e_two_members":
        n_s, n_q, f = 48, 4, 3
        xs, xq = features(rng, n_s, n_q, f)
        s = score(rng, np.concatenate([xs, xq]), n_s)
        y = 40.0 + 15.0 * s
        # put the support minimum in row 0 and the maximum in row 47 (x rows move with them), so
        # member 0 (rows 0-41) misses the maximum and member 1 (rows 6-47) the minimum
        for src, dst in ((int(np.argmin(y[:n_s])), 0), (int(np.argmax(y[:n_s])), n_s - 1)):
            xs[[src, dst]] = xs[[dst, src]]
            y[[src, dst]] = y[[dst, src]]
        members = [dict(fit_index=np.arange(42), mirror=False), dict(fit_index=np.arange(6, 48), mirror=True)]
        desc = (
            "n_s=48, n_q=4, f=3; y = 40 + 15*score; two ensemble members (bag children) with the same weights: "
            "member 0 fits the scaling on rows 0-41 (no mirror), member 1 on rows 6-47 (mirrored); both predict "
            "with all 48 rows as support. Their grids in y units differ; the bagged prediction is the mean of "
            "the members' predictions (AutoGluon bag average; for mitra-finetune also the mixture mean)"
        )
    else:
        raise KeyError(name)
    ys, yq_true = y[:n_s].astype(np.float64), y[n_s:].astype(np.float64)
    yq_true = yq_true.copy()
    # one query target far outside every grid: log_prob = -inf, crps in its linear tail
    lo, hi = ys.min(), ys.max()
    yq_true[-1] = hi + 3.0 * (hi - lo)
    return dict(xs=xs, xq=xq, ys=ys, yq_true=yq_true, members=members, desc=desc)


CASE_NAMES = ["b_large_scale_mirror", "c_negative_subset_fit", "d_edge_ties", "e_two_members"]


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


_NUM_LIST = re.compile(r"\[(?:\s*-?(?:\d[\d.eE+-]*|Infinity|NaN)\s*,?)+\s*\]")


def _compact_json(obj) -> str:
    """json.dumps(indent=2), with lists of numbers kept on one line."""
    return _NUM_LIST.sub(lambda m: "[" + ", ".join(v.strip() for v in m.group(0)[1:-1].split(",")) + "]",
                         json.dumps(obj, indent=2))


def max_abs(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="output folder (default: tests/fixtures/parity/regression-binned)")
    args = p.parse_args(argv)
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)

    torch.set_num_threads(1)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    date = _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    print(f"autogluon.tabular {_agt.__version__}, mitra-finetune {mitra_finetune.__version__}, "
          f"torch {torch.__version__}, numpy {np.__version__}")

    # ---- model ----
    model = build_model()
    model.save_pretrained(str(out_dir))
    reloaded = Tab2D.from_pretrained(str(out_dir), device="cpu").eval()
    sd0, sd1 = model.state_dict(), reloaded.state_dict()
    assert sd0.keys() == sd1.keys() and all(torch.equal(sd0[k], sd1[k]) for k in sd0)

    # ---- official bins ----
    probe, _ = make_trainer(out_dir)
    bins = probe.bins.clone()
    bin_width = probe.bin_width.clone()
    centres = bins[:-1] + bin_width / 2  # the centres both decodes use (float32)
    assert torch.equal(bins, torch.linspace(-0.5, 1.5, N_BINS + 1))
    del probe

    rng = np.random.default_rng(SEED)
    tensors: dict[str, torch.Tensor] = {
        "bins.edges": bins.contiguous(),
        "bins.width": bin_width.reshape(1).contiguous(),
        "bins.centres": centres.contiguous(),
    }
    cases_meta = []
    observations: dict[str, set] = {"warnings_fp32": set(), "warnings_bf16": set()}

    # Phase 1: stock AutoGluon decode (argmax). Keep trainers for phase 2.
    runs = []
    for ci, name in enumerate(CASE_NAMES):
        case = make_case(rng, name)
        xs, xq, ys = case["xs"], case["xq"], case["ys"]
        member_runs = []
        for mi, member in enumerate(case["members"]):
            trainer, rec = make_trainer(out_dir)
            fit_idx = member["fit_index"]
            y_side = fit_y_side(trainer, xs[fit_idx], ys[fit_idx], member["mirror"], draw_seed=1000 * ci + mi)
            scaled = trainer.preprocessor.transform_y(ys.copy())
            pred_argmax, call, msgs = official_predict(trainer, rec, xs, ys, xq, "float32")
            observations["warnings_fp32"].update(msgs)
            pred_argmax_bf16, call_bf16, msgs = official_predict(trainer, rec, xs, ys, xq, "bfloat16")
            observations["warnings_bf16"].update(msgs)

            # the model saw exactly the stored X, and bin ids of the scaled targets
            assert torch.equal(call["x_support"][0], torch.from_numpy(xs)), "transform_X was not the identity"
            assert torch.equal(call["x_query"][0], torch.from_numpy(xq))
            bin_ids = call["y_support"]
            assert bin_ids.dtype == torch.int64 and torch.equal(call_bf16["y_support"], bin_ids)
            logits = call["out"]
            assert logits.dtype == torch.float32 and logits.shape == (1, len(xq), N_BINS), (logits.dtype, logits.shape)
            member_runs.append(
                dict(trainer=trainer, rec=rec, y_side=y_side, scaled=scaled, bin_ids=bin_ids, logits=logits,
                     logits_bf16=call_bf16["out"], pred_argmax=pred_argmax, pred_argmax_bf16=pred_argmax_bf16)
            )
        runs.append((name, case, member_runs))

    # Phase 2: mitra-finetune's decode (mean of bin centres) and its distribution capture.
    mf_patches.install_reg_ce_patches(N_BINS)
    cfg_check, _ = sklearn_interface.MitraRegressor(device="cpu", hf_model=str(out_dir),
                                                    seed=SEED)._create_config("regression", 1, None)
    assert cfg_check.task == Task.REGRESSION and cfg_check.hyperparams["regression_loss"] == LossName.CROSS_ENTROPY
    assert cfg_check.hyperparams["dim_output"] == N_BINS

    for name, case, member_runs in runs:
        xs, xq, ys, yq_true = case["xs"], case["xq"], case["ys"], case["yq_true"]
        key = f"case_{name}"
        multi = len(member_runs) > 1
        tensors[f"{key}.x_support"] = torch.from_numpy(xs)[None].contiguous()
        tensors[f"{key}.y_support"] = torch.from_numpy(ys)[None].contiguous()
        tensors[f"{key}.x_query"] = torch.from_numpy(xq)[None].contiguous()
        tensors[f"{key}.y_query_true"] = torch.from_numpy(yq_true)[None].contiguous()
        members_meta = []
        edges_all, probs_all, points_mean, points_argmax, points_mean_bf16, points_argmax_bf16 = [], [], [], [], [], []
        for mi, run in enumerate(member_runs):
            trainer, rec = run["trainer"], run["rec"]
            with mf_patches.capture_regression_distribution() as collector:
                pred_mean, call, _ = official_predict(trainer, rec, xs, ys, xq, "float32")
            edges_y, probs, _points = collector.stacked()
            assert torch.equal(call["out"], run["logits"]), "logits changed between the two decodes"
            assert torch.equal(call["y_support"], run["bin_ids"])
            pred_mean_bf16, _, _ = official_predict(trainer, rec, xs, ys, xq, "bfloat16")
            assert not rec.calls

            # --- independent re-derivations from the stored tensors (printed and stored) ---
            scaled_t = torch.from_numpy(run["scaled"])
            ids_re = torch.clamp(torch.bucketize(scaled_t, bins) - 1, 0, N_BINS - 1)
            assert torch.equal(ids_re, run["bin_ids"][0]), "bin-id rule mismatch"
            lg = run["logits"][0]
            y_side = run["y_side"]
            span = y_side["y_max"] - y_side["y_min"]
            norm_argmax = (bins[torch.argmax(lg, dim=-1)] + bin_width / 2).numpy()
            norm_mean = (torch.softmax(lg, dim=-1) * centres).sum(dim=-1).numpy()
            if y_side["mirror"]:
                norm_argmax, norm_mean = 1 - norm_argmax, 1 - norm_mean
            re_argmax = norm_argmax * np.float64(span) + np.float64(y_side["y_min"])
            re_mean = norm_mean * np.float64(span) + np.float64(y_side["y_min"])
            d_re_argmax = max_abs(re_argmax, run["pred_argmax"])
            d_re_mean = max_abs(re_mean, pred_mean)
            dist1 = RegressionDistribution(bin_edges=edges_y, probabilities=probs, point_prediction=pred_mean)
            d_dist_mean = max_abs(dist1.mean, pred_mean)

            # direct forward of the saved model on the stored inputs (no trainer)
            with torch.no_grad():
                direct = reloaded(
                    torch.from_numpy(xs)[None].clone(), run["bin_ids"].clone(), torch.from_numpy(xq)[None].clone(),
                    torch.zeros((1, xs.shape[1]), dtype=torch.bool), torch.zeros((1, len(xs)), dtype=torch.bool),
                    torch.zeros((1, len(xq)), dtype=torch.bool),
                )
            d_direct = max_abs(direct, run["logits"])
            g = torch.Generator().manual_seed(SEED + 1)
            perm = torch.randperm(len(xs), generator=g)
            with torch.no_grad():
                permuted = reloaded(
                    torch.from_numpy(xs)[None][:, perm].clone(), run["bin_ids"][:, perm].clone(),
                    torch.from_numpy(xq)[None].clone(),
                    torch.zeros((1, xs.shape[1]), dtype=torch.bool), torch.zeros((1, len(xs)), dtype=torch.bool),
                    torch.zeros((1, len(xq)), dtype=torch.bool),
                )
            d_perm = max_abs(permuted, run["logits"])
            d_bf16_logits = max_abs(run["logits_bf16"].float(), run["logits"])

            pfx = f"{key}.member{mi}" if multi else key
            tensors[f"{pfx}.fit_index"] = torch.from_numpy(case["members"][mi]["fit_index"].astype(np.int64))
            tensors[f"{pfx}.y_min_max"] = torch.tensor([y_side["y_min"], y_side["y_max"]], dtype=torch.float64)
            tensors[f"{pfx}.mirror"] = torch.tensor([int(y_side["mirror"])], dtype=torch.int64)
            tensors[f"{pfx}.y_support_scaled"] = torch.from_numpy(run["scaled"])[None].contiguous()
            tensors[f"{pfx}.y_support_bins"] = run["bin_ids"].contiguous()
            tensors[f"{pfx}.logits"] = run["logits"].contiguous()
            tensors[f"{pfx}.pred_argmax"] = torch.from_numpy(
                np.asarray(run["pred_argmax"], dtype=np.float64))[None].contiguous()
            tensors[f"{pfx}.pred_mean"] = torch.from_numpy(np.asarray(pred_mean, dtype=np.float64))[None].contiguous()
            tensors[f"{pfx}.pred_argmax_bf16"] = torch.from_numpy(
                np.asarray(run["pred_argmax_bf16"], dtype=np.float64))[None].contiguous()
            tensors[f"{pfx}.pred_mean_bf16"] = torch.from_numpy(
                np.asarray(pred_mean_bf16, dtype=np.float64))[None].contiguous()
            tensors[f"{pfx}.bin_edges_y"] = torch.from_numpy(edges_y[0]).contiguous()

            edges_all.append(edges_y[0])
            probs_all.append(probs[0])
            points_mean.append(np.asarray(pred_mean, dtype=np.float64))
            points_argmax.append(np.asarray(run["pred_argmax"], dtype=np.float64))
            points_mean_bf16.append(np.asarray(pred_mean_bf16, dtype=np.float64))
            points_argmax_bf16.append(np.asarray(run["pred_argmax_bf16"], dtype=np.float64))
            ids = run["bin_ids"][0].numpy()
            members_meta.append(
                {
                    "member": mi,
                    "fit_rows": [int(case["members"][mi]["fit_index"][0]),
                                 int(case["members"][mi]["fit_index"][-1]) + 1],
                    **y_side,
                    "dtypes": {"pred_argmax_official": str(np.asarray(run["pred_argmax"]).dtype),
                               "pred_mean_official": str(np.asarray(pred_mean).dtype)},
                    "scaled_min_max": [float(run["scaled"].min()), float(run["scaled"].max())],
                    "bin_id_min_max": [int(ids.min()), int(ids.max())],
                    "n_support_in_bin0_or_999": int(((ids == 0) | (ids == N_BINS - 1)).sum()),
                    "max_abs_logit": float(run["logits"].abs().max()),
                    "checks_max_abs_diff": {
                        "direct_forward_vs_trainer_logits": d_direct,
                        "support_row_permutation_logits": d_perm,
                        "bf16_vs_fp32_logits": d_bf16_logits,
                        "rederived_argmax_decode_vs_official": d_re_argmax,
                        "rederived_mean_decode_vs_official": d_re_mean,
                        "RegressionDistribution_mean_vs_pred_mean": d_dist_mean,
                        "pred_mean_bf16_vs_fp32": max_abs(pred_mean_bf16, pred_mean),
                        "pred_argmax_bf16_vs_fp32": max_abs(run["pred_argmax_bf16"], run["pred_argmax"]),
                    },
                }
            )
            print(
                f"case {name:22s} member {mi}: y_min/max {y_side['y_min']:.6g}/{y_side['y_max']:.6g} "
                f"mirror={y_side['mirror']} "
                f"bins {ids.min()}..{ids.max()} |logit|max {float(run['logits'].abs().max()):.3f}\n"
                f"    direct-vs-trainer {d_direct:.1e}  perm {d_perm:.1e}  bf16 logits {d_bf16_logits:.1e}  "
                f"re-derived argmax {d_re_argmax:.1e} mean {d_re_mean:.1e}  dist.mean {d_dist_mean:.1e}  "
                f"mean-vs-argmax {max_abs(pred_mean, run['pred_argmax']):.3g}"
            )

        # bagged / mixture outputs (one member: the member's own)
        edges_all = np.stack(edges_all)
        probs_all = np.stack(probs_all)
        bag_mean = np.mean(points_mean, axis=0)
        dist = RegressionDistribution(bin_edges=edges_all, probabilities=probs_all, point_prediction=bag_mean)
        quant = dist.quantile(QUANTILE_LEVELS)
        crps = dist.crps(yq_true)
        logp = dist.log_prob(yq_true)
        cdf = dist.cdf(yq_true)
        if multi:
            tensors[f"{key}.pred_argmax_bagged"] = torch.from_numpy(np.mean(points_argmax, axis=0))[None].contiguous()
            tensors[f"{key}.pred_mean_bagged"] = torch.from_numpy(bag_mean)[None].contiguous()
            tensors[f"{key}.pred_argmax_bagged_bf16"] = torch.from_numpy(
                np.mean(points_argmax_bf16, axis=0))[None].contiguous()
            tensors[f"{key}.pred_mean_bagged_bf16"] = torch.from_numpy(
                np.mean(points_mean_bf16, axis=0))[None].contiguous()
        tensors[f"{key}.dist_mean"] = torch.from_numpy(dist.mean)[None].contiguous()
        tensors[f"{key}.dist_quantiles"] = torch.from_numpy(np.ascontiguousarray(quant))[None].contiguous()
        tensors[f"{key}.dist_cdf"] = torch.from_numpy(cdf)[None].contiguous()
        tensors[f"{key}.dist_crps"] = torch.from_numpy(crps)[None].contiguous()
        tensors[f"{key}.dist_log_prob"] = torch.from_numpy(logp)[None].contiguous()

        case_keys = sorted(k for k in tensors if k.startswith(key + "."))
        cases_meta.append(
            {
                "name": name,
                "description": case["desc"],
                "batch_size": 1,
                "n_support": len(xs),
                "n_query": len(xq),
                "n_features": int(xs.shape[1]),
                "n_members": len(member_runs),
                "members": members_meta,
                "shapes": {k[len(key) + 1 :]: list(tensors[k].shape) for k in case_keys},
                "dtypes": {k[len(key) + 1 :]: str(tensors[k].dtype).replace("torch.", "") for k in case_keys},
                "dist_mean_vs_bagged_pred_mean": max_abs(dist.mean, bag_mean),
                "dist_support": list(dist.support),
            }
        )
        print(
            f"case {name:22s} mixture of {len(member_runs)}: "
            f"|dist.mean - mean(pred_mean)| {max_abs(dist.mean, bag_mean):.1e}  "
            f"crps {np.round(crps, 4).tolist()}  log_prob {np.round(logp, 3).tolist()}"
        )

    save_file(tensors, str(out_dir / "cases.safetensors"))

    info = {
        "task": "REGRESSION, 1,000-bin distributional head (Mitra-v2 style)",
        "model_config": json.loads((out_dir / "config.json").read_text()),
        "seed": SEED,
        "layernorm_perturbation": "weight = 1 + 0.1*N(0,1), bias = 0.1*N(0,1) for every LayerNorm, drawn from "
        "torch.manual_seed(0) after the official init",
        "padding": "none: all padding masks False; official DataLoader batch size 1",
        "pipeline": "official TrainerFinetune (autogluon.tabular 1.6.3) with cfg.task=REGRESSION, "
        "regression_loss=CROSS_ENTROPY, dim_output=1000 (what mitra_finetune.patches.install_reg_ce_patches sets); "
        "precision 'float32' (CPU autocast disabled) for logits/pred_*, 'bfloat16' autocast for *_bf16; "
        "random_mirror_x off; identity support draw; regression_mirror set per case",
        "decodes": {
            "pred_argmax": "stock AutoGluon 1.6.3 TrainerFinetune.predict: np.argmax over the 1000 logits "
            "(first max wins), bins[id] + bin_width/2 (float32), then Preprocessor.inverse_transform_y "
            "(mirror 1-y, then *(y_max-y_min)+y_min)",
            "pred_mean": "mitra-finetune 0.3.0 (install_reg_ce_patches): torch.softmax of the float32 logits, "
            "sum(p * (bins[:-1] + bin_width/2)) in float32, then the same inverse_transform_y",
            "dist_*": "mitra_finetune.distribution.RegressionDistribution over the member(s): bin edges in y units "
            "from the official collector (patches._member_grid_in_target_units), equal-weight mixture, "
            "piecewise-uniform density per bin; quantile levels in 'quantile_levels'",
        },
        "quantile_levels": QUANTILE_LEVELS,
        "global_tensors": {
            "bins.edges": "[1001] float32, the official self.bins = torch.linspace(-0.5, 1.5, 1001) (CPU)",
            "bins.width": "[1] float32, bins[1] - bins[0]",
            "bins.centres": "[1000] float32, bins[:-1] + bin_width/2 (the centres both decodes use)",
        },
        "observed_warnings": {k: sorted(v) for k, v in observations.items()},
        "versions": {
            "autogluon.tabular": _agt.__version__,
            "mitra-finetune": mitra_finetune.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "date": date,
        "command": " ".join(["/tmp/agvenv/bin/python", "scripts/make_parity_fixture_v2.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "cases": cases_meta,
    }
    (out_dir / "cases.json").write_text(_compact_json(info) + "\n")

    total = 0
    print("\nfiles:")
    for path in sorted(out_dir.rglob("*")):
        if path.is_file():
            size = path.stat().st_size
            total += size
            print(f"    {path}  {size:,} B")
    print(f"    total {total:,} B ({total / 2**20:.2f} MiB)")
    if total > 1_500_000:
        print("WARNING: fixture is larger than 1.5 MB")


if __name__ == "__main__":
    main()
