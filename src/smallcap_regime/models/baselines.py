"""Linear baselines fitted on the same features and folds as the LightGBM models.

Ridge and logistic regression see the same columns after median imputation and standardisation, fitted on the
training window only. The two share that preprocessing (one imputer and scaler per window, not one per model).
Their penalties are fixed by the experiment config rather than cross-validated, so they cannot leak through an
unpurged inner CV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


@dataclass
class LinearBaselines:
    """Ridge (point forecast) and L2 logistic regression (P(target > 0)) on one shared preprocessing.

    Attributes
    ----------
    prep : median imputation then standardisation, fitted on the training window.
    ridge : ridge regression on the standardised features (``alpha`` on that scale).
    logistic : logistic regression (``C`` = inverse penalty); None when the window holds one class only.
    """

    prep: Pipeline
    ridge: Ridge
    logistic: LogisticRegression | None

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Point forecasts and probabilities (None without a logistic model) for ``x`` of shape (n, n_features)."""
        z = self.prep.transform(x)
        return self.ridge.predict(z), None if self.logistic is None else self.logistic.predict_proba(z)[:, 1]


def fit_linear_baselines(x: np.ndarray, y: np.ndarray, y_up: np.ndarray, ridge_alpha: float = 30.0,
                         logistic_c: float = 0.05) -> LinearBaselines:
    """Fit both baselines on one training window.

    Parameters
    ----------
    x : features, shape (n, n_features), NaN allowed (median-imputed; an all-NaN column becomes 0).
    y : target in decimal returns, shape (n,).
    y_up : 0/1 labels ``y > 0``, shape (n,).
    ridge_alpha, logistic_c : penalties from the experiment's ``[baselines]``.
    """
    prep = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler())
    z = prep.fit_transform(x)
    logistic = (LogisticRegression(C=logistic_c, max_iter=2000).fit(z, y_up) if len(np.unique(y_up)) == 2
                else None)
    return LinearBaselines(prep, Ridge(alpha=ridge_alpha).fit(z, y), logistic)
