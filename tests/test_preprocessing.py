"""TabularEncoder and the ensemble plan."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mitra_sklearn.ensemble import plan_members
from mitra_sklearn.preprocessing import MAX_DENSE_CELLS, TabularEncoder


def _frame():
    return pd.DataFrame(
        {
            "num": [1.0, np.nan, 3.0, 4.0, 5.0],
            "cat": pd.Categorical(["b", "a", None, "b", "a"], categories=["b", "a"]),
            "text": ["x", "y", "x", None, "z"],
            "flag": [True, False, True, True, False],
            "nullable": pd.array([1, None, 3, 4, 2], dtype="Int64"),
            "constant": [7, 7, 7, 7, 7],
            "all_nan": [np.nan] * 5,
            "when": pd.to_datetime(["2020-01-01", "2020-01-02", None, "2021-01-01", "2020-06-01"]),
        }
    )


def test_dataframe_encoding():
    frame = _frame()
    encoder = TabularEncoder()
    out = encoder.fit_transform(frame)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert list(encoder.categorical_mask_) == [False, True, True, False, False, False, False, False]
    # constant and all-NaN columns are dropped
    assert list(encoder.kept_columns_) == [0, 1, 2, 3, 4, 7]
    # declared category order kept; missing -> -1
    assert out[:, 1].tolist() == [0, 1, -1, 0, 1]
    # strings sorted; missing -> -1
    assert out[:, 2].tolist() == [0, 1, 0, -1, 2]
    # numeric NaN / pd.NA imputed with the training mean
    assert out[1, 0] == pytest.approx(13 / 4)
    assert out[1, 4] == pytest.approx(10 / 4)


def test_unseen_categories_share_the_missing_code():
    encoder = TabularEncoder().fit(_frame())
    new = _frame().iloc[:2].copy()
    new["text"] = ["never seen", None]
    new["cat"] = pd.Categorical(["c", "a"], categories=["b", "a", "c"])
    out = encoder.transform(new)
    assert out[:, 2].tolist() == [-1, -1]
    assert out[:, 1].tolist() == [-1, 1]


def test_input_is_never_modified():
    frame = _frame()
    before = frame.copy(deep=True)
    array = np.array([[1.0, np.nan], [2.0, 3.0], [4.0, 5.0]])
    array_before = array.copy()
    TabularEncoder().fit_transform(frame)
    TabularEncoder().fit_transform(array)
    pd.testing.assert_frame_equal(frame, before)
    np.testing.assert_array_equal(array, array_before)


def test_declared_categorical_columns_by_name_index_and_mask():
    frame = pd.DataFrame({"a": [3, 1, 2, 1], "b": [0.5, 0.1, 0.2, 0.3]})
    assert TabularEncoder(categorical_features=["a"]).fit(frame).categorical_mask_.tolist() == [True, False]
    assert TabularEncoder(categorical_features=[1]).fit(frame).categorical_mask_.tolist() == [False, True]
    assert TabularEncoder(categorical_features=[True, True]).fit(frame).categorical_mask_.tolist() == [True, True]
    with pytest.raises(ValueError, match="not a column"):
        TabularEncoder(categorical_features=["nope"]).fit(frame)
    with pytest.raises(ValueError, match="out of range"):
        TabularEncoder(categorical_features=[5]).fit(frame)


def test_object_arrays_and_bad_cells():
    X = np.array([[1, "a"], [2.5, "b"], [None, "a"]], dtype=object)
    out = TabularEncoder().fit_transform(X)
    assert out.shape == (3, 2)
    bad = X.copy()
    bad[0, 0] = {"k": 1}
    with pytest.raises(TypeError, match="string or a number"):
        TabularEncoder().fit(bad)


def test_infinity_and_complex_are_rejected():
    with pytest.raises(ValueError, match="infinity"):
        TabularEncoder().fit(np.array([[1.0, np.inf], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="Complex"):
        TabularEncoder().fit(np.array([[1 + 1j, 2], [2, 3]]))


def test_sparse_input_is_densified_with_a_size_limit():
    X = sp.random(20, 5, density=0.3, random_state=0, format="csr")
    np.testing.assert_allclose(TabularEncoder().fit_transform(X),
                               X.toarray().astype(np.float32)[:, TabularEncoder().fit(X).kept_columns_])
    huge = sp.csr_matrix((MAX_DENSE_CELLS // 10 + 1, 11))
    with pytest.raises(ValueError, match="too large to densify"):
        TabularEncoder().fit(huge)


def test_all_constant_table_keeps_one_column():
    out = TabularEncoder().fit_transform(np.ones((4, 3)))
    assert out.shape == (4, 1) and (out == 0).all()


def test_transform_checks_the_column_count():
    encoder = TabularEncoder().fit(np.random.rand(5, 3))
    with pytest.raises(ValueError, match="3"):
        encoder.transform(np.random.rand(5, 2))


def test_plan_members_is_reproducible_and_keeps_every_class():
    y = np.array([0] * 95 + [1] * 3 + [2] * 2)
    plans = [
        plan_members(6, 100, 4, np.random.RandomState(0), y_codes=y, n_classes=3, max_support_rows=10)
        for _ in range(2)
    ]
    for a, b in zip(*plans):
        assert a.seed == b.seed
        np.testing.assert_array_equal(a.feature_order, b.feature_order)
        np.testing.assert_array_equal(a.support_rows, b.support_rows)
    for member in plans[0]:
        assert len(member.support_rows) == 10
        assert set(np.unique(y[member.support_rows])) == {0, 1, 2}
        assert sorted(member.class_ids.tolist()) == [0, 1, 2]
    assert plans[0][0].feature_signs.tolist() == [1, 1, 1, 1]
    assert [m.mirror_target for m in plans[0]] == [False, True] * 3
    no_subsample = plan_members(2, 100, 4, np.random.RandomState(0), max_support_rows=100)
    assert all(m.support_rows is None for m in no_subsample)


def test_datetimes_become_seconds_whatever_their_unit_or_time_zone():
    stamps = pd.Series(pd.to_datetime(["2020-01-01 00:00:00", "2020-01-02 00:00:30", None]))
    expected = np.array([1577836800.0, 1577923230.0, np.nan])
    columns = {
        "ns": stamps.astype("datetime64[ns]"),
        "us": stamps.astype("datetime64[us]"),
        "s": stamps.astype("datetime64[s]"),
        "utc+1": stamps.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris"),
    }
    encoder = TabularEncoder().fit(pd.DataFrame({"when": columns["ns"], "x": [1.0, 2.0, 3.0]}))
    for unit, column in columns.items():
        encoded = encoder.transform(pd.DataFrame({"when": column, "x": [1.0, 2.0, 3.0]}))
        np.testing.assert_allclose(encoded[:2, 0], expected[:2], err_msg=unit)
    spans = pd.DataFrame({"gap": pd.to_timedelta(["1s", "2min", None]), "x": [1.0, 2.0, 3.0]})
    encoded = TabularEncoder().fit_transform(spans)
    np.testing.assert_allclose(encoded[:2, 0], [1.0, 120.0])
