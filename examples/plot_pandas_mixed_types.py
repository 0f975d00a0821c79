"""
pandas tables: categoricals, strings, dates and missing values
==============================================================

The estimators read a :class:`pandas.DataFrame` as it is: numeric, boolean, ``category``,
string and datetime columns, with ``NaN`` / ``None`` / ``pd.NA`` anywhere. Categorical and
string columns become codes (one extra code for missing and unseen values), dates become
seconds, missing numbers are imputed with the training mean, all inside ``fit``.

We turn scikit-learn's diabetes table (disease progression after one year, in its original
units) into such a frame, then fit :class:`~mitra_sklearn.MitraRegressor` on it directly and
HistGradientBoosting through the encoding it needs.
"""

import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

from mitra_sklearn import MitraRegressor

X, y = load_diabetes(return_X_y=True, as_frame=True, scaled=False)
rng = np.random.default_rng(0)
X = X.assign(
    # a categorical column, with some values missing
    sex=pd.Categorical(X["sex"].map({1.0: "female", 2.0: "male"}).mask(rng.random(len(X)) < 0.05)),
    # a string (object) column: BMI bands, an ordered quantity written as text
    bmi_band=pd.cut(X["bmi"], [0, 25, 30, 100], labels=["normal", "overweight", "obese"]).astype(str),
    # a date column (here random visit dates: the model has to learn they carry no signal)
    visit=pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365, len(X)), unit="D"),
)
# and missing numbers
X.loc[rng.random(len(X)) < 0.1, "bp"] = np.nan
X.loc[rng.random(len(X)) < 0.1, "s5"] = None
print(X.dtypes.to_frame("dtype").T.to_string())
print(X.head().to_string())

X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)

# %%
# Mitra takes the frame as it is:
mitra = MitraRegressor(checkpoint="mitra-small-regressor", random_state=0).fit(X_train, y_train)

# %%
# HistGradientBoosting handles the ``category`` column and missing numbers itself, but needs the
# strings encoded and the dates turned into numbers first:
def days_since_epoch(frame):
    return frame.apply(lambda column: (column - pd.Timestamp(0)).dt.days)


boosting = make_pipeline(
    ColumnTransformer(
        [("strings", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["bmi_band"]),
         ("dates", FunctionTransformer(days_since_epoch), ["visit"])],
        remainder="passthrough", verbose_feature_names_out=False,
    ).set_output(transform="pandas"),
    HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=0),
).fit(X_train, y_train)

rows = []
for name, model in [("Mitra (raw frame)", mitra), ("HistGradientBoosting (encoded)", boosting)]:
    prediction = model.predict(X_test)
    rows.append({"model": name, "R2": r2_score(y_test, prediction), "MAE": mean_absolute_error(y_test, prediction)})
print(pd.DataFrame(rows).to_string(index=False, float_format="{:.3f}".format))

# %%
# Unseen categories at predict time share the missing code (a warning names a column whose
# values are mostly unseen), and the columns must be those seen in ``fit``:
new_patient = X_test.iloc[:1].assign(bmi_band="unknown")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    print(f"prediction with an unseen BMI band: {mitra.predict(new_patient)[0]:.1f}")
print(f"warning: {caught[0].message}")
