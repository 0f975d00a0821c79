"""checkpoint=None: the newest official repo that can be had (v2, then v1), the shipped one otherwise
(issues 11 and 24).

Also what a fitted estimator records (``checkpoint_``, ``checkpoint_info_``), that a pickle
reloads exactly those weights, and the slow-CPU warning. No test reaches the network: the Hub
is a fake local cache (conftest.fake_hub_cache) holding tiny official-format checkpoints.
"""

from __future__ import annotations

import pickle
import shutil
import socket
import warnings

import numpy as np
import pytest

from mitra_sklearn import MitraClassifier, MitraRegressor
from mitra_sklearn import checkpoint as checkpoint_module
from mitra_sklearn._inference import cpu_seconds
from mitra_sklearn.catalog import DEFAULT_CHAIN, OFFICIAL
from mitra_sklearn.checkpoint import (
    OFFICIAL_CHECKPOINTS,
    CheckpointInfo,
    resolve_default_checkpoint,
    shipped_default,
    write_checksums,
)
from mitra_sklearn.config import MitraConfig, Task
from mitra_sklearn.exceptions import CheckpointNotFoundError

from .conftest import OFFICIAL_LIKE_COMMIT, fake_hub_cache, make_tiny_checkpoint, strip_metadata

ESTIMATORS = {Task.CLASSIFICATION: MitraClassifier, Task.REGRESSION: MitraRegressor}
OTHER_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def _official_like(tmp_path, task: Task, seed: int = 0):
    return strip_metadata(make_tiny_checkpoint(tmp_path / f"{task.value}-{seed}", task.official_name, seed=seed))


def _data(task: Task, n: int = 24):
    rng = np.random.RandomState(0)
    X = rng.randn(n, 3)
    y = (X[:, 0] > 0).astype(int) if task is Task.CLASSIFICATION else X[:, 0] + 0.1 * rng.randn(n)
    return X, y


def _fit(task: Task, **params):
    X, y = _data(task)
    return ESTIMATORS[task](n_estimators=1, random_state=0, **params).fit(X, y), X


def _default_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "checkpoint=None) uses the shipped" in str(w.message)]


# ---------------------------------------------------------------------------- the resolution rule
@pytest.mark.parametrize("task", list(Task))
@pytest.mark.parametrize("offline", [True, False])
def test_none_resolves_to_the_official_repo_in_the_hub_cache(task, offline, tmp_path, hub_cache, monkeypatch,
                                                             fresh_warnings):
    from huggingface_hub import constants

    fake_hub_cache(hub_cache, OFFICIAL_CHECKPOINTS[task], _official_like(tmp_path, task))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)

    def no_network(*args, **kwargs):
        raise AssertionError("a cached official checkpoint must not touch the network")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fitted, X = _fit(task)
    assert not _default_warnings(record)
    assert fitted.checkpoint_ == OFFICIAL_CHECKPOINTS[task]
    info = fitted.checkpoint_info_
    assert isinstance(info, CheckpointInfo)
    assert (info.source, info.revision, info.reference) == ("hub", OFFICIAL_LIKE_COMMIT, OFFICIAL_CHECKPOINTS[task])
    assert "Hub cache" in info.reason and len(info.sha256) == 64 and info.n_parameters > 0
    assert fitted.config_.dim == 16  # the tiny checkpoint, not the shipped one (dim 96)
    assert np.all(np.isfinite(fitted.predict(X)))


@pytest.mark.parametrize("task", list(Task))
def test_offline_with_an_empty_cache_falls_back_to_the_shipped_model_with_one_warning(task, hub_cache,
                                                                                      fresh_warnings):
    shipped = shipped_default(task)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        first, _ = _fit(task)
        second, _ = _fit(task)
    messages = _default_warnings(record)
    assert len(messages) == 1, messages  # once per process (and task), not per fit
    message = messages[0]
    name = ESTIMATORS[task].__name__
    assert f"{name}(checkpoint=None) uses the shipped checkpoint {shipped!r}" in message  # which
    assert f"{OFFICIAL_CHECKPOINTS[task]!r}" in message and "HF_HUB_OFFLINE is set" in message  # why
    assert "unset HF_HUB_OFFLINE" in message and "hf download" in message  # how to get the official one
    assert f"{name}(checkpoint={shipped!r})" in message  # how to keep the shipped one quietly
    for fitted in (first, second):
        assert fitted.checkpoint_ == shipped
        assert fitted.checkpoint_info_.source == "shipped" and fitted.checkpoint_info_.revision is None
        assert "shipped fallback" in fitted.checkpoint_info_.reason


