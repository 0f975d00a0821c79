"""Ensemble members across a list of devices, the device parameter's checks, precision 'auto' on CPUs,
and the process-level caches that unpickled copies share."""

from __future__ import annotations

import pickle
import threading
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone

from mitra_sklearn import MitraClassifier, MitraRegressor, _runtime, devices
from mitra_sklearn._inference import map_on_devices
from mitra_sklearn.devices import check_device_parameter, member_devices, resolve_devices, resolve_precision


@pytest.fixture
def table():
    rng = np.random.RandomState(0)
    X = rng.randn(120, 6)
    y_class = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 1)
    y_value = X[:, 0] - 2 * X[:, 1] + 0.1 * rng.randn(len(X))
    return X, y_class, y_value


CLASSIFIER, REGRESSOR = "mitra-small-classifier", "mitra-small-regressor"
CPU_LISTS = [["cpu", "cpu"], ["cpu", torch.device("cpu"), "cpu:0"], ("cpu",)]


@pytest.mark.parametrize("device", CPU_LISTS, ids=["two", "three-mixed", "tuple"])
@pytest.mark.parametrize("support_cache", ["predict", "fit"])
def test_a_list_of_cpu_devices_predicts_exactly_as_one_device(table, device, support_cache):
    X, y_class, y_value = table
    for est, y in ((MitraClassifier(CLASSIFIER, n_estimators=5, random_state=0, support_cache=support_cache), y_class),
                   (MitraRegressor(REGRESSOR, n_estimators=5, random_state=0, support_cache=support_cache), y_value)):
        one = clone(est).set_params(device="cpu").fit(X[:80], y[:80])
        spread = clone(est).set_params(device=device).fit(X[:80], y[:80])
        assert spread.devices_ == member_devices(len(spread.devices_), resolve_devices(device))
        method = "predict_proba" if isinstance(est, MitraClassifier) else "predict"
        np.testing.assert_array_equal(getattr(spread, method)(X[80:]), getattr(one, method)(X[80:]))
        if isinstance(est, MitraRegressor):
            np.testing.assert_array_equal(spread.predict(X[80:], return_std=True)[1],
                                          one.predict(X[80:], return_std=True)[1])


def test_the_device_list_is_stored_unchanged_and_survives_clone_and_pickle(table):
    X, y, _ = table
    device = ["cpu", "cpu:0"]
    est = MitraClassifier(CLASSIFIER, n_estimators=3, device=device, random_state=0)
    assert est.get_params()["device"] is device
    assert clone(est).get_params()["device"] == device
    fitted = est.fit(X, y)
    assert fitted.device == ["cpu", "cpu:0"] and fitted.devices_ == [torch.device("cpu"), torch.device("cpu:0")]
    copy = pickle.loads(pickle.dumps(fitted))
    assert copy.device == device and copy.devices_ == fitted.devices_
    np.testing.assert_array_equal(copy.predict_proba(X), fitted.predict_proba(X))
    assert est.__sklearn_tags__().non_deterministic is False
    assert clone(est).set_params(device=["cpu", "cuda:0"]).__sklearn_tags__().non_deterministic is True


