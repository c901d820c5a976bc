"""npflow.Flow under scikit-learn's own tools: check_estimator, clone, Pipeline, GridSearchCV.

scikit-learn is optional (these tests skip without it); npflow never imports it at run time,
only inside ``Flow.__sklearn_tags__``, which scikit-learn alone calls.
"""
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", minversion="1.6")  # expected_failed_checks, Tags

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import get_tags  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from npflow import Flow  # noqa: E402

SMALL = dict(hidden=(8,), steps=20, solver_steps=4, batch_size=16, val_fraction=0.0)

# Checks that Flow fails on purpose, each with its reason (check_estimator's
# expected_failed_checks): none. The checks of how bad input is refused (complex, 1-D, one row,
# no rows or columns, object arrays, sparse matrices) pass through npflow.data.check_array, the
# one boundary check of npflow, which uses scikit-learn's key words and converts object arrays
# of numbers as it does.
EXPECTED_FAILED_CHECKS = {}
BAD_INPUT_CHECKS = ("check_complex_data", "check_dtype_object",
                    "check_estimators_empty_data_messages", "check_estimator_sparse_tag",
                    "check_estimator_sparse_array", "check_estimator_sparse_matrix",
                    "check_fit2d_1sample", "check_fit2d_predict1d")


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    return np.where(rng.random((n, 1)) < 0.5, -2.0, 2.0) + 0.5 * rng.standard_normal((n, 2))


def test_flow_passes_scikit_learns_estimator_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "does not inherit from BaseEstimator", skipped checks
        results = check_estimator(Flow(**SMALL), expected_failed_checks=EXPECTED_FAILED_CHECKS,
                                  on_fail=None)
    status = {}
    for result in results:
        status.setdefault(result["check_name"], set()).add(result["status"])
    failed = {name: s for name, s in status.items() if s & {"failed"}}
    assert not failed, failed
    # each expected failure still fails: a fixed message must leave the list
    assert all(status[name] == {"xfail"} for name in EXPECTED_FAILED_CHECKS), status
    passed = [name for name, s in status.items() if s == {"passed"}]
    assert len(passed) >= 40 and "check_fit_idempotent" in passed  # 46 in scikit-learn 1.9
    assert set(BAD_INPUT_CHECKS) <= set(passed), status
    assert "check_transformer_general" in passed and "check_estimators_pickle" in passed


def test_scikit_learn_sees_a_density_estimator_and_a_transformer():
    tags = get_tags(Flow())
    assert tags.estimator_type == "density_estimator" and not tags.target_tags.required
    assert tags.transformer_tags.preserves_dtype == ["float64"] and not tags.non_deterministic


def test_clone_gives_an_unfitted_flow_with_the_same_parameters():
    est = Flow(**SMALL, seed=3).fit(blobs())
    copy = clone(est)
    assert copy.get_params() == est.get_params() and copy is not est
    assert not hasattr(copy, "model_") and repr(copy) == repr(est)
    np.testing.assert_array_equal(copy.fit(blobs()).score_samples(blobs(5, 1)),
                                  est.score_samples(blobs(5, 1)))


def test_a_pipeline_scales_then_fits_and_scores():
    X = 100.0 + 30.0 * blobs()
    pipe = Pipeline([("scale", StandardScaler()), ("flow", Flow(**SMALL))]).fit(X)
    scaled = pipe["scale"].transform(X[:10])
    assert pipe.score(X[:10]) == pipe["flow"].score(scaled)
    np.testing.assert_array_equal(pipe.score_samples(X[:10]), pipe["flow"].score_samples(scaled))
    assert pipe["flow"].n_features_in_ == 2 and np.isfinite(pipe.score(X))


def test_grid_search_selects_by_the_mean_log_density_of_held_out_rows():
    X = blobs(160)
    search = GridSearchCV(Flow(**SMALL), {"hidden": [(8,), (16,)]}, cv=2).fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"hidden": [(8,), (16,)][int(np.argmax(scores))]}
    assert search.best_estimator_.hidden == search.best_params_["hidden"]
    train, test = next(KFold(2).split(X))  # the first split, scored by hand
    by_hand = Flow(**{**SMALL, "hidden": (16,)}).fit(X[train]).score(X[test])
    assert search.cv_results_["split0_test_score"][1] == by_hand


def test_npflow_does_not_import_scikit_learn():
    code = ("import sys, numpy as np, npflow; f = npflow.Flow(hidden=(4,), steps=2); "
            "f.fit(np.random.default_rng(0).standard_normal((20, 2))).score(np.zeros((1, 2))); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