def test_the_warning_points_at_the_callers_line(hub_cache, fresh_warnings):
    with pytest.warns(UserWarning, match="uses the shipped checkpoint") as record:
        _fit(Task.CLASSIFICATION)
    assert any(w.filename == __file__ for w in record if "uses the shipped" in str(w.message))


def test_without_network_the_fallback_is_fast_and_not_retried_in_every_fit(hub_cache, no_network, sleeps,
                                                                          fresh_warnings):
    with pytest.warns(UserWarning, match="cannot be resolved") as record:
        _fit(Task.CLASSIFICATION)
    assert sleeps == []  # fast: no retry waits (no back-off between attempts)
    assert no_network  # the Hub was asked for once ...
    asked = len(no_network)
    assert "run where the Hugging Face Hub can be reached" in next(m for m in _default_warnings(record))
    fitted, _ = _fit(Task.CLASSIFICATION)
    assert len(no_network) == asked  # ... and not again in the next fit
    assert fitted.checkpoint_ == shipped_default(Task.CLASSIFICATION)


def test_a_network_that_drops_packets_counts_as_none(hub_cache, no_network, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 443))])
    timeouts = []

    def connect(address, timeout=None, *args, **kwargs):
        timeouts.append(timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", connect)
    default = resolve_default_checkpoint(Task.REGRESSION)
    assert default.reference == shipped_default(Task.REGRESSION)
    assert "cannot be reached" in default.reason
    assert timeouts == [checkpoint_module._CONNECT_TIMEOUT_S]


def test_the_official_repo_is_downloaded_when_the_hub_can_be_reached(tmp_path, hub_cache, no_network, monkeypatch,
                                                                     fresh_warnings):
    """The download path, with huggingface_hub's download faked by a copy into the cache."""
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    source = _official_like(tmp_path, Task.CLASSIFICATION)
    monkeypatch.setattr(checkpoint_module, "_hub_unreachable_reason", lambda: None)
    downloads = []

    def fake_download(repo_id, filename, *, revision=None, cache_dir=None, token=None, local_files_only=False):
        snapshot = hub_cache / ("models--" + repo_id.replace("/", "--")) / "snapshots" / OFFICIAL_LIKE_COMMIT
        if not (snapshot / filename).is_file():
            if local_files_only:
                raise LocalEntryNotFoundError(f"{filename} is not cached")
            downloads.append(filename)
            fake_hub_cache(hub_cache, repo_id, source)
        return str(snapshot / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fitted, _ = _fit(Task.CLASSIFICATION)
    assert downloads == ["config.json"]  # both files arrive with the first download here
    assert not _default_warnings(record)
    assert fitted.checkpoint_ == "autogluon/mitra-classifier-2"  # the newest generation
    assert fitted.checkpoint_info_.reason == "the official Mitra v2 checkpoint, downloaded from the Hub"


# ---------------------------------------------------------------------------- newest generation first (issue 24)
V1 = {task: chain[1] for task, chain in DEFAULT_CHAIN.items()}


def _official_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "checkpoint=None) uses the official" in str(w.message)]


@pytest.mark.parametrize("task", list(Task))
def test_v2_comes_before_v1_before_the_shipped_checkpoint(task, tmp_path, hub_cache, fresh_warnings):
    v2, v1 = DEFAULT_CHAIN[task]
    assert OFFICIAL[v2].generation == "v2" and OFFICIAL[v1].generation == "v1" and OFFICIAL_CHECKPOINTS[task] == v2
    fake_hub_cache(hub_cache, v1, _official_like(tmp_path, task, seed=1))
    with warnings.catch_warnings(record=True) as record:  # offline, only v1 cached: v1, with one warning
        warnings.simplefilter("always")
        fitted, _ = _fit(task)
        _fit(task)
    assert fitted.checkpoint_ == v1 and fitted.checkpoint_info_.source == "hub"
    assert fitted.checkpoint_info_.reason.startswith("the official Mitra v1 checkpoint, from the Hub cache: ")
    assert f"{v2} is not in the Hub cache and downloads are disabled" in fitted.checkpoint_info_.reason
    messages = _official_warnings(record)
    assert len(messages) == 1 and not _default_warnings(record), messages
    assert f"uses the official Mitra v1 checkpoint {v1!r}, because {v2!r}" in messages[0]
    assert "76.7 M" in messages[0] or "75.7 M" in messages[0]  # the size of what it would download
    assert f"hf download {v2}" in messages[0]

    fake_hub_cache(hub_cache, v2, _official_like(tmp_path, task, seed=2))
    with warnings.catch_warnings(record=True) as record:  # v2 cached too: v2, quietly
        warnings.simplefilter("always")
        newest, _ = _fit(task)
    assert newest.checkpoint_ == v2 and not _official_warnings(record) and not _default_warnings(record)
    assert newest.checkpoint_info_.reason == "the official Mitra v2 checkpoint, from the Hub cache"
    assert newest.checkpoint_info_.sha256 != fitted.checkpoint_info_.sha256


@pytest.mark.parametrize("task", list(Task))
def test_the_shipped_fallback_names_both_generations(task, hub_cache, fresh_warnings):
    with pytest.warns(UserWarning, match="uses the shipped checkpoint") as record:
        fitted, _ = _fit(task)
    message = _default_warnings(record)[0]
    v2, v1 = DEFAULT_CHAIN[task]
    assert f"{v2!r}" in message and f"{v1!r}" in message
    assert fitted.checkpoint_info_.reason.startswith("the shipped fallback: ")
    assert v2 in fitted.checkpoint_info_.reason and v1 in fitted.checkpoint_info_.reason


def test_without_network_v1_in_the_cache_is_found_after_one_failed_look_up(tmp_path, hub_cache, no_network,
                                                                          fresh_warnings):
    fake_hub_cache(hub_cache, V1[Task.CLASSIFICATION], _official_like(tmp_path, Task.CLASSIFICATION))
    with pytest.warns(UserWarning, match="cannot be resolved"):
        fitted, _ = _fit(Task.CLASSIFICATION)
    assert fitted.checkpoint_ == V1[Task.CLASSIFICATION]
    assert len(no_network) == 1  # the Hub is down for v2: v1 is not looked up on the network again


def test_no_checkpoint_at_all_names_every_repo_tried(hub_cache, monkeypatch, tmp_path):
    monkeypatch.setattr(checkpoint_module, "SHIPPED_CHECKPOINTS_DIR", tmp_path / "none-shipped")
    with pytest.raises(CheckpointNotFoundError) as info:
        resolve_default_checkpoint(Task.REGRESSION)
    message = str(info.value)
    assert all(repo in message for repo in DEFAULT_CHAIN[Task.REGRESSION]) and "no checkpoint is shipped" in message


def test_a_pickle_fitted_on_v1_keeps_loading_v1_when_v2_arrives(tmp_path, hub_cache):
    fake_hub_cache(hub_cache, V1[Task.CLASSIFICATION], _official_like(tmp_path, Task.CLASSIFICATION, seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fitted, X = _fit(Task.CLASSIFICATION)
    expected = fitted.predict_proba(X)
    blob = pickle.dumps(fitted)
    fake_hub_cache(hub_cache, OFFICIAL_CHECKPOINTS[Task.CLASSIFICATION],
                   _official_like(tmp_path, Task.CLASSIFICATION, seed=3))
    assert _fit(Task.CLASSIFICATION)[0].checkpoint_ == OFFICIAL_CHECKPOINTS[Task.CLASSIFICATION]
    loaded = pickle.loads(blob)
    assert loaded.checkpoint_ == V1[Task.CLASSIFICATION]
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)


# ---------------------------------------------------------------------------- per-checkpoint limits (issue 24)
def _fit_limits(tmp_path, hub_cache, repo, task, y_kind="binary", **params):
    fake_hub_cache(hub_cache, repo, _official_like(tmp_path, task))
    X, y = _data(task)
    if y_kind == "multiclass":
        y = np.arange(len(y)) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return ESTIMATORS[task](checkpoint=repo, n_estimators=1, **params).fit(X, y)


@pytest.mark.parametrize(("repo", "y_kind", "rows", "features"), [
    ("autogluon/mitra-classifier-2", "binary", 16_384, 256),
    ("autogluon/mitra-classifier-2", "multiclass", 32_768, 256),
    ("autogluon/mitra-classifier", "multiclass", 8192, 500),
    ("autogluon/mitra-classifier-1.1", "binary", 8192, 500),
])
def test_auto_limits_follow_the_checkpoint(repo, y_kind, rows, features, tmp_path, hub_cache):
    fitted = _fit_limits(tmp_path, hub_cache, repo, Task.CLASSIFICATION, y_kind)
    assert (fitted.max_support_rows_, fitted.max_features_) == (rows, features)
    assert fitted.max_support_rows == "auto" and fitted.max_features == "auto"  # parameters stay as given


@pytest.mark.parametrize(("repo", "rows", "features"), [("autogluon/mitra-regressor-2", 32_768, 256),
                                                        ("autogluon/mitra-regressor", 8192, 500)])
def test_auto_limits_of_the_regressors(repo, rows, features, tmp_path, hub_cache):
    fitted = _fit_limits(tmp_path, hub_cache, repo, Task.REGRESSION)
    assert (fitted.max_support_rows_, fitted.max_features_) == (rows, features)


def test_an_explicit_limit_wins(tmp_path, hub_cache):
    fitted = _fit_limits(tmp_path, hub_cache, "autogluon/mitra-classifier-2", Task.CLASSIFICATION,
                         max_support_rows=10, max_features=2)
    assert (fitted.max_support_rows_, fitted.max_features_) == (10, 2)
    assert fitted.n_estimators_ == 2  # 3 features in subsets of at most 2
    assert all(len(m.support_rows) == 10 for m in fitted.members_)


def test_a_checkpoint_declares_its_limits_in_config_json(tmp_path):
    import json

    folder = make_tiny_checkpoint(tmp_path / "declared", "REGRESSION")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "context_limits": {"support_rows": 12, "features": 7}}))
    fitted, _ = _fit(Task.REGRESSION, checkpoint=str(folder))
    assert (fitted.max_support_rows_, fitted.max_features_) == (12, 7)
    (folder / "config.json").write_text(json.dumps({**config, "context_limits": {"support_rows": -1}}))
    from mitra_sklearn.exceptions import CheckpointIntegrityError

    with pytest.raises(CheckpointIntegrityError, match="context_limits"):
        _fit(Task.REGRESSION, checkpoint=str(folder))


