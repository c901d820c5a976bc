"""Honest density baselines: one full-covariance Gaussian, and a Gaussian mixture fitted by EM.

A flow's held-out likelihood means little alone. These two classical models give it a scale on
the same data: a flow that does not beat a single Gaussian has learned nothing beyond the
covariance, and a mixture with its number of components chosen on validation data is the
strongest model of this kind that needs no neural network.

Both follow the fit / log_prob / score / sample vocabulary of scikit-learn: ``fit(X)`` returns
``self``, fitted state ends in ``_``, ``score(X)`` is the mean log-density (higher is better), and
randomness enters only through an explicit ``rng``.

References
----------
A. P. Dempster, N. M. Laird, D. B. Rubin. Maximum likelihood from incomplete data via the EM
algorithm. J. R. Stat. Soc. B 39(1), 1977.
C. M. Bishop. Pattern Recognition and Machine Learning. Springer, 2006, Sec. 9.2.2.
D. Arthur, S. Vassilvitskii. k-means++: the advantages of careful seeding. SODA 2007.
"""
import numpy as np

from . import _checks
from .couplings import squared_distances

LOG_2PI = np.log(2.0 * np.pi)


def _gaussian_log_prob(x, mean, chol):
    """``log N(x; mean, L L^T) = -(d log 2 pi + log det Sigma + |L^{-1}(x - mean)|^2) / 2``.

    x (n, d), mean (d,), chol (d, d) lower-triangular Cholesky factor L of Sigma -> (n,).
    ``log det Sigma = 2 sum_i log L_ii``.
    """
    d = x.shape[1]
    white = np.linalg.solve(chol, (x - mean).T)  # (d, n) = L^{-1} (x - mean)^T
    log_det = 2.0 * np.sum(np.log(np.diag(chol)))
    return -0.5 * (d * LOG_2PI + log_det + np.sum(white * white, axis=0))


def _cholesky(cov, reg_covar, name):
    """Cholesky factor of ``Sigma = cov + reg_covar I`` (d, d); a clear error when it is singular.

    ``Sigma`` counts as singular when it is so to working precision: its smallest eigenvalue is at
    most ``d * eps`` times its largest (the rank test of ``numpy.linalg.matrix_rank``).  Such a
    matrix can still pass the Cholesky factorisation by round-off, and its log-density is then
    round-off too: the exact density is unbounded along the null direction.
    """
    d = cov.shape[0]
    sigma = cov + reg_covar * np.eye(d)  # (d, d)
    eigenvalues = np.linalg.eigvalsh(sigma)  # (d,) ascending
    singular = ValueError(f"the {name} covariance is singular; raise reg_covar "
                          f"(now {reg_covar:g}) or add noise to the data")
    if eigenvalues[0] <= d * np.finfo(np.float64).eps * eigenvalues[-1]:
        raise singular
    try:
        return np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        raise singular from None


def _logsumexp(a):
    """``log sum_k exp(a_nk)`` along axis 1, shifted by the row maximum (never overflows)."""
    top = np.max(a, axis=1, keepdims=True)  # (n, 1)
    return top[:, 0] + np.log(np.sum(np.exp(a - top), axis=1))


class GaussianDensity:
    """One Gaussian ``N(x; mu, Sigma)`` with full covariance, fitted by maximum likelihood.

    ``mu = mean_n x_n``, ``Sigma = mean_n (x_n - mu)(x_n - mu)^T + reg_covar I`` (Bishop 2006,
    eqs. 2.121-2.122, the biased MLE).

    Parameters
    ----------
    reg_covar : float
        Added to the diagonal of Sigma, keeping it invertible (>= 0).

    Attributes
    ----------
    mean_ : (d,) ; covariance_ : (d, d) ; cholesky_ : (d, d) lower-triangular L, Sigma = L L^T.
    """

    def __init__(self, reg_covar=1e-6):
        self.reg_covar = _checks.finite_float(reg_covar, "reg_covar", low=0)

    def fit(self, X):
        """Fit to the rows of X (n, d); returns self.

        Raises ``ValueError`` when Sigma is singular to working precision, as it is for d or
        fewer points with ``reg_covar = 0``.
        """
        X = _checks.points(X, "X", dtype=np.float64)
        self.mean_ = X.mean(axis=0)  # (d,)
        centred = X - self.mean_
        self.covariance_ = centred.T @ centred / X.shape[0]  # (d, d)
        self.cholesky_ = _cholesky(self.covariance_, self.reg_covar, "Gaussian")
        self.covariance_ = self.covariance_ + self.reg_covar * np.eye(X.shape[1])
        return self

    def log_prob(self, X):
        """``log N(x; mu, Sigma)`` in nats for each row of X (n, d) -> (n,)."""
        X = _checks.points(X, "X", dim=self._dim(), dtype=np.float64)
        return _gaussian_log_prob(X, self.mean_, self.cholesky_)

    def score(self, X):
        """Mean log-density of the rows of X (higher is better)."""
        return float(np.mean(self.log_prob(X)))

    def sample(self, n, rng):
        """``x = mu + L z``, ``z ~ N(0, I)``: n points (n, d)."""
        n = _checks.positive_int(n, "n")
        z = _checks.generator(rng).standard_normal((n, self._dim()))
        return self.mean_ + z @ self.cholesky_.T

    def _dim(self):
        if not hasattr(self, "mean_"):
            raise ValueError("this GaussianDensity is not fitted yet; call fit(X) first")
        return self.mean_.shape[0]


