"""
Pipeline, ColumnTransformer and GridSearchCV
============================================

Mitra estimators are ordinary scikit-learn estimators, so they sit at the end of a
:class:`~sklearn.pipeline.Pipeline` and their parameters can be searched like any other.

The breast-cancer table has ten cell measurements, each as a mean, a standard error and a
"worst" value. The pipeline keeps the means, compresses the two other groups with a PCA each,
and hands the result to :class:`~mitra_sklearn.MitraClassifier`; the grid search tunes the
number of PCA components and the number of ensemble members together.
"""

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mitra_sklearn import MitraClassifier

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
groups = {
    "mean": [column for column in X.columns if column.startswith("mean ")],
    "error": [column for column in X.columns if column.endswith(" error")],
    "worst": [column for column in X.columns if column.startswith("worst ")],
}

features = ColumnTransformer([
    ("mean", "passthrough", groups["mean"]),
    ("error", make_pipeline(StandardScaler(), PCA(random_state=0)), groups["error"]),
    ("worst", make_pipeline(StandardScaler(), PCA(random_state=0)), groups["worst"]),
])
pipeline = Pipeline([
    ("features", features),
    ("mitra", MitraClassifier(checkpoint="mitra-small-classifier", random_state=0)),
])

# %%
# The search. Each candidate is fitted on three folds; ``n_jobs=1`` because every Mitra fit
# and predict already uses all cores (parallel workers would each load the model).
search = GridSearchCV(
    pipeline,
    {
        "features__error__pca__n_components": [2, 5],
        "features__worst__pca__n_components": [2, 5],
        "mitra__n_estimators": [1, 4],
    },
    cv=3, scoring="roc_auc", n_jobs=1,
)
search.fit(X_train, y_train)

results = pd.DataFrame(search.cv_results_)
columns = {"param_features__error__pca__n_components": "error PCs", "param_features__worst__pca__n_components":
           "worst PCs", "param_mitra__n_estimators": "members", "mean_test_score": "CV ROC-AUC",
           "std_test_score": "std", "mean_fit_time": "fit s", "mean_score_time": "score s"}
print(results[list(columns)].rename(columns=columns).sort_values("CV ROC-AUC", ascending=False)
      .to_string(index=False, float_format="{:.3f}".format))

# %%
# The refitted best pipeline on the held-out test set:
print(f"best: {search.best_params_}")
print(f"test ROC-AUC of the best pipeline: {search.score(X_test, y_test):.3f}")