def test_other_checkpoints_get_the_v1_limits(tiny_regressor_checkpoint):
    fitted, _ = _fit(Task.REGRESSION, checkpoint=tiny_regressor_checkpoint)
    assert (fitted.max_support_rows_, fitted.max_features_) == (8192, 500)


@pytest.mark.parametrize("task", list(Task))
def test_an_explicit_repo_id_offline_raises_todays_error_and_never_falls_back(task, hub_cache):
    with pytest.raises(CheckpointNotFoundError) as info:
        _fit(task, checkpoint=OFFICIAL_CHECKPOINTS[task])
    message = str(info.value)
    assert "HF_HUB_OFFLINE is set" in message and "Offline alternatives" in message
    assert f"checkpoint={shipped_default(task)!r}" in message


def test_an_explicit_shipped_checkpoint_gives_no_default_warning(hub_cache, fresh_warnings):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fitted, _ = _fit(Task.CLASSIFICATION, checkpoint=shipped_default(Task.CLASSIFICATION))
    assert not _default_warnings(record)
    assert fitted.checkpoint_info_.reason == "the checkpoint argument"


def test_verbose_fit_names_the_checkpoint_revision_and_reason(tmp_path, hub_cache, capsys):
    fake_hub_cache(hub_cache, "autogluon/mitra-classifier", _official_like(tmp_path, Task.CLASSIFICATION))
    _fit(Task.CLASSIFICATION, verbose=True)
    err = capsys.readouterr()
    text = err.out + err.err
    assert "'autogluon/mitra-classifier' (hub, revision 0123456789ab" in text
    assert "from the Hub cache" in text


