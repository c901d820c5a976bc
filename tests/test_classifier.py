"""Tests for npflow.classifier: float64 central differences on every gradient, and a real fit."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from _helpers import central_difference
from npflow.classifier import Classifier, random_shift, softmax_cross_entropy

RTOL = 1e-6  # relative to the largest gradient entry; float64 central differences reach ~1e-9



def assert_close(analytic, numeric):
    scale = max(1.0, float(np.max(np.abs(numeric))))
    np.testing.assert_allclose(analytic, numeric, rtol=0, atol=RTOL * scale)


@given(n=st.integers(1, 6), k=st.integers(2, 5), seed=st.integers(0, 2**32 - 1),
       spread=st.sampled_from([1.0, 30.0]))
@settings(deadline=None)
def test_softmax_cross_entropy_gradient_matches_central_differences(n, k, seed, spread):
    rng = np.random.default_rng(seed)
    logits = spread * rng.standard_normal((n, k))
    y = rng.integers(0, k, size=n)
    _, dlogits = softmax_cross_entropy(logits, y)
    assert_close(dlogits, central_difference(lambda: softmax_cross_entropy(logits, y)[0], logits))


def test_softmax_cross_entropy_matches_the_direct_formula_and_is_stable():
    logits = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
    y = np.array([2, 0])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    loss, _ = softmax_cross_entropy(logits, y)
    assert loss == pytest.approx(-np.mean(np.log(p[[0, 1], y])), rel=1e-12)
    big, dbig = softmax_cross_entropy(logits + 1e4, y)  # a shift changes nothing, no overflow
    assert big == pytest.approx(loss, rel=1e-12) and np.all(np.isfinite(dbig))
    huge, _ = softmax_cross_entropy(np.array([[1000.0, -1000.0]]), np.array([1]))
    assert huge == pytest.approx(2000.0)


@given(n=st.integers(1, 5), dim=st.integers(1, 5), k=st.integers(2, 4),
       hidden=st.lists(st.integers(1, 6), min_size=1, max_size=3),
       activation=st.sampled_from(["relu", "silu", "tanh", "selu"]),
       seed=st.integers(0, 2**32 - 1))
@settings(deadline=None)
def test_every_gradient_matches_central_differences(n, dim, k, hidden, activation, seed):
    rng = np.random.default_rng(seed)
    clf = Classifier(dim, k, hidden=hidden, activation=activation, dtype=np.float64, rng=rng)
    clf.mean_, clf.scale_ = rng.standard_normal(dim), rng.uniform(0.5, 2.0, dim)
    X = rng.standard_normal((n, dim))
    y = rng.integers(0, k, size=n)
    a = clf.forward(X)[1].a[0]
    for layer in clf.layers[:-1]:  # ReLU's kink at 0 would break central differences
        z = layer.forward(a)
        assume(np.min(np.abs(z)) > 1e-4)
        a = clf.activation.forward(z)

    def loss():
        return softmax_cross_entropy(clf.forward(X)[0], y)[0]

    logits, cache = clf.forward(X)
    _, dlogits = softmax_cross_entropy(logits, y)
    dinput = clf.backward(cache, dlogits)
    analytic = clf.grads.copy()
    assert_close(analytic, central_difference(loss, clf.params))  # every W and b
    standardized = cache.a[0].copy()

    def loss_of_input():
        return softmax_cross_entropy(_logits_from(clf, standardized), y)[0]

    assert_close(dinput, central_difference(loss_of_input, standardized))


def _logits_from(clf, a):
    for layer in clf.layers[:-1]:
        a = clf.activation.forward(layer.forward(a))
    return clf.layers[-1].forward(a)


def test_features_are_the_last_hidden_activations():
    rng = np.random.default_rng(0)
    clf = Classifier(4, 3, hidden=(5, 7), activation="tanh", dtype=np.float64, rng=rng)
    X = rng.standard_normal((6, 4))
    a = np.tanh(np.tanh(X @ clf.layers[0].W + clf.layers[0].b) @ clf.layers[1].W
                + clf.layers[1].b)
    np.testing.assert_allclose(clf.features(X), a, rtol=1e-12)
    p = clf.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), np.argmax(p, axis=1))


def test_fit_separates_gaussian_blobs_and_standardizes_inputs():
    rng = np.random.default_rng(1)
    centres = 10.0 * rng.standard_normal((3, 5)) + 100.0  # far from 0: needs standardization
    y = rng.integers(0, 3, size=600)
    X = centres[y] + rng.standard_normal((600, 5))
    clf = Classifier(5, 3, hidden=(16,), rng=rng).fit(X[:400], y[:400], rng, epochs=20)
    np.testing.assert_allclose(clf.mean_, X[:400].mean(axis=0))
    assert clf.losses_[-1] < 0.1 * clf.losses_[0]
    assert clf.accuracy(X[400:], y[400:]) > 0.97


def test_fit_is_deterministic_given_the_generators():
    X = np.random.default_rng(2).standard_normal((50, 3))
    y = (X[:, 0] > 0).astype(int)
    a = Classifier(3, 2, hidden=(4,), rng=np.random.default_rng(0))
    b = Classifier(3, 2, hidden=(4,), rng=np.random.default_rng(0))
    a.fit(X, y, np.random.default_rng(1), epochs=2)
    b.fit(X, y, np.random.default_rng(1), epochs=2)
    np.testing.assert_array_equal(a.params, b.params)


def test_bad_arguments_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n_classes"):
        Classifier(3, 1, rng=rng)
    with pytest.raises(ValueError, match="activation"):
        Classifier(3, 2, activation="gelu", rng=rng)
    with pytest.raises(TypeError, match="rng"):
        Classifier(3, 2, rng=0)
    clf = Classifier(3, 2, hidden=(4,), rng=rng)
    with pytest.raises(ValueError, match=r"y must hold classes in 0 \.\. 1, got values in"):
        clf.fit(np.zeros((4, 3)), np.array([0, 1, 2, 0]), rng)
    with pytest.raises(TypeError, match="integer"):
        clf.fit(np.zeros((4, 3)), np.zeros(4), rng)
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        clf.predict(np.zeros((2, 4)))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"dtype": np.int64}, TypeError, "dtype must be float32 or float64, got int64"),
    ({"dtype": np.float16}, TypeError, "dtype must be float32 or float64"),
    ({"hidden": 5}, TypeError, "hidden must be a sequence of positive integers"),
    ({"hidden": ()}, ValueError, "hidden must name at least one hidden width"),
])
def test_bad_dtype_and_hidden_are_refused_as_by_the_mlp(kwargs, error, match):
    with pytest.raises(error, match=match):
        Classifier(4, 3, rng=np.random.default_rng(0), **kwargs)


# --- augmentation by random shifts, and the global standardization of images -----------------

def test_random_shift_moves_each_image_by_at_most_shift_and_fills_zeros():
    rng = np.random.default_rng(3)
    X = rng.integers(1, 9, size=(200, 5 * 4)).astype(np.float64)  # no zero pixel
    out = random_shift(X, (5, 4), 2, rng)
    assert out.shape == X.shape and out.dtype == X.dtype
    seen = set()
    for x, o in zip(X.reshape(-1, 5, 4), out.reshape(-1, 5, 4)):
        # the offset is where the moved image matches the original, zeros elsewhere
        matches = []
        for di in range(-2, 3):
            for dj in range(-2, 3):
                ref = np.zeros((5, 4))
                ref[max(di, 0):5 + min(di, 0), max(dj, 0):4 + min(dj, 0)] = \
                    x[max(-di, 0):5 - max(di, 0), max(-dj, 0):4 - max(dj, 0)]
                if np.array_equal(o, ref):
                    matches.append((di, dj))
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 25  # every offset of -2 .. 2 in both directions is drawn
    np.testing.assert_array_equal(random_shift(X, (5, 4), 0, rng), X)


def test_fit_with_shifts_and_global_standardization():
    rng = np.random.default_rng(4)
    # 6 x 6 images: a bar, vertical (class 0) or horizontal (class 1), anywhere
    X = np.zeros((300, 6, 6))
    y = rng.integers(0, 2, size=300)
    pos = rng.integers(0, 6, size=300)
    X[y == 0, :, pos[y == 0]] = 10.0
    X[y == 1, pos[y == 1], :] = 10.0
    X = X.reshape(300, 36)
    clf = Classifier(36, 2, hidden=(16,), rng=rng)
    clf.fit(X[:200], y[:200], rng, epochs=30, standardize="global", shift=1, image_shape=(6, 6))
    np.testing.assert_allclose(clf.mean_, np.full(36, X[:200].mean()))
    np.testing.assert_allclose(clf.scale_, np.full(36, X[:200].std()))
    assert clf.accuracy(X[200:], y[200:]) > 0.95
    with pytest.raises(ValueError, match="image_shape must be given"):
        clf.fit(X, y, rng, epochs=1, shift=1)
    with pytest.raises(ValueError, match="image_shape must have h w = dim = 36"):
        clf.fit(X, y, rng, epochs=1, shift=1, image_shape=(5, 6))
    with pytest.raises(ValueError, match="standardize"):
        clf.fit(X, y, rng, epochs=1, standardize="pixel")
    with pytest.raises(ValueError, match="shift"):
        clf.fit(X, y, rng, epochs=1, shift=-1)
