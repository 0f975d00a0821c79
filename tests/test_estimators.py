"""Behaviour of MitraClassifier / MitraRegressor beyond scikit-learn's generic checks."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import StackingClassifier, StackingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mitra_sklearn import MitraClassifier, MitraRegressor, load_model

from .conftest import PARITY, make_tiny_checkpoint


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.randn(80, 5)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


@pytest.fixture
def clf(tiny_classifier_checkpoint):
    return MitraClassifier(tiny_classifier_checkpoint, n_estimators=3, random_state=0)


@pytest.fixture
def reg(tiny_regressor_checkpoint):
    return MitraRegressor(tiny_regressor_checkpoint, n_estimators=3, random_state=0)


def test_string_labels_and_probabilities(clf, data):
    X, y = data
    labels = np.array(["no", "yes", "maybe"])[y + (np.arange(len(y)) % 7 == 0)]
    clf.fit(X, labels)
    assert clf.classes_.tolist() == ["maybe", "no", "yes"]
    proba = clf.predict_proba(X)
    assert proba.shape == (80, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(clf.predict(X)) <= set(labels)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba)
    assert 0 <= clf.score(X, labels) <= 1


def test_same_random_state_same_predictions(clf, data):
    X, y = data
    a = clone(clf).fit(X, y).predict_proba(X)
    b = clone(clf).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = clone(clf).set_params(random_state=1).fit(X, y).predict_proba(X)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("mode", ["predict", "fit"])
def test_support_cache_matches_no_cache(clf, reg, data, mode):
    X, y = data
    for est, target in ((clf, y), (reg, X[:, 0] * 3 + 1)):
        cached = clone(est).set_params(support_cache=mode, batch_size=16).fit(X, target)
        uncached = clone(est).set_params(support_cache="off", batch_size=16).fit(X, target)
        predict = "predict_proba" if hasattr(est, "predict_proba") else "predict"
        np.testing.assert_allclose(getattr(cached, predict)(X), getattr(uncached, predict)(X), rtol=1e-5, atol=1e-6)


def test_fit_time_cache_that_does_not_fit_in_memory_is_skipped_with_a_warning(clf, data, monkeypatch):
    import mitra_sklearn._inference as inference

    X, y = data
    expected = clone(clf).set_params(support_cache="off", batch_size=16).fit(X, y).predict_proba(X)
    monkeypatch.setattr(inference, "available_memory", lambda device: 1000)
    with pytest.warns(UserWarning, match="support_cache='fit' needs"):
        est = clone(clf).set_params(support_cache="fit", batch_size=16).fit(X, y)
    assert est._runtime.caches == {}
    np.testing.assert_allclose(est.predict_proba(X), expected, rtol=1e-5, atol=1e-6)


def test_cache_on_off_on_the_parity_checkpoint():
    rng = np.random.RandomState(1)
    X, y = rng.randn(300, 12), rng.randint(0, 4, 300)
    est = MitraClassifier(str(PARITY / "classification"), n_estimators=2, random_state=0, batch_size=50)
    on = clone(est).fit(X[:200], y[:200]).predict_proba(X[200:])
    off = clone(est).set_params(support_cache="off").fit(X[:200], y[:200]).predict_proba(X[200:])
    np.testing.assert_allclose(on, off, rtol=1e-5, atol=1e-6)


def test_pandas_input_with_categoricals_and_missing(clf, reg):
    rng = np.random.RandomState(0)
    n = 60
    frame = pd.DataFrame(
        {
            "x": rng.randn(n),
            "colour": pd.Categorical(rng.choice(["red", "green", None], n)),
            "city": rng.choice(["a", "b", "c"], n).astype(object),
            "flag": rng.rand(n) > 0.5,
            "count": pd.array(rng.randint(0, 5, n), dtype="Int64"),
        }
    )
    frame.loc[3, "x"] = np.nan
    frame.loc[4, "count"] = pd.NA
    before = frame.copy(deep=True)
    y = rng.choice(["low", "high"], n)
    clf.fit(frame, y)
    assert clf.feature_names_in_.tolist() == list(frame.columns)
    assert clf.predict(frame).shape == (n,)
    reg.fit(frame, rng.randn(n))
    assert reg.predict(frame).shape == (n,)
    pd.testing.assert_frame_equal(frame, before)
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame[["city", "x", "colour", "flag", "count"]])


def test_numpy_inputs_are_not_modified(clf, data):
    X, y = data
    X = X.copy()
    X[2, 3] = np.nan
    X_before, y_before = X.copy(), y.copy()
    clf.fit(X, y).predict(X)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)


def test_errors(clf, reg, data):
    X, y = data
    with pytest.raises(ValueError, match="2 classes"):
        clone(clf).fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="NaN"):
        clone(clf).fit(X, np.where(np.arange(len(y)) == 0, np.nan, y))
    with pytest.raises(ValueError, match="NaN"):
        clone(reg).fit(X, np.where(np.arange(len(y)) == 0, np.nan, 1.0 * y))
    with pytest.raises(ValueError, match="missing"):
        clone(clf).fit(X, np.array(["a", None] * 40, dtype=object))
    with pytest.raises(ValueError, match="0 sample"):
        clone(clf).fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="infinity"):
        clone(clf).fit(np.where(X > 2, np.inf, X), y)
    fitted = clone(clf).fit(X, y)
    with pytest.raises(ValueError, match="5 features"):
        fitted.predict(X[:, :3])
    with pytest.raises(ValueError, match="0 sample"):
        fitted.predict_proba(X[:0])
    with pytest.raises(ValueError, match="0 sample"):
        clone(reg).fit(X, np.full(len(X), 2.0)).predict(X[:0])  # constant target: no model needed
    with pytest.raises(ValueError, match="trained for regression"):
        MitraClassifier(reg.checkpoint).fit(X, y)
    with pytest.raises(ValueError, match="device"):
        clone(clf).set_params(device="tpu").fit(X, y)
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError):
        clone(clf).set_params(n_estimators=0).fit(X, y)


def test_failed_refit_keeps_the_fitted_state(clf, reg, data):
    X, y = data
    clf.fit(X, y)
    before = clf.predict_proba(X[:5])
    with pytest.raises(ValueError, match="trained for regression"):
        clf.set_params(checkpoint=reg.checkpoint).fit(X, y[::-1])
    np.testing.assert_array_equal(clf.predict_proba(X[:5]), before)


def test_constant_regression_target(reg, data):
    X, _ = data
    reg.fit(X, np.full(len(X), 4.2))
    np.testing.assert_array_equal(reg.predict(X[:7]), np.full(7, 4.2))


def test_regression_predictions_in_target_units():
    """With the parity checkpoint, predictions are mapped back inside the training range."""
    rng = np.random.RandomState(0)
    X = rng.randn(100, 4)
    y = 1000 + 50 * X[:, 0]
    reg = MitraRegressor(str(PARITY / "regression"), n_estimators=2, random_state=0).fit(X, y)
    pred = reg.predict(X)
    assert pred.min() > y.min() - (y.max() - y.min()) and pred.max() < y.max() + (y.max() - y.min())


def test_pickle_is_weight_free_and_round_trips(clf, data, tmp_path):
    X, y = data
    clf.fit(X, y)
    expected = clf.predict_proba(X)
    blob = pickle.dumps(clf)
    weights_bytes = sum(p.numel() * 4 for p in load_model(clf.checkpoint_).parameters())
    assert len(blob) < X.nbytes + 20_000 + weights_bytes // 2
    restored = pickle.loads(blob)
    np.testing.assert_array_equal(restored.predict_proba(X), expected)
    joblib.dump(clf, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict_proba(X), expected)


def test_pickle_from_a_gpu_machine_loads_on_cpu(clf, data):
    X, y = data
    clf.fit(X, y)
    expected = clf.predict_proba(X)
    clf.set_params(device="cuda")  # as if it had been fitted with device="cuda"
    clf.device_ = torch.device("cuda")
    blob = pickle.dumps(clf)
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the fallback path is for CPU-only machines")
    with pytest.warns(UserWarning, match="not available"):
        restored = pickle.loads(blob)
    assert restored.device_.type == "cpu"
    np.testing.assert_allclose(restored.predict_proba(X), expected, rtol=1e-6)


def test_sklearn_composition(clf, reg, data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), clone(clf))
    assert cross_val_score(pipe, X, y, cv=3, scoring="roc_auc").shape == (3,)
    search = GridSearchCV(clone(clf), {"n_estimators": [1, 2]}, cv=2).fit(X, y)
    assert search.best_params_["n_estimators"] in (1, 2)
    stack = StackingClassifier([("mitra", clone(clf)), ("lr", LogisticRegression())], cv=3).fit(X, y)
    assert stack.predict_proba(X).shape == (80, 2)
    calibrated = CalibratedClassifierCV(clone(clf), cv=3).fit(X, y)
    assert calibrated.predict_proba(X).shape == (80, 2)
    target = X[:, 0] * 2.0
    stack_reg = StackingRegressor([("mitra", clone(reg)), ("lr", LinearRegression())], cv=3).fit(X, target)
    assert stack_reg.predict(X).shape == (80,)
    assert cross_val_score(make_pipeline(StandardScaler(), clone(reg)), X, target, cv=3).shape == (3,)


def test_support_subsample_beyond_max_support_rows(clf, data):
    X, y = data
    clf.set_params(max_support_rows=20).fit(X, y)
    assert all(len(m.support_rows) == 20 for m in clf.members_)
    assert clf.predict_proba(X).shape == (80, 2)


def test_fine_tuning_restores_the_best_weights(tiny_classifier_checkpoint):
    rng = np.random.RandomState(0)
    X = rng.randn(120, 3)
    y = (X[:, 0] > 0).astype(int)
    est = MitraClassifier(
        tiny_classifier_checkpoint, n_estimators=2, fine_tune=True, fine_tune_steps=15, fine_tune_lr=3e-3,
        random_state=0,
    ).fit(X, y)
    losses = est.fine_tune_losses_
    assert losses.shape[0] >= 2
    if est.fine_tuned_weights_ is None:
        assert losses[1:].min() >= losses[0]
    else:
        assert losses.min() < losses[0]
        model = load_model(tiny_classifier_checkpoint)
        # the shared pretrained model is untouched by fine-tuning
        assert not all(torch.equal(model.state_dict()[k], v) for k, v in est.fine_tuned_weights_.items())
    # same seed, same fine-tuning
    again = clone(est).fit(X, y)
    np.testing.assert_array_equal(again.fine_tune_losses_, losses)
    np.testing.assert_allclose(again.predict_proba(X), est.predict_proba(X), rtol=1e-6)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(restored.predict_proba(X), est.predict_proba(X), rtol=1e-6)


def test_fine_tuning_keeps_the_weights_of_the_best_validation_step(tiny_classifier_checkpoint, monkeypatch):
    """Scripted validation losses put the best step at 2 of 6: exactly its weights must be kept."""
    from mitra_sklearn import finetune

    scripted = iter([1.0, 0.8, 0.5, 0.7, 0.9, 0.95, 0.99])
    monkeypatch.setattr(finetune, "_validation_loss", lambda *args, **kwargs: next(scripted))
    snapshots = []
    real_step = finetune._train_step

    def recording_step(model, *args, **kwargs):
        loss = real_step(model, *args, **kwargs)
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return loss

    monkeypatch.setattr(finetune, "_train_step", recording_step)
    rng = np.random.RandomState(0)
    X, y = rng.randn(80, 3), rng.randint(0, 2, 80)
    est = MitraClassifier(tiny_classifier_checkpoint, n_estimators=1, fine_tune=True, fine_tune_steps=6,
                          fine_tune_lr=1e-2, random_state=0).fit(X, y)
    np.testing.assert_allclose(est.fine_tune_losses_, [1.0, 0.8, 0.5, 0.7, 0.9, 0.95, 0.99])
    assert len(snapshots) == 6
    kept = est.fine_tuned_weights_
    for name, best in snapshots[1].items():  # after step 2
        torch.testing.assert_close(kept[name], best, rtol=0, atol=0, msg=name)
    assert any(not torch.equal(kept[name], last) for name, last in snapshots[-1].items())


def test_fine_tuning_regression(tiny_regressor_checkpoint):
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    est = MitraRegressor(tiny_regressor_checkpoint, n_estimators=1, fine_tune=True, fine_tune_steps=5,
                         fine_tune_lr=1e-3, random_state=0, verbose=True).fit(X, X[:, 0] * 10)
    assert est.fine_tune_losses_.shape[0] >= 2
    assert np.isfinite(est.predict(X)).all()


def test_the_mitra_v2_recipe_schedule():
    from mitra_sklearn.finetune import FineTuneRecipe, fine_tune_recipe

    binary = fine_tune_recipe("mitra-v2", n_classes=2, n_rows=16_384)
    assert (binary.steps, binary.learning_rate, binary.weight_decay, binary.gradient_clip) == (50, 3e-6, 0.3, None)
    assert binary.decay_all_parameters and binary.support_rows == 16_384
    assert fine_tune_recipe("mitra-v2", n_classes=2, n_rows=16_385).learning_rate == 1e-5
    assert fine_tune_recipe("mitra-v2", n_classes=3, n_rows=100).learning_rate == 1e-5
    regression = fine_tune_recipe("mitra-v2", n_classes=None, n_rows=100)
    assert (regression.learning_rate, regression.support_rows) == (1e-5, 20_480)
    # Their warm-up: 0.1, 0.19, ... 0.91 of the rate, then 0.91 to the end.
    np.testing.assert_allclose([binary.lr_factor(k) for k in range(12)], [0.1 + 0.09 * min(k, 9) for k in range(12)])
    ours = FineTuneRecipe(steps=50, learning_rate=1e-5)
    np.testing.assert_allclose([ours.lr_factor(k) for k in range(12)], [min(1.0, (k + 1) / 10) for k in range(12)])
    with pytest.raises(ValueError, match="recipe"):
        fine_tune_recipe("mitra-v3", n_classes=2, n_rows=10)


def test_fine_tune_mitra_v2_runs_their_recipe(tiny_classifier_checkpoint, monkeypatch):
    from mitra_sklearn import finetune

    seen = []
    real_step = finetune._train_step

    def recording_step(model, optimizer, *args):
        seen.append((optimizer.param_groups[0]["lr"], len(optimizer.param_groups),
                     optimizer.param_groups[0]["weight_decay"], args[-1]))
        return real_step(model, optimizer, *args)

    monkeypatch.setattr(finetune, "_train_step", recording_step)
    monkeypatch.setattr(finetune, "PATIENCE", 1000)  # every step runs
    rng = np.random.RandomState(0)
    X, y = rng.randn(60, 3), rng.randint(0, 2, 60)
    est = MitraClassifier(tiny_classifier_checkpoint, n_estimators=1, fine_tune="mitra-v2", fine_tune_steps=3,
                          random_state=0).fit(X, y)
    assert len(seen) == 50 and len(est.fine_tune_losses_) == 51  # their 50 steps, not fine_tune_steps
    np.testing.assert_allclose([lr for lr, *_ in seen[:11]], [3e-6 * (0.1 + 0.09 * min(k, 9)) for k in range(11)])
    assert all(groups == 1 and decay == 0.3 and clip is None for _, groups, decay, clip in seen)
    with pytest.raises(ValueError, match="fine_tune"):
        MitraClassifier(tiny_classifier_checkpoint, fine_tune="mitra-v9").fit(X, y)


def test_fine_tuning_out_of_memory_shrinks_the_tasks_then_explains(tiny_classifier_checkpoint, monkeypatch):
    from mitra_sklearn import finetune
    from mitra_sklearn.exceptions import MitraOutOfMemoryError

    rng = np.random.RandomState(0)
    X = rng.randn(200, 3)
    y = (X[:, 0] > 0).astype(int)
    original, support_sizes = finetune._train_step, []

    def flaky(model, optimizer, task, member, X_, y_, support, query, device, dtype, sample_weight=None,
              gradient_clip=1.0):
        support_sizes.append(len(support))
        if len(support) > 40:  # only small tasks fit
            raise torch.OutOfMemoryError("simulated")
        return original(model, optimizer, task, member, X_, y_, support, query, device, dtype, sample_weight,
                        gradient_clip)

    monkeypatch.setattr(finetune, "_train_step", flaky)
    est = MitraClassifier(tiny_classifier_checkpoint, n_estimators=1, fine_tune=True, fine_tune_steps=3,
                          max_support_rows=128, random_state=0)
    with pytest.warns(UserWarning, match="fine-tuning step"):
        est.fit(X, y)
    assert support_sizes[0] == 128 and support_sizes[-1] <= 40
    assert len(est.fine_tune_losses_) == 4  # every step ran, on smaller tasks
    assert est.predict_proba(X).shape == (200, 2)

    def never_fits(*args):
        raise RuntimeError("MPS backend out of memory")

    monkeypatch.setattr(finetune, "_train_step", never_fits)
    with pytest.warns(UserWarning), pytest.raises(MitraOutOfMemoryError, match="fine_tune=False"):
        clone(est).fit(X, y)


def test_verbose_progress(clf, data, capsys):
    X, y = data
    clf.set_params(verbose=True).fit(X, y).predict(X)
    assert "predict" in capsys.readouterr().err


def test_quiet_by_default_even_with_fine_tuning(clf, reg, data, capsys):
    # Long work shows progress only when verbose: nothing at all is printed otherwise.
    X, y = data
    clf.set_params(fine_tune=True, fine_tune_steps=2).fit(X, y).predict_proba(X)
    reg.set_params(fine_tune=True, fine_tune_steps=2).fit(X, X[:, 0]).predict(X, return_std=True)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    clf.set_params(verbose=True).fit(X, y)
    assert "fine-tun" in capsys.readouterr().err.lower()  # the fine-tuning bar


def test_float64_precision_matches_float32(clf, data):
    X, y = data
    p32 = clone(clf).set_params(inference_precision="float32").fit(X, y).predict_proba(X)
    p64 = clone(clf).set_params(inference_precision="float64").fit(X, y).predict_proba(X)
    np.testing.assert_allclose(p32, p64, atol=1e-5)


def test_bfloat16_precision_runs_on_cpu(clf, data):
    X, y = data
    p = clone(clf).set_params(inference_precision="bfloat16").fit(X, y).predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_binned_regression_head(tmp_path, data):
    X, _ = data
    folder = make_tiny_checkpoint(tmp_path / "binned", "REGRESSION", dim_output=16)
    reg = MitraRegressor(str(folder), n_estimators=2, random_state=0).fit(X, X[:, 0])
    pred = reg.predict(X)
    lo, hi = X[:, 0].min(), X[:, 0].max()
    span = hi - lo
    assert (pred >= lo - 0.5 * span - 1e-9).all() and (pred <= hi + 0.5 * span + 1e-9).all()