# ---------------------------------------------------------------------------- pickles reload the same weights
def test_a_pickle_reloads_the_commit_it_was_fitted_with(tmp_path, hub_cache):
    repo = "autogluon/mitra-classifier"
    snapshot = fake_hub_cache(hub_cache, repo, _official_like(tmp_path, Task.CLASSIFICATION, seed=0))
    fitted, X = _fit(Task.CLASSIFICATION)
    expected = fitted.predict_proba(X)
    blob = pickle.dumps(fitted)
    # The repo moves on: main now points at other weights.
    fake_hub_cache(hub_cache, repo, _official_like(tmp_path, Task.CLASSIFICATION, seed=1), commit=OTHER_COMMIT)
    refit, _ = _fit(Task.CLASSIFICATION)
    assert refit.checkpoint_info_.revision == OTHER_COMMIT
    assert not np.allclose(refit.predict_proba(X), expected)
    loaded = pickle.loads(blob)
    assert loaded.checkpoint_info_.revision == OFFICIAL_LIKE_COMMIT
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    # Those weights gone and no network: a clear error, not other weights.
    for name in ("config.json", "model.safetensors"):
        (snapshot / name).unlink()
    with pytest.raises(CheckpointNotFoundError, match="mitra-classifier"):
        pickle.loads(blob).predict_proba(X)


