"""Linear baselines fitted on the same features and folds as the LightGBM models.

Ridge and logistic regression see the same columns after median imputation and standardisation (both fitted on
the training window only, inside the pipeline). Their penalties are fixed by the experiment config rather than
cross-validated, so they cannot leak through an unpurged inner CV.
"""

from __future__ import annotations

from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def make_ridge(alpha: float = 30.0) -> Pipeline:
    """Ridge on median-imputed, standardised features (``alpha`` on the standardised scale)."""
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                         Ridge(alpha=alpha))


def make_logistic(c: float = 0.05) -> Pipeline:
    """L2 logistic regression on median-imputed, standardised features (``c`` = inverse penalty)."""
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                         LogisticRegression(C=c, max_iter=2000))
