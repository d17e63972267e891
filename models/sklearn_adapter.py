"""A scikit-learn outlier estimator as a River anomaly detector, fitted once on a sensor's baseline.

scikit-learn estimators (``IsolationForest``, ``LocalOutlierFactor(novelty=True)``,
``OneClassSVM``, ``EllipticEnvelope``, a ``Pipeline`` ending in one of them...)
learn from a batch, not one window at a time. :class:`BaselineFitted` gives
them the stream's interface: ``learn_one`` collects the first ``fit_after``
windows, then fits the estimator once; afterwards the estimator is frozen and
``score_one`` returns ``-score_samples(x)`` (or ``-decision_function(x)``), so
that, as everywhere in predmaint, a higher score means more anomalous.

Feature dicts become rows in one fixed column order: the estimator's
``feature_names_in_`` when it was fitted on named columns, otherwise the keys
of the first dict seen. A feature that is missing from a later dict (the stream
drops non-finite values) is replaced by its mean over the windows learned so
far, i.e. treated as typical rather than as an anomaly; keys that were not in
the first dict are ignored.

Cost: scikit-learn scores one row through its batch machinery. Measured here
(16 features, scikit-learn 1.9, this 2-core machine): ``IsolationForest()`` (100 trees)
about 20 ms per ``score_one``, ``LocalOutlierFactor(novelty=True)`` after a
``StandardScaler`` about 10 ms, ``OneClassSVM()`` about 0.5 ms -- against
25-70 us for River's detectors (GUIDE section 4). Budget the stream's workers
for it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from river.base import AnomalyDetector

__all__ = ["BaselineFitted", "is_sklearn_outlier_estimator"]


def is_sklearn_outlier_estimator(obj) -> bool:
    """Whether ``obj`` (a class or an instance) looks like a scikit-learn outlier estimator.

    It must have ``fit`` and ``score_samples`` or ``decision_function``, and no
    River ``learn_one`` (River detectors are used as they are).

    Examples
    --------
    >>> from sklearn.ensemble import IsolationForest
    >>> from river.anomaly import HalfSpaceTrees
    >>> is_sklearn_outlier_estimator(IsolationForest), is_sklearn_outlier_estimator(HalfSpaceTrees)
    (True, False)
    """
    return (hasattr(obj, "fit") and not hasattr(obj, "learn_one")
            and (hasattr(obj, "score_samples") or hasattr(obj, "decision_function")))


class BaselineFitted(AnomalyDetector):
    """Fit a scikit-learn estimator on the first ``fit_after`` learned windows, then score with it.

    Parameters
    ----------
    estimator
        An object with ``fit(X)`` and ``score_samples(X)`` or
        ``decision_function(X)`` (higher = more normal, scikit-learn's
        convention), e.g. ``IsolationForest`` or a ``Pipeline``.
    fit_after : int or None
        Number of learned windows to fit on (>= 1). ``None``: the estimator is
        already fitted and is used as it is; ``learn_one`` then only updates
        the means used for missing features.

    Attributes
    ----------
    features : list of str or None
        Column order, fixed by the first dict seen (or ``feature_names_in_``).
    fitted : bool
        Whether :meth:`score_one` uses the estimator yet (before, it returns 0).

    Examples
    --------
    >>> from sklearn.ensemble import IsolationForest
    >>> det = BaselineFitted(IsolationForest(n_estimators=50, random_state=0), fit_after=20)
    >>> rng = np.random.default_rng(0)
    >>> before = []
    >>> for _ in range(20):
    ...     x = {"rms": 1.0 + 0.05 * rng.standard_normal(), "kurtosis": 3.0 + 0.1 * rng.standard_normal()}
    ...     before.append(det.score_one(x))  # score first, then learn, as the stream does
    ...     det.learn_one(x)
    >>> set(before)
    {0.0}
    >>> det.fitted, det.features
    (True, ['rms', 'kurtosis'])
    >>> det.score_one({"rms": 3.0, "kurtosis": 9.0}) > det.score_one({"rms": 1.0, "kurtosis": 3.0})
    True
    """

    def __init__(self, estimator, fit_after: int | None = None):
        if not (hasattr(estimator, "score_samples") or hasattr(estimator, "decision_function")):
            raise TypeError(f"{type(estimator).__name__} has neither score_samples nor decision_function")
        if fit_after is not None:
            if isinstance(fit_after, bool) or not isinstance(fit_after, int) or fit_after < 1:
                raise ValueError(f"fit_after must be a whole number >= 1 or None, got {fit_after!r}")
            if not hasattr(estimator, "fit"):
                raise TypeError(f"{type(estimator).__name__} has no fit, so it cannot be fitted on a baseline")
        self.estimator = estimator
        self.fit_after = fit_after
        names = getattr(estimator, "feature_names_in_", None) if fit_after is None else None
        self.features: list[str] | None = [str(n) for n in names] if names is not None else None
        # Fitted on named columns: scikit-learn warns on every unnamed row; the
        # order is taken from those names, so the warning is noise here.
        self._quiet = names is not None
        self.fitted = fit_after is None
        self._rows: list[np.ndarray] = []
        self._sum: np.ndarray | None = None
        self._count: np.ndarray | None = None

    def _order(self, x: dict) -> list[str]:
        if self.features is None:
            self.features = list(x)
        if self._sum is None:
            self._sum = np.zeros(len(self.features))
            self._count = np.zeros(len(self.features))
        return self.features

    def _row(self, x: dict) -> np.ndarray:
        """``x`` in column order, NaN where a feature is missing or not finite."""
        features = self._order(x)
        out = np.empty(len(features))
        for i, k in enumerate(features):
            v = x.get(k)
            out[i] = float(v) if v is not None and math.isfinite(v) else math.nan
        return out

    def _means(self) -> np.ndarray:
        # Called only after _row, whose _order sets both accumulators.
        assert self._sum is not None and self._count is not None
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self._sum / self._count
        return np.where(self._count > 0, means, 0.0)

    def _filled(self, row: np.ndarray) -> np.ndarray:
        missing = np.isnan(row)
        return np.where(missing, self._means(), row) if missing.any() else row

    def learn_one(self, x: dict) -> None:
        row = self._row(x)
        assert self._sum is not None and self._count is not None  # set by _row's _order
        seen = ~np.isnan(row)
        self._sum[seen] += row[seen]
        self._count[seen] += 1
        if self.fitted:
            return
        self._rows.append(row)
        assert self.fit_after is not None  # not fitted yet implies a fit_after was given
        if len(self._rows) >= self.fit_after:
            # Missing values of the buffered rows take the baseline mean, which
            # is only known now that the whole baseline has been seen.
            X = np.vstack(self._rows)
            X = np.where(np.isnan(X), self._means(), X)
            self.estimator.fit(X)
            self._rows = []
            self.fitted = True

    def score_one(self, x: dict) -> float:
        if not self.fitted:
            return 0.0
        row = self._filled(self._row(x))[None, :]
        scorer = getattr(self.estimator, "score_samples", None) or self.estimator.decision_function
        if self._quiet:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                normality = scorer(row)
        else:
            normality = scorer(row)
        return -float(np.ravel(normality)[0])