def _fit_on_a_shipped_classifier(shipped, monkeypatch):
    """A classifier fitted with checkpoint=None on a tiny shipped 'mitra-small-classifier'."""
    write_checksums(make_tiny_checkpoint(shipped / "mitra-small-classifier", "CLASSIFICATION", seed=0))
    monkeypatch.setattr(checkpoint_module, "SHIPPED_CHECKPOINTS_DIR", shipped)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the fallback warning
        fitted, X = _fit(Task.CLASSIFICATION)
    assert fitted.checkpoint_ == "mitra-small-classifier"
    return fitted, X


def _replace_shipped_classifier(shipped):
    # No sleep for a new modification time: the caches notice a rewrite by inode and ctime too.
    write_checksums(make_tiny_checkpoint(shipped / "mitra-small-classifier", "CLASSIFICATION", seed=1))


def test_a_pickle_refuses_a_replaced_shipped_checkpoint(tmp_path, hub_cache, monkeypatch):
    shipped = tmp_path / "shipped"
    fitted, X = _fit_on_a_shipped_classifier(shipped, monkeypatch)
    blob = pickle.dumps(fitted)
    np.testing.assert_array_equal(pickle.loads(blob).predict_proba(X), fitted.predict_proba(X))
    _replace_shipped_classifier(shipped)
    with pytest.raises(CheckpointNotFoundError, match=r"shipped checkpoint 'mitra-small-classifier' whose .*SHA-256"):
        pickle.loads(blob).predict_proba(X)