class GaussianMixture:
    """``p(x) = sum_k pi_k N(x; mu_k, Sigma_k)`` with full covariances, fitted by EM.

    EM (Dempster et al. 1977; Bishop 2006, Sec. 9.2.2) alternates, until the mean log-likelihood
    rises by less than ``tol``:

    * E step (eq. 9.23): responsibilities ``gamma_nk = pi_k N(x_n; mu_k, Sigma_k) / p(x_n)``,
      computed from logs with log-sum-exp so that no density underflows;
    * M step (eqs. 9.24-9.27 with ``N_k = sum_n gamma_nk``): ``mu_k = sum_n gamma_nk x_n / N_k``,
      ``Sigma_k = sum_n gamma_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + reg_covar I``,
      ``pi_k = N_k / N``.

    Each iteration cannot lower the log-likelihood (eq. 9.28; exactly so for ``reg_covar = 0``).
    With ``reg_covar = 0`` the likelihood has no maximum: a component that collapses onto d or
    fewer points has a singular covariance and an unbounded density (Bishop 2006, Sec. 9.2.1),
    and EM can climb towards it.  ``fit`` then raises ``ValueError`` rather than return a
    covariance that is singular to working precision; ``reg_covar > 0`` bounds every eigenvalue
    below by ``reg_covar``.
    The means start at k-means++ seeds (Arthur and Vassilvitskii 2007: each next seed is a data
    point drawn with probability proportional to its squared distance to the nearest seed so
    far); every point is first given to its nearest seed.

    Parameters
    ----------
    n_components : int
        K >= 1.
    reg_covar : float
        Added to every covariance's diagonal (>= 0).
    max_iter : int
        At most this many EM iterations.
    tol : float
        Stop when the mean log-likelihood improves by less than this (nats per point).

    Attributes
    ----------
    weights_ : (K,) ; means_ : (K, d) ; covariances_ : (K, d, d) ; cholesky_ : (K, d, d)
    history_ : list of float
        The mean training log-likelihood before each M step, then that of the final parameters.
    converged_ : bool ; n_iter_ : int
    """

    def __init__(self, n_components, reg_covar=1e-6, max_iter=200, tol=1e-6):
        self.n_components = _checks.positive_int(n_components, "n_components")
        self.reg_covar = _checks.finite_float(reg_covar, "reg_covar", low=0)
        self.max_iter = _checks.positive_int(max_iter, "max_iter")
        self.tol = _checks.finite_float(tol, "tol", low=0)

    def fit(self, X, rng):
        """Fit to the rows of X (n, d) by EM from k-means++ seeds drawn with ``rng``; returns self.

        Raises ``ValueError`` when a component's covariance is singular to working precision.
        """
        X = _checks.points(X, "X", dtype=np.float64)
        _checks.generator(rng)
        if X.shape[0] < self.n_components:
            raise ValueError(f"X must hold at least n_components = {self.n_components} points, "
                             f"got {X.shape[0]}")
        seeds = _kmeans_plus_plus(X, self.n_components, rng)  # (K, d)
        nearest = np.argmin(squared_distances(X, seeds), axis=1)  # (n,)
        self._m_step(X, np.eye(self.n_components)[nearest])  # hard assignments to start
        self.history_, self.converged_ = [], False
        for self.n_iter_ in range(1, self.max_iter + 1):
            log_resp, log_px = self._e_step(X)
            self._m_step(X, np.exp(log_resp))
            self.history_.append(float(np.mean(log_px)))
            if len(self.history_) > 1 and self.history_[-1] - self.history_[-2] < self.tol:
                self.converged_ = True
                break
        self.history_.append(self.score(X))  # the log-likelihood of the parameters kept
        return self

    def _e_step(self, X):
        """``log gamma_nk`` (n, K) and ``log p(x_n)`` (n,) under the current parameters."""
        log_joint = self._log_joint(X)  # (n, K) log pi_k + log N(x_n; mu_k, Sigma_k)
        log_px = _logsumexp(log_joint)  # (n,)
        return log_joint - log_px[:, None], log_px

    def _m_step(self, X, resp):
        """Weights, means and covariances from responsibilities resp (n, K) (eqs. 9.24-9.27)."""
        n, d = X.shape
        nk = resp.sum(axis=0) + 10 * np.finfo(np.float64).eps  # (K,); an empty component stays finite
        self.means_ = resp.T @ X / nk[:, None]  # (K, d)
        self.covariances_ = np.empty((self.n_components, d, d))
        self.cholesky_ = np.empty_like(self.covariances_)
        for k in range(self.n_components):
            centred = X - self.means_[k]  # (n, d)
            cov = (resp[:, k, None] * centred).T @ centred / nk[k]  # (d, d)
            self.cholesky_[k] = _cholesky(cov, self.reg_covar, f"component {k}")
            self.covariances_[k] = cov + self.reg_covar * np.eye(d)
        self.weights_ = nk / nk.sum()  # (K,)

    def _log_joint(self, X):
        return np.stack([np.log(w) + _gaussian_log_prob(X, mu, chol) for w, mu, chol in
                         zip(self.weights_, self.means_, self.cholesky_)], axis=1)  # (n, K)

    def log_prob(self, X):
        """``log sum_k pi_k N(x; mu_k, Sigma_k)`` in nats for each row of X (n, d) -> (n,)."""
        X = _checks.points(X, "X", dim=self._dim(), dtype=np.float64)
        return _logsumexp(self._log_joint(X))

    def score(self, X):
        """Mean log-density of the rows of X (higher is better)."""
        return float(np.mean(self.log_prob(X)))

    def sample(self, n, rng):
        """n points (n, d): a component ``k ~ pi``, then ``x = mu_k + L_k z``, ``z ~ N(0, I)``."""
        n = _checks.positive_int(n, "n")
        rng = _checks.generator(rng)
        d = self._dim()
        k = rng.choice(self.n_components, size=n, p=self.weights_)  # (n,)
        z = rng.standard_normal((n, d))
        return self.means_[k] + np.einsum("nij,nj->ni", self.cholesky_[k], z)

    def _dim(self):
        if not hasattr(self, "means_"):
            raise ValueError("this GaussianMixture is not fitted yet; call fit(X, rng) first")
        return self.means_.shape[1]


