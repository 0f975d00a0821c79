"""`get_embeddings`: each member's embedding of each row, the vector its output head reads.

The reference is the head itself: the model's ``final_layer`` applied to a member's embeddings
must give that member's raw outputs, on every prediction path (support encoded per call, in
fit, re-run per slice, nearest-rows support sets).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import NotFittedError

from mitra_sklearn import MitraClassifier, MitraRegressor

from .conftest import make_tiny_checkpoint

PATHS = [
    {"support_cache": "predict"},
    {"support_cache": "fit"},
    {"support_cache": "off"},
    {"support_selection": "nearest", "max_support_rows": 30},
]


@pytest.fixture(scope="module")
def classification():
    X, y = make_classification(n_samples=120, n_features=5, n_informative=3, n_classes=3, random_state=0)
    return X[:90], y[:90], X[90:]


def _raw_outputs(estimator, X) -> list[np.ndarray]:
    return estimator._run_members(estimator._encode_query(X), lambda member, outputs, context: outputs)


def _head(estimator, index: int, embeddings: np.ndarray) -> np.ndarray:
    model = estimator._member_runners()[index].model
    with torch.no_grad():
        out = model.final_layer(torch.as_tensor(embeddings)).numpy()
    return out if model.config.uses_class_label_embedding else out[..., 0]


@pytest.mark.parametrize("params", PATHS, ids=lambda p: "-".join(map(str, p.values())))
def test_the_head_of_the_embeddings_is_the_members_output(tiny_classifier_checkpoint, classification, params):
    X, y, X_test = classification
    clf = MitraClassifier(tiny_classifier_checkpoint, n_estimators=3, random_state=0,
                          inference_precision="float32", **params).fit(X, y)
    embeddings = clf.get_embeddings(X_test)
    assert embeddings.shape == (clf.n_estimators_, len(X_test), clf.config_.dim)
    assert embeddings.dtype == np.float32 and np.isfinite(embeddings).all()
    for index, outputs in enumerate(_raw_outputs(clf, X_test)):
        np.testing.assert_allclose(_head(clf, index, embeddings[index]), outputs, atol=1e-5)
    # Members read different views: their embeddings differ.
    assert not np.allclose(embeddings[0], embeddings[1])


def test_regressor_embeddings(tiny_regressor_checkpoint):
    X, y = make_regression(n_samples=80, n_features=4, noise=1.0, random_state=0)
    reg = MitraRegressor(tiny_regressor_checkpoint, n_estimators=2, random_state=0,
                         inference_precision="float32").fit(X[:60], y[:60])
    embeddings = reg.get_embeddings(X[60:])
    assert embeddings.shape == (2, 20, reg.config_.dim)
    for index, outputs in enumerate(_raw_outputs(reg, X[60:])):
        np.testing.assert_allclose(_head(reg, index, embeddings[index]), outputs, atol=1e-5)


def test_repeatable_and_kept_by_pickling(tiny_classifier_checkpoint, classification):
    X, y, X_test = classification
    clf = MitraClassifier(tiny_classifier_checkpoint, n_estimators=2, random_state=0).fit(X, y)
    first = clf.get_embeddings(X_test)
    np.testing.assert_array_equal(clf.get_embeddings(X_test), first)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).get_embeddings(X_test), first)
    # One row alone is embedded as it is among others (rows never see each other).
    np.testing.assert_allclose(clf.get_embeddings(X_test[:1])[:, 0], first[:, 0], atol=1e-2)


def test_bad_calls(tiny_classifier_checkpoint, classification, tmp_path):
    X, y, X_test = classification
    with pytest.raises(NotFittedError):
        MitraClassifier(tiny_classifier_checkpoint).get_embeddings(X_test)
    clf = MitraClassifier(tiny_classifier_checkpoint, n_estimators=2).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.get_embeddings(X_test[:, :3])
    wide = str(make_tiny_checkpoint(tmp_path / "wide", "CLASSIFICATION", dim=24))
    mixed = MitraClassifier([tiny_classifier_checkpoint, wide], n_estimators=2).fit(X, y)
    with pytest.raises(ValueError, match=r"widths \[16, 24\]"):
        mixed.get_embeddings(X_test)