@pytest.mark.parametrize(("device", "message"), [
    ([], r"device=\[\] names no device"),
    (["cpu", "auto"], r"device\[1\] is 'auto'"),
    (["cpu", 3], r"device\[1\] must be a device name or a torch.device, got int"),
    (["cpu", "gpu"], r"device\[1\] must be 'auto', 'cpu'"),
    ("gpu", r"device must be 'auto', 'cpu'"),
    ([["cpu"]], r"device\[0\] must be a device name"),
])
def test_bad_device_parameters_fail_in_fit_naming_the_entry(table, device, message):
    X, y, _ = table
    with pytest.raises(ValueError, match=message):
        MitraClassifier(CLASSIFIER, n_estimators=2, device=device).fit(X, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_unavailable_device_in_a_list_fails_in_fit_and_falls_back_after_unpickling(table):
    X, y, _ = table
    with pytest.raises(ValueError, match="cuda:1 is not available"):
        MitraClassifier(CLASSIFIER, n_estimators=2, device=["cpu", "cuda:1"]).fit(X, y)
    fitted = MitraClassifier(CLASSIFIER, n_estimators=2, device=["cpu", "cpu"], random_state=0).fit(X, y)
    expected = fitted.predict_proba(X)
    fitted.device = ["cpu", "cuda:1"]  # as if fitted on a machine with two devices
    with pytest.warns(UserWarning, match="cuda:1 is not available on this machine"):
        copy = pickle.loads(pickle.dumps(fitted))
    assert copy.devices_ == [torch.device("cpu"), torch.device("cpu")]
    np.testing.assert_array_equal(copy.predict_proba(X), expected)


def test_members_of_different_accelerators_run_in_their_own_threads_and_keep_their_order():
    cuda = [torch.device("cuda:0"), torch.device("cuda:1")]
    used = [cuda[i % 2] for i in range(5)]  # nothing touches the devices: only the grouping is tested
    barrier = threading.Barrier(2, timeout=10)  # both device threads must be running at once
    seen = {}

    def run(index, progress):
        if index < 2:
            barrier.wait()
        seen[index] = threading.current_thread().name
        return index * 10

    assert map_on_devices(run, used) == [0, 10, 20, 30, 40]
    assert seen[0] != seen[1] and seen[0] == seen[2] == seen[4] and seen[1] == seen[3]
    assert threading.current_thread().name not in seen.values()


def test_cpu_devices_run_in_the_calling_thread_and_errors_of_a_device_thread_are_raised():
    names = map_on_devices(lambda index, progress: threading.current_thread().name,
                           [torch.device("cpu"), torch.device("cpu:0")])
    assert names == [threading.current_thread().name] * 2

    def fail_on_one(index, progress):
        if index == 1:
            raise RuntimeError("device 1 failed")
        return index

    with pytest.raises(RuntimeError, match="device 1 failed"):
        map_on_devices(fail_on_one, [torch.device("cuda:0"), torch.device("cuda:1")])


def test_check_device_parameter_parses_each_entry():
    assert check_device_parameter("auto") == "auto"
    assert check_device_parameter("cuda:1") == torch.device("cuda", 1)
    assert check_device_parameter(("cpu", torch.device("cuda:0"))) == [torch.device("cpu"), torch.device("cuda:0")]
    assert member_devices(5, [torch.device("cpu"), torch.device("cuda:0")]) == [
        torch.device("cpu"), torch.device("cuda:0"), torch.device("cpu"), torch.device("cuda:0"), torch.device("cpu")]


@pytest.mark.parametrize(("kind", "expected", "training"), [(None, torch.float32, torch.float32),
                                                            ("AVX512-BF16", torch.bfloat16, torch.float32),
                                                            ("AMX", torch.bfloat16, torch.bfloat16)])
def test_auto_precision_on_a_cpu_follows_the_measured_choice(monkeypatch, kind, expected, training):
    monkeypatch.setattr(devices, "cpu_bf16_kind", lambda: kind)
    assert resolve_precision("auto", torch.device("cpu"), inference=True) == expected
    # Pretraining: bf16 was measured faster than float32 only with AMX.
    assert resolve_precision("auto", torch.device("cpu")) == training
    assert resolve_precision("float32", torch.device("cpu"), inference=True) == torch.float32
    assert resolve_precision("auto", torch.device("mps"), inference=True) == torch.float32


def test_cpu_bf16_kind_reads_the_cpu_flags(monkeypatch, tmp_path):
    for flags, expected in (("fpu avx2 avx512f", None), ("avx512f avx512_bf16", "AVX512-BF16"),
                            ("avx512_bf16 amx_bf16 amx_tile", "AMX")):
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n")
        devices._cpu_bf16_kind.cache_clear()
        monkeypatch.setattr(devices, "_CPUINFO", str(cpuinfo))
        assert devices.cpu_bf16_kind() == expected
    devices._cpu_bf16_kind.cache_clear()


def test_unpickled_copies_share_one_model_and_encode_each_support_set_once(table):
    X, y, _ = table
    fitted = MitraClassifier(CLASSIFIER, n_estimators=3, random_state=0).fit(X[:80], y[:80])
    expected = fitted.predict_proba(X[80:])
    blob = pickle.dumps(fitted)
    _runtime.clear_process_caches()
    before = _runtime.process_cache_info()
    for start in range(80, 120, 10):  # four "partitions", each scored by a fresh copy
        copy = pickle.loads(blob)
        np.testing.assert_allclose(copy.predict_proba(X[start:start + 10]), expected[start - 80:start - 70],
                                   rtol=0, atol=1e-6)
    after = _runtime.process_cache_info()
    assert after["models_built"] - before["models_built"] == 1
    assert after["support_sets_encoded"] - before["support_sets_encoded"] == 3  # once per member
    assert after["support_sets_held"] == 3


def test_the_fitting_process_keeps_its_own_support_schedule(table):
    X, y, _ = table
    _runtime.clear_process_caches()
    before = _runtime.process_cache_info()
    fitted = MitraClassifier(CLASSIFIER, n_estimators=2, random_state=0).fit(X[:80], y[:80])
    fitted.predict_proba(X[80:])
    fitted.predict_proba(X[80:])
    assert _runtime.process_cache_info()["support_sets_encoded"] == before["support_sets_encoded"]
    copy = pickle.loads(pickle.dumps(fitted.set_params(support_cache="off")))
    copy.predict_proba(X[80:])
    assert _runtime.process_cache_info()["support_sets_encoded"] == before["support_sets_encoded"]


def test_a_support_set_larger_than_the_memory_share_is_not_kept(table, monkeypatch):
    X, y, _ = table
    blob = pickle.dumps(MitraClassifier(CLASSIFIER, n_estimators=2, random_state=0).fit(X[:80], y[:80]))
    expected = pickle.loads(blob).predict_proba(X[80:])
    _runtime.clear_process_caches()
    monkeypatch.setattr(_runtime, "available_memory", lambda device: 1000)  # far too little for any
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(pickle.loads(blob).predict_proba(X[80:]), expected, rtol=0, atol=1e-6)
    assert _runtime.process_cache_info()["support_sets_held"] == 0


def test_least_recently_used_support_sets_make_room(table, monkeypatch):
    X, y, _ = table
    blob = pickle.dumps(MitraClassifier(CLASSIFIER, n_estimators=3, random_state=0).fit(X[:80], y[:80]))
    _runtime.clear_process_caches()
    copy = pickle.loads(blob)
    x_support, labels, _ = copy._member_support(copy.members_[0])
    one = _runtime.support_cache_bytes(copy.config_, *x_support.shape, copy._runner().dtype)
    # Room for two support sets of this size: a quarter of (available + held) memory.
    monkeypatch.setattr(_runtime, "available_memory", lambda device: 9 * one - _held())
    encoded = _runtime.process_cache_info()["support_sets_encoded"]
    copy.predict_proba(X[80:])
    info = _runtime.process_cache_info()
    assert info["support_sets_encoded"] - encoded == 3 and info["support_sets_held"] == 2


def _held() -> int:
    return sum(size for _, size, _ in _runtime._SUPPORTS.values())