def test_a_pickle_follows_its_shipped_weights_to_their_new_name(tmp_path, hub_cache, monkeypatch):
    # A release that replaces a shipped checkpoint keeps the old one as "<name>-v1": pickles
    # fitted on the old weights predict exactly as before, from the renamed copy.
    shipped = tmp_path / "shipped"
    fitted, X = _fit_on_a_shipped_classifier(shipped, monkeypatch)
    expected = fitted.predict_proba(X)
    blob = pickle.dumps(fitted)
    shutil.copytree(shipped / "mitra-small-classifier", shipped / "mitra-small-classifier-v1")
    _replace_shipped_classifier(shipped)
    np.testing.assert_array_equal(pickle.loads(blob).predict_proba(X), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        refit, _ = _fit(Task.CLASSIFICATION)
    assert refit.checkpoint_info_.sha256 != fitted.checkpoint_info_.sha256  # a new fit reads the new weights


def test_a_pickle_refuses_a_local_folder_holding_other_weights(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "mine", "REGRESSION", seed=0)
    fitted, X = _fit(Task.REGRESSION, checkpoint=str(folder))
    assert fitted.checkpoint_info_.source == "local"
    blob = pickle.dumps(fitted)
    make_tiny_checkpoint(folder, "REGRESSION", seed=1)
    with pytest.raises(CheckpointNotFoundError, match="now holds other weights"):
        pickle.loads(blob).predict(X)


def test_pickles_without_checkpoint_info_still_load_by_reference(tiny_classifier_checkpoint):
    fitted, X = _fit(Task.CLASSIFICATION, checkpoint=tiny_classifier_checkpoint)
    state = fitted.__getstate__()
    del state["checkpoint_info_"]  # as pickled by mitra-sklearn 0.2
    old = MitraClassifier.__new__(MitraClassifier)
    old.__setstate__(state)
    np.testing.assert_array_equal(old.predict_proba(X), fitted.predict_proba(X))


# ---------------------------------------------------------------------------- the slow-CPU warning
def test_the_cpu_rule_scales_with_cells_support_rows_model_size_and_threads():
    official = MitraConfig()
    one = cpu_seconds(official, [(1000, 1000, 10)], threads=2)
    assert 10 < one < 100  # measured: 1,024 x 1,000 x 10 took 32 s (benchmarks/cpu_rule.py)
    assert cpu_seconds(official, [(1000, 1000, 10)] * 4, threads=2) == pytest.approx(4 * one)
    assert cpu_seconds(official, [(1000, 1000, 10)], threads=4) == pytest.approx(one / 2)
    assert cpu_seconds(official, [(8000, 1000, 10)], threads=2) > 4.5 * one  # attention grows with support
    assert cpu_seconds(MitraConfig(dim=96, n_layers=3), [(1000, 1000, 10)], threads=2) < one / 50


def test_a_large_model_on_the_cpu_says_how_long_it_will_take_once(tiny_classifier_checkpoint, fresh_warnings):
    fitted, X = _fit(Task.CLASSIFICATION, checkpoint=tiny_classifier_checkpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.predict(X)  # a tiny model: no warning
        fitted._warn_if_slow_on_cpu(100_000, None)
    # Pretend it is of the official shape (without running it).
    fitted.config_ = MitraConfig()
    fitted.configs_ = (fitted.config_,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted._warn_if_slow_on_cpu(100, None)  # a small table: no warning
    with pytest.warns(UserWarning, match="will take about") as record:
        fitted._warn_if_slow_on_cpu(20_000, None)
    message = str(record[0].message)
    assert "on the CPU" in message and "device='cuda'" in message
    assert f"checkpoint={shipped_default(Task.CLASSIFICATION)!r}" in message and "faster" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted._warn_if_slow_on_cpu(20_000, None)  # once per process


# ---------------------------------------------------------------------------- the v2 repos load (issue 24)
@pytest.mark.parametrize("repo", ["autogluon/mitra-classifier-2", "autogluon/mitra-classifier-1.1",
                                  "autogluon/mitra-regressor-2"])
def test_the_newer_official_repos_load_by_repo_id_and_from_a_folder(repo, tmp_path, hub_cache):
    from mitra_sklearn import load_model

    task = OFFICIAL[repo].task
    bins = 1000 if repo.endswith("regressor-2") else None  # v2's regressor: a 1,000-bin head
    folder = strip_metadata(make_tiny_checkpoint(tmp_path / "download", task.official_name, dim_output=bins))
    fake_hub_cache(hub_cache, repo, folder)
    assert load_model(repo).config == load_model(str(folder)).config
    X, y = _data(task)
    for checkpoint in (repo, str(folder)):
        fitted = ESTIMATORS[task](checkpoint=checkpoint, n_estimators=2, random_state=0).fit(X, y)
        assert fitted.checkpoint_info_.source == ("hub" if checkpoint == repo else "local")
        if bins:
            quantiles = fitted.predict_quantiles(X)
            assert quantiles.shape == (len(X), 3) and np.all(np.diff(quantiles, axis=1) >= 0)
        else:
            assert fitted.predict_proba(X).shape == (len(X), 2)


# ---------------------------------------------------------------------------- softmax temperature (issue 25)
def test_the_softmax_temperature_sharpens_each_members_probabilities(tiny_classifier_checkpoint):
    X, _ = _data(Task.CLASSIFICATION, n=40)
    y = np.arange(40) % 3
    plain = MitraClassifier(tiny_classifier_checkpoint, n_estimators=1, random_state=0).fit(X, y)
    assert plain.softmax_temperature_ == 1.0
    sharp = MitraClassifier(tiny_classifier_checkpoint, n_estimators=1, random_state=0,
                            softmax_temperature=0.5).fit(X, y)
    expected = np.exp(2 * np.log(plain.predict_proba(X)))
    np.testing.assert_allclose(sharp.predict_proba(X), expected / expected.sum(axis=1, keepdims=True), rtol=1e-6)


def test_a_checkpoint_declares_its_temperature_and_an_explicit_one_wins(tmp_path):
    import json

    from mitra_sklearn.exceptions import CheckpointIntegrityError

    folder = make_tiny_checkpoint(tmp_path / "tempered", "CLASSIFICATION")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "softmax_temperature": 0.6}))
    fitted, _ = _fit(Task.CLASSIFICATION, checkpoint=str(folder))
    assert fitted.softmax_temperature_ == 0.6 and fitted.task_.temperature == 0.6
    assert (fitted.max_support_rows_, fitted.max_features_) == (8192, 500)  # limits not declared: v1's
    assert _fit(Task.CLASSIFICATION, checkpoint=str(folder), softmax_temperature=2.0)[0].softmax_temperature_ == 2.0
    (folder / "config.json").write_text(json.dumps({**config, "softmax_temperature": 0}))
    with pytest.raises(CheckpointIntegrityError, match="softmax_temperature"):
        _fit(Task.CLASSIFICATION, checkpoint=str(folder))


