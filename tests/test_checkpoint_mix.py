"""Ensembles whose members come from several checkpoints: a list, or a checkpoint's declared partners.

The reference for every comparison is the one-checkpoint estimator: member i of a mix of k
checkpoints must give exactly what member i of the same plan gives with checkpoint i mod k alone.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression

from mitra_sklearn import MitraClassifier, MitraRegressor
from mitra_sklearn._runtime import clear_process_caches

from .conftest import make_tiny_checkpoint


@pytest.fixture(scope="module")
def two_classifiers(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("mix")
    return (str(make_tiny_checkpoint(root / "a", "CLASSIFICATION", seed=1)),
            str(make_tiny_checkpoint(root / "b", "CLASSIFICATION", seed=2)))


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=3, random_state=0)
    return X[:90], y[:90], X[90:]


def _members_alone(checkpoints, X, y, X_test, **params) -> list[list[np.ndarray]]:
    """Each checkpoint's member outputs when it alone runs the same plan."""
    return [MitraClassifier(checkpoint=c, **params).fit(X, y)._predict_members(X_test) for c in checkpoints]


@pytest.mark.parametrize("support_cache", ["predict", "fit", "off"])
def test_members_take_the_checkpoints_in_turn(two_classifiers, data, support_cache):
    X, y, X_test = data
    params = dict(n_estimators=4, random_state=0, support_cache=support_cache)
    mix = MitraClassifier(checkpoint=list(two_classifiers), **params).fit(X, y)
    alone = _members_alone(two_classifiers, X, y, X_test, **params)
    members = mix._predict_members(X_test)
    for i, outputs in enumerate(members):
        np.testing.assert_allclose(outputs, alone[i % 2][i], rtol=1e-6, atol=1e-7)
    assert [info.reference for info in mix.checkpoint_infos_] == list(two_classifiers)
    assert mix.checkpoint_info_ == mix.checkpoint_infos_[0] and mix.checkpoint_ == two_classifiers[0]
    # The mix is neither checkpoint alone.
    proba = mix.predict_proba(X_test)
    for checkpoint in two_classifiers:
        one = MitraClassifier(checkpoint=checkpoint, **params).fit(X, y).predict_proba(X_test)
        assert not np.allclose(proba, one, atol=1e-4)


def test_nearest_support_sets_with_several_checkpoints(two_classifiers):
    X, y = make_classification(n_samples=300, n_features=5, random_state=1)
    params = dict(n_estimators=2, random_state=0, max_support_rows=64, support_selection="nearest")
    mix = MitraClassifier(checkpoint=two_classifiers, **params).fit(X[:250], y[:250])
    alone = _members_alone(two_classifiers, X[:250], y[:250], X[250:], **params)
    for i, outputs in enumerate(mix._predict_members(X[250:])):
        np.testing.assert_allclose(outputs, alone[i][i], rtol=1e-6, atol=1e-7)


def test_a_pickled_mix_predicts_the_same_and_reloads_every_checkpoint(two_classifiers, data):
    X, y, X_test = data
    mix = MitraClassifier(checkpoint=tuple(two_classifiers), n_estimators=4, random_state=0).fit(X, y)
    expected = mix.predict_proba(X_test)
    clear_process_caches()
    copy = pickle.loads(pickle.dumps(mix))
    np.testing.assert_allclose(copy.predict_proba(X_test), expected, rtol=1e-6, atol=1e-7)
    assert sorted(copy._runtime.files) == [0, 1]
    assert copy.checkpoint_infos_ == mix.checkpoint_infos_


def test_declared_partners_join_the_ensemble(tmp_path, data):
    X, y, X_test = data
    partner = make_tiny_checkpoint(tmp_path / "partner", "CLASSIFICATION", seed=3)
    main = make_tiny_checkpoint(tmp_path / "main", "CLASSIFICATION", seed=4)
    config = json.loads((main / "config.json").read_text())
    (main / "config.json").write_text(json.dumps({**config, "ensemble_with": ["../partner"]}))

    declared = MitraClassifier(checkpoint=str(main), n_estimators=4, random_state=0).fit(X, y)
    listed = MitraClassifier(checkpoint=[str(main), str(partner)], n_estimators=4, random_state=0).fit(X, y)
    assert [Path(info.reference) for info in declared.checkpoint_infos_] == [main, partner]
    assert declared.checkpoint_infos_[1].reason == f"the ensemble partner that {str(main)!r} declares (ensemble_with)"
    np.testing.assert_allclose(declared.predict_proba(X_test), listed.predict_proba(X_test), rtol=1e-6)
    # Naming the partner as well changes nothing: a checkpoint named twice counts once.
    both = MitraClassifier(checkpoint=[str(main), str(partner)], n_estimators=4, random_state=0).fit(X, y)
    assert len(both.checkpoint_infos_) == 2


def test_checkpoints_of_other_depths_and_widths_mix(tmp_path, two_classifiers, data):
    """Only the head and task must agree: a deeper or wider model's members run on its own shape."""
    X, y, X_test = data
    deeper = str(make_tiny_checkpoint(tmp_path / "deeper", "CLASSIFICATION", n_layers=2, dim=24, seed=7))
    checkpoints = [two_classifiers[0], deeper]
    params = dict(n_estimators=3, random_state=0)
    mix = MitraClassifier(checkpoint=checkpoints, **params).fit(X, y)
    assert [c.n_layers for c in mix.configs_] == [1, 2] and mix.config_ == mix.configs_[0]
    alone = _members_alone(checkpoints, X, y, X_test, **params)
    for i, outputs in enumerate(mix._predict_members(X_test)):
        np.testing.assert_allclose(outputs, alone[i % 2][i], rtol=1e-6, atol=1e-7)
    expected = mix.predict_proba(X_test)
    clear_process_caches()
    copy = pickle.loads(pickle.dumps(mix))
    np.testing.assert_allclose(copy.predict_proba(X_test), expected, rtol=1e-6, atol=1e-7)