def _kmeans_plus_plus(X, k, rng):
    """k seeds (k, d) among the rows of X: the first uniform, each next with P ~ D(x)^2."""
    seeds = [X[rng.integers(X.shape[0])]]
    d2 = squared_distances(X, seeds[0][None])[:, 0]  # (n,) to the nearest seed so far
    for _ in range(1, k):
        total = d2.sum()
        i = rng.choice(X.shape[0], p=d2 / total) if total > 0 else rng.integers(X.shape[0])
        seeds.append(X[i])
        d2 = np.minimum(d2, squared_distances(X, X[i][None])[:, 0])
    return np.stack(seeds)


def select_components(X_train, X_val, candidates, rng, reg_covar=1e-6, max_iter=200, tol=1e-6):
    """Fit one mixture per candidate K on ``X_train``; keep the best mean log-density on ``X_val``.

    Parameters
    ----------
    X_train : (n, d) ; X_val : (m, d) held out from the fit.
    candidates : sequence of int
        Numbers of components to try.
    rng : np.random.Generator
        Seeds every fit, in the order of ``candidates``.
    reg_covar, max_iter, tol : passed to every :class:`GaussianMixture`.

    Returns
    -------
    best : GaussianMixture
        The fitted mixture with the highest validation score.
    scores : dict int -> float
        Validation score (mean log-density, nats) of every candidate, in the order tried.
    """
    candidates = [_checks.positive_int(k, "candidates") for k in candidates]
    if not candidates:
        raise ValueError("candidates must hold at least one number of components")
    X_train = _checks.points(X_train, "X_train", dtype=np.float64)
    X_val = _checks.points(X_val, "X_val", dim=X_train.shape[1], dtype=np.float64)
    _checks.generator(rng)
    best, scores = None, {}
    for k in candidates:
        model = GaussianMixture(k, reg_covar, max_iter, tol).fit(X_train, rng)
        scores[k] = model.score(X_val)
        if best is None or scores[k] > scores[best.n_components]:
            best = model
    return best, scores
