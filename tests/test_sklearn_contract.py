"""RidgeCV and BandedRidgeCV keep scikit-learn's estimator contract (its own checks, its own messages)."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from xaffect.encoding import BandedRidgeCV, RidgeCV
from xaffect.errors import InputError

# the defaults: 21 alphas, 5-fold inner CV; BandedRidgeCV with one band of all columns
ESTIMATORS = [RidgeCV(), BandedRidgeCV()]


@pytest.fixture(autouse=True)
def _quiet_edge_of_grid():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*edge of the grid.*", category=UserWarning)
        yield


def _run_with_array_api_dispatch(estimator, check):
    """scikit-learn's array-API check needs SCIPY_ARRAY_API=1 before scipy is imported: a fresh process."""
    code = ("import warnings; warnings.simplefilter('ignore')\n"
            "from sklearn.utils.estimator_checks import check_array_api_input\n"
            "from xaffect.encoding import BandedRidgeCV, RidgeCV\n"
            f"check_array_api_input(*{check.args!r}, {estimator!r}, **{check.keywords!r})\nprint('CHECKED')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "SCIPY_ARRAY_API": "1"})
    assert r.returncode == 0 and "CHECKED" in r.stdout, r.stderr[-3000:]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_check(estimator, check):
    if getattr(getattr(check, "func", check), "__name__", "") == "check_array_api_input" and not os.environ.get("SCIPY_ARRAY_API"):
        _run_with_array_api_dispatch(estimator, check)
    else:
        check(estimator)


def _data(n=120, p=6, t=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, t)) + 0.5 * rng.standard_normal((n, t))
    return X, Y


@pytest.mark.parametrize("make", [RidgeCV, BandedRidgeCV], ids=["RidgeCV", "BandedRidgeCV"])
def test_bad_input_gets_sklearns_errors(make):
    X, Y = _data()
    est = make()
    with pytest.raises(NotFittedError):
        est.predict(X)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        est.fit(X[:, 0], Y)
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(InputError, match=r"(?s)Input X contains NaN.*first at sample 7, column 2 of X"):
        est.fit(bad, Y)
    badY = Y.copy()
    badY[4, 1] = np.inf
    with pytest.raises(ValueError, match=r"(?s)Input y contains infinity.*sample 4, column 1 of Y"):
        est.fit(X, badY)
    with pytest.raises(TypeError, match="Sparse data was passed"):
        est.fit(sp.csr_matrix(X), Y)
    with pytest.raises(ValueError, match="requires y to be passed"):
        est.fit(X, None)
    # fitted on 1-d y: 1-d predictions; mismatched feature counts: scikit-learn's message
    fitted = make().fit(X, Y[:, 0])
    assert fitted.predict(X).shape == (X.shape[0],)
    assert fitted.__sklearn_tags__().target_tags.multi_output
    with pytest.raises(ValueError, match=f"X has 5 features, but {make.__name__} is expecting 6 features"):
        fitted.predict(X[:, :5])


def test_banded_default_is_one_band_equal_to_ridgecv():
    X, Y = _data(seed=1)
    a = RidgeCV(cv=4).fit(X, Y)
    b = BandedRidgeCV(cv=4).fit(X, Y)
    np.testing.assert_allclose(b.band_alphas_[0], a.best_alphas_)
    np.testing.assert_allclose(b.predict(X), a.predict(X), rtol=1e-10, atol=1e-12)


def test_works_in_sklearn_model_selection():
    """Pipelines, cross_val_score and GridSearchCV over our own parameters run as for any regressor."""
    X, Y = _data(seed=2)
    pipe = make_pipeline(StandardScaler(), RidgeCV(cv=3))
    scores = cross_val_score(pipe, X, Y[:, 0], cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.5)
    search = GridSearchCV(BandedRidgeCV(cv=3), {"bands": [None, [slice(0, 3), slice(3, 6)]]}, cv=3).fit(X, Y)
    assert search.best_score_ > 0.5
    assert clone(search.best_estimator_).get_params()["bands"] == search.best_params_["bands"]