def test_the_slow_cpu_estimate_of_a_mix_uses_its_costliest_shape(two_classifiers, data, fresh_warnings):
    from mitra_sklearn.config import MitraConfig

    X, y, _ = data
    mix = MitraClassifier(checkpoint=list(two_classifiers), n_estimators=2, random_state=0).fit(X, y)
    mix.configs_ = (mix.config_, MitraConfig())  # pretend the partner has the official shape
    with pytest.warns(UserWarning, match="will take about") as record:
        mix._warn_if_slow_on_cpu(20_000, None)
    assert repr(two_classifiers[1]) in str(record[0].message)


def test_a_changed_partner_config_is_named(tmp_path, two_classifiers, data):
    X, y, X_test = data
    partner = make_tiny_checkpoint(tmp_path / "partner", "CLASSIFICATION", n_layers=2, seed=8)
    mix = MitraClassifier(checkpoint=[two_classifiers[0], str(partner)], n_estimators=2, random_state=0).fit(X, y)
    pickled = pickle.dumps(mix)
    config = json.loads((partner / "config.json").read_text())
    (partner / "config.json").write_text(json.dumps({**config, "n_layers": 3}))
    clear_process_caches()
    with pytest.raises(Exception, match=f"fitted with checkpoint {str(partner)!r} of config .*n_layers=2"):
        pickle.loads(pickled).predict_proba(X_test)


def test_a_regressor_mix(tmp_path):
    X, y = make_regression(n_samples=80, n_features=4, random_state=0)
    checkpoints = [str(make_tiny_checkpoint(tmp_path / name, "REGRESSION", seed=seed))
                   for name, seed in (("a", 5), ("b", 6))]
    mix = MitraRegressor(checkpoint=checkpoints, n_estimators=2, random_state=0).fit(X[:60], y[:60])
    alone = [MitraRegressor(checkpoint=c, n_estimators=2, random_state=0).fit(X[:60], y[:60])._predict_members(X[60:])
             for c in checkpoints]
    for i, outputs in enumerate(mix._predict_members(X[60:])):
        np.testing.assert_allclose(outputs, alone[i][i], rtol=1e-6)
    assert mix.predict(X[60:]).shape == (20,)


def test_bad_mixes_are_refused(tmp_path, two_classifiers, data):
    X, y, _ = data
    with pytest.raises(ValueError, match="checkpoint is an empty list"):
        MitraClassifier(checkpoint=[]).fit(X, y)
    with pytest.raises(TypeError, match="checkpoint entries must be str or path-like, got int 3"):
        MitraClassifier(checkpoint=[two_classifiers[0], 3]).fit(X, y)
    other_head = str(make_tiny_checkpoint(tmp_path / "head", "CLASSIFICATION", dim_output=4))
    with pytest.raises(ValueError, match="same task and output head .* dim_output 10, .* dim_output 4"):
        MitraClassifier(checkpoint=[two_classifiers[0], other_head]).fit(X, y)
    regressor = str(make_tiny_checkpoint(tmp_path / "regressor", "REGRESSION", dim_output=10))
    with pytest.raises(ValueError, match="same task and output head"):
        MitraClassifier(checkpoint=[two_classifiers[0], regressor]).fit(X, y)
    fitted = MitraClassifier(checkpoint=two_classifiers[0], n_estimators=2).fit(X, y)
    with pytest.raises(ValueError, match="needs one checkpoint, but the members come from 2"):
        fitted.set_params(checkpoint=list(two_classifiers), fine_tune=True, fine_tune_steps=1).fit(X, y)
    assert len(fitted.checkpoint_infos_) == 1  # refused before anything of the old fit changed
    broken = make_tiny_checkpoint(tmp_path / "broken", "CLASSIFICATION")
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "ensemble_with": "not-a-list"}))
    with pytest.raises(Exception, match="ensemble_with must be a list of checkpoint references"):
        MitraClassifier(checkpoint=str(broken)).fit(X, y)


def test_a_list_survives_clone_and_get_params(two_classifiers):
    estimator = MitraClassifier(checkpoint=list(two_classifiers), n_estimators=2)
    assert clone(estimator).get_params()["checkpoint"] == list(two_classifiers)


def test_n_estimators_auto_is_the_checkpoints_declared_count(tmp_path, data):
    X, y, _ = data
    folder = make_tiny_checkpoint(tmp_path / "six", "CLASSIFICATION")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "n_estimators": 6}))
    assert MitraClassifier(checkpoint=str(folder)).fit(X, y).n_estimators_ == 6
    assert MitraClassifier(checkpoint=str(folder), n_estimators=2).fit(X, y).n_estimators_ == 2
    plain = make_tiny_checkpoint(tmp_path / "plain", "CLASSIFICATION")
    assert MitraClassifier(checkpoint=str(plain)).fit(X, y).n_estimators_ == 4
    (folder / "config.json").write_text(json.dumps({**config, "n_estimators": 0}))
    with pytest.raises(Exception, match="n_estimators must be a positive integer, got 0"):
        MitraClassifier(checkpoint=str(folder)).fit(X, y)
