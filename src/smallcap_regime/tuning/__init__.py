"""Hyperparameter tuning: an Optuna study per experiment objective, scored by a nested purged walk-forward.

The objective of a trial is the mean loss over ``inner_folds`` purged walk-forward folds that use only data from
before the experiment's out-of-sample start, so the reported out-of-sample period never influences the chosen
hyperparameters. The panel is cut at ``oos_start`` before any feature or target is built (the no-look-ahead
guarantee is structural), and the usable origins stop where the first out-of-sample fold's training window stops
(``oos_start - h - embargo``), so every inner target was realised before ``oos_start``.

Studies live in an Optuna storage: by default a journal file under ``<home>/tuning`` (safe for several local
processes), or a PostgreSQL (any SQLAlchemy RDB) URL shared by workers on several machines. Each worker process
runs :func:`tune` on the same study name and storage; together they finish exactly the requested number of trials.
Every trial is also a nested MLflow run under one parent run per worker.

Modules: ``space`` (the ``[tuning]`` section), ``storage`` (where studies live), ``objective`` (the inner
walk-forward loss), ``study`` (workers, budget, MLflow logging).
"""

from .space import search_space, study_name_for
from .storage import default_storage, open_storage
from .study import BestTrial, best_params, best_trial, tune

__all__ = ["BestTrial", "best_params", "best_trial", "default_storage", "open_storage", "search_space",
           "study_name_for", "tune"]