def test_a_checkpoint_declares_how_many_classes_a_member_predicts(tmp_path):
    import json

    from mitra_sklearn.exceptions import CheckpointIntegrityError

    folder = make_tiny_checkpoint(tmp_path / "grouped", "CLASSIFICATION")
    config = json.loads((folder / "config.json").read_text())
    rng = np.random.RandomState(0)
    X, y = rng.randn(120, 3), np.arange(120) % 7
    plain = MitraClassifier(str(folder), n_estimators=2, random_state=0).fit(X, y)
    assert plain.task_.n_label_ids == 10 and plain.n_estimators_ == 2  # 7 classes fit the head
    (folder / "config.json").write_text(json.dumps({**config, "max_classes_per_member": 3}))
    grouped = MitraClassifier(str(folder), n_estimators=2, random_state=0).fit(X, y)
    assert grouped.task_.n_label_ids == 3 and grouped.n_estimators_ > 2  # class groups need more members
    assert all(len(np.unique(m.class_ids)) == 3 for m in grouped.members_)
    proba = grouped.predict_proba(X[:5])
    assert proba.shape == (5, 7) and np.allclose(proba.sum(axis=1), 1)
    (folder / "config.json").write_text(json.dumps({**config, "max_classes_per_member": 1}))
    with pytest.raises(CheckpointIntegrityError, match="max_classes_per_member"):
        MitraClassifier(str(folder)).fit(X, y)


def test_the_official_checkpoints_keep_a_plain_softmax(tmp_path, hub_cache):
    fitted = _fit_limits(tmp_path, hub_cache, "autogluon/mitra-classifier-2", Task.CLASSIFICATION)
    assert fitted.softmax_temperature_ == 1.0
