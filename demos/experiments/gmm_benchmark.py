"""Ground truth for training on data: a Gaussian mixture whose density and entropy are known.

A flow trained on rows drawn from a density p and scored on fresh rows has held-out NLL
``-E_p[log q] = H(p) + KL(p || q)``, so with the true entropy ``H(p) = -E_p[log p]`` subtracted
what is left is the KL divergence from the data to the model, in nats: 0 for a perfect model.
This script builds such a p in any dimension d, a mixture of K = 8 Gaussians with random means
and random full covariances::

    p(x) = sum_k w_k N(x; m_k, S_k),      w_k = 1 / K
    m_k ~ N(0, s_d^2 I)
    S_k = A_k A_k^T / d + 0.1 I,  A_k ~ N(0, 1)^(d x d)

``A A^T / d`` is a Wishart matrix with mean I whose eigenvalues spread over about [0, 4]
(Marchenko-Pastur with ratio 1), so every component is elongated in random directions, and the
``0.1 I`` keeps every variance >= 0.1 (condition numbers 22 to 53 in the benchmark's mixtures).
Two mixtures differ only in how far apart the means are (:data:`MIXTURES`):

* ``"far"``: ``s_d = 2.6`` in every d, so the distances between means grow as 2.6 sqrt(2 d)
  (11.6 at d = 10). 2.6 is chosen so that one fitted full-covariance Gaussian is about 7.5 nats
  off at d = 10: the modes are well apart, and a flow must place each of them.
* ``"near"``: ``s_d = 3 / sqrt(d)``, distances ~4.2 in every d. The overlap still falls with d,
  as each component has more thin directions: the mean entropy of the component posterior is
  0.86, 0.16, 0.03, 0.01 nats at d = 2, 5, 10, 20, and one fitted Gaussian is 0.3 to 5 nats off.
  The modes are close, the density between them matters, and this mixture is the harder one for
  a flow; the data defaults were tuned on it.

Both draw their covariances and the directions of their means from the same generator
``default_rng([GMM_SEED, d])``, so they differ only in the scale of the means.

Everything is exact and NumPy only: the log-density is a log-sum-exp of the K normal
log-densities, each through the Cholesky factor ``S_k = L_k L_k^T``::

    log N(x; m, S) = -|L^-1 (x - m)|^2 / 2 - sum_i log L_ii - (d / 2) log(2 pi)

and the entropy is a Monte Carlo mean ``-mean log p(x_j)`` over fresh draws, with its standard
error. The KL of a model q on rows x_j ~ p is reported two ways: ``NLL - H`` (the definition,
whose error is the two Monte Carlo errors combined) and the paired mean
``mean_j [log p(x_j) - log q(x_j)]`` on the same rows, whose standard error is much smaller
because the two log-densities move together.

Each d writes 20,000 training rows and 10,000 held-out rows to CSV files and goes through the
command line with its defaults for data: ``npflow train --data train.csv --out model.npz``, then
``npflow evaluate --model model.npz --data heldout.csv --json`` (the NLL) and ``npflow log-prob``
on 2,000 of the held-out rows (the paired standard error). Training time is measured in this
process, wall and CPU (``time.process_time``).

    python demos/experiments/gmm_benchmark.py     # d = 2, 5, 10, 20; table in figures/ beside it
    python demos/experiments/gmm_benchmark.py --dims 20 --eval-steps 10    # one dimension
    python demos/experiments/gmm_benchmark.py --quick --out /tmp/gmm   # smoke run, seconds
"""
import argparse
import contextlib
import io
import json
import os
import shlex
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from npflow import baselines, cli

HERE = os.path.dirname(os.path.abspath(__file__))

N_COMPONENTS = 8
MIXTURES = {  # the standard deviation s_d of each coordinate of the means, by dimension d
    "far": lambda dim: 2.6,  # one fitted Gaussian ~7.5 nats off at d = 10
    "near": lambda dim: 3.0 / np.sqrt(dim),  # distances between means ~4.2 in every d
}
JITTER = 0.1  # S_k = A A^T / d + JITTER I: every variance >= 0.1


# ----------------------------------------------------------------------------------------------
# The mixture: parameters, sampler, exact log-density, Monte Carlo entropy
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianMixture:
    """``p(x) = sum_k w_k N(x; m_k, S_k)`` with the Cholesky factors of its covariances.

    weights : (K,); means : (K, d); covs : (K, d, d); chols : (K, d, d) lower ``L_k`` with
    ``S_k = L_k L_k^T``; chol_invs : (K, d, d) ``L_k^-1``, so a point is whitened by one matmul.
    """

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray
    chols: np.ndarray
    chol_invs: np.ndarray

    @property
    def dim(self):
        return self.means.shape[1]


def make_gmm(dim, rng, mixture="near", n_components=N_COMPONENTS, jitter=JITTER):
    """A random mixture of ``n_components`` equal-weight Gaussians in ``dim`` dimensions.

    ``m_k ~ N(0, s_d^2 I)`` with ``s_d = MIXTURES[mixture](dim)``,
    ``S_k = A_k A_k^T / dim + jitter I`` with ``A_k ~ N(0, 1)^(dim x dim)`` (see the module
    docstring for why these scales).

    Parameters
    ----------
    dim : int; rng : np.random.Generator; mixture : {"far", "near"}; n_components : int;
    jitter : float > 0.

    Returns
    -------
    GaussianMixture
    """
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if mixture not in MIXTURES:
        raise ValueError(f"mixture must be one of {', '.join(MIXTURES)}, got {mixture!r}")
    means = rng.standard_normal((n_components, dim)) * MIXTURES[mixture](dim)  # (K, d)
    a = rng.standard_normal((n_components, dim, dim))  # (K, d, d)
    covs = a @ a.transpose(0, 2, 1) / dim + jitter * np.eye(dim)  # (K, d, d)
    chols = np.linalg.cholesky(covs)  # (K, d, d) lower
    chol_invs = np.linalg.inv(chols)  # (K, d, d)
    weights = np.full(n_components, 1.0 / n_components)  # (K,)
    return GaussianMixture(weights, means, covs, chols, chol_invs)


def sample_gmm(gmm, n, rng):
    """``n`` rows of p: a component ``k ~ w``, then ``x = m_k + L_k eps``, ``eps ~ N(0, I)``.

    Returns
    -------
    (n, d) ndarray
    """
    k = rng.choice(len(gmm.weights), size=n, p=gmm.weights)  # (n,)
    eps = rng.standard_normal((n, gmm.dim))  # (n, d)
    return gmm.means[k] + np.einsum("nij,nj->ni", gmm.chols[k], eps)


def gaussian_log_density(x, mean, chol_inv):
    """``log N(x; m, S)`` for x (n, d), m (d,), ``chol_inv = L^-1`` (d, d) with ``S = L L^T``.

    ``-|L^-1 (x - m)|^2 / 2 + log det L^-1 - (d / 2) log(2 pi)``; returns (n,).
    """
    white = (x - mean) @ chol_inv.T  # (n, d): L^-1 (x - m) for every row
    log_det = np.sum(np.log(np.diag(chol_inv)))  # log det L^-1 = -sum log L_ii
    return -0.5 * np.sum(white * white, axis=1) + log_det - 0.5 * x.shape[1] * np.log(2 * np.pi)


def gmm_log_density(gmm, x):
    """Exact ``log p(x) = logsumexp_k [log w_k + log N(x; m_k, S_k)]`` for x (n, d) -> (n,)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != gmm.dim:
        raise ValueError(f"x must have shape (n, {gmm.dim}), got shape {x.shape}")
    terms = np.stack([np.log(w) + gaussian_log_density(x, m, ci)
                      for w, m, ci in zip(gmm.weights, gmm.means, gmm.chol_invs)])  # (K, n)
    top = terms.max(axis=0)  # (n,)
    return top + np.log(np.sum(np.exp(terms - top), axis=0))


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo mean and its standard error ``std / sqrt(n)``."""

    value: float
    stderr: float


def mean_estimate(values):
    """:class:`Estimate` of the mean of ``values`` (n,)."""
    values = np.asarray(values, dtype=np.float64)
    return Estimate(float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size)))


def entropy(gmm, n, rng):
    """``H(p) = -E_p[log p(x)]`` by Monte Carlo over ``n`` fresh rows: an :class:`Estimate`."""
    return mean_estimate(-gmm_log_density(gmm, sample_gmm(gmm, n, rng)))


# ----------------------------------------------------------------------------------------------
# The benchmark: write the rows to CSV, train and score a flow on them, tabulate KL per d
# ----------------------------------------------------------------------------------------------
DIMS = (2, 5, 10, 20)
N_TRAIN, N_HELDOUT = 20000, 10000  # rows per mixture and d
GMM_SEED = 7  # the mixture of dimension d is make_gmm(d, default_rng([GMM_SEED, d]), mixture)
JSON_NAME = "gmm_benchmark.json"
MD_NAME = "gmm_benchmark.md"
EVAL_STEPS = 20  # rk4 steps of the NLL: 10, 20, 50, 100 and dopri5 agree to 1e-4 nats at d = 10
QUICK = {"n_train": 600, "n_heldout": 200, "n_entropy": 5000, "eval_steps": 4,
         "train_args": ["--steps", "40", "--hidden", "32,32", "--batch-size", "128"]}
STDERR_ROWS = 2000  # held-out rows scored one by one for the paired KL's standard error


@dataclass(frozen=True)
class FlowScore:
    """A flow trained on one CSV and scored on another: held-out NLL (nats), training seconds."""

    nll: float
    wall_seconds: float
    cpu_seconds: float


def write_csv(path, x):
    """Rows x (n, d) as a headerless comma-separated file, full float64 precision."""
    np.savetxt(path, x, delimiter=",", fmt="%.17g")


def train_and_score(train_csv, heldout_csv, heldout_rows, workdir, args):
    """Train with ``npflow train --data`` (its defaults for data) and score the held-out rows.

    The held-out NLL is ``npflow evaluate --data --json`` (rk4 with ``args.eval_steps`` steps,
    exact divergence). ``npflow log-prob`` on the first :data:`STDERR_ROWS` held-out rows gives
    the row-by-row log-densities from which the paired KL's standard error is estimated.

    Returns
    -------
    FlowScore, and the (m,) log-densities (nats, data units) of the first m held-out rows.
    """
    model = os.path.join(workdir, "model.npz")
    start, start_cpu = time.perf_counter(), time.process_time()
    _npflow("train", "--data", train_csv, "--out", model, "--quiet", *args.train_args)
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    solver = ["--model", model, "--solver", "rk4", "--steps", str(args.eval_steps)]
    result = json.loads(_npflow("evaluate", *solver, "--data", heldout_csv, "--json"))
    subset = os.path.join(workdir, "subset.csv")
    write_csv(subset, heldout_rows[:STDERR_ROWS])
    scores = os.path.join(workdir, "log_prob.npy")
    _npflow("log-prob", *solver, "--data", subset, "--out", scores)
    return FlowScore(float(result["nll"]), wall, cpu), np.load(scores).ravel()  # (m,)


def _npflow(*argv):
    """Run ``npflow argv`` in this process (its time is ours to measure); return its stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(list(argv))
    if code:
        raise RuntimeError(f"npflow {' '.join(argv)} failed with exit code {code}")
    return out.getvalue()


def benchmark_rows(dim, mixture, rng, n_train=N_TRAIN, n_heldout=N_HELDOUT):
    """``(gmm, train_rows (n_train, d), heldout_rows (n_heldout, d))``: the mixture of dimension
    ``dim`` (its own fixed generator) and rows drawn from ``rng``, training rows first."""
    gmm = make_gmm(dim, np.random.default_rng([GMM_SEED, dim]), mixture)
    return gmm, sample_gmm(gmm, n_train, rng), sample_gmm(gmm, n_heldout, rng)


def run_dim(dim, mixture, args, workdir):
    """Benchmark one dimension of one mixture: the row of the table (a dict)."""
    rng = np.random.default_rng([args.seed, dim])
    gmm, train_rows, heldout_rows = benchmark_rows(dim, mixture, rng, args.n_train,
                                                   args.n_heldout)
    h = entropy(gmm, args.n_entropy, rng)
    train_csv = os.path.join(workdir, f"train_{mixture}_d{dim}.csv")
    heldout_csv = os.path.join(workdir, f"heldout_{mixture}_d{dim}.csv")
    write_csv(train_csv, train_rows)
    write_csv(heldout_csv, heldout_rows)
    folder = os.path.join(workdir, f"{mixture}_d{dim}")
    os.makedirs(folder, exist_ok=True)
    flow, log_q = train_and_score(train_csv, heldout_csv, heldout_rows, folder, args)
    log_p = gmm_log_density(gmm, heldout_rows)  # (n_heldout,) the truth on the same rows
    nll_true = float(-log_p.mean())
    gaps = log_p[:len(log_q)] - log_q  # (m,) log p - log q row by row
    paired_stderr = float(gaps.std(ddof=1) / np.sqrt(len(log_p)))  # of the mean over n_heldout
    kl_stderr = definition_stderr(log_q, len(log_p), h)
    # the baseline: one full-covariance Gaussian fitted by maximum likelihood (no regularizer)
    nll_gauss = -baselines.GaussianDensity(reg_covar=0.0).fit(train_rows).score(heldout_rows)
    return {
        "mixture": mixture, "d": dim, "n_train": args.n_train, "n_heldout": args.n_heldout,
        "entropy": h.value, "entropy_stderr": h.stderr, "nll_true_heldout": nll_true,
        "flow_nll": flow.nll, "flow_kl": flow.nll - h.value, "flow_kl_stderr": kl_stderr,
        "flow_kl_paired": flow.nll - nll_true, "flow_kl_paired_stderr": paired_stderr,
        "gaussian_nll": nll_gauss, "gaussian_kl": nll_gauss - h.value,
        "gaussian_kl_paired": nll_gauss - nll_true,
        "train_wall_seconds": flow.wall_seconds, "train_cpu_seconds": flow.cpu_seconds,
        "eval_steps": args.eval_steps, "train_args": args.train_args,
    }


def definition_stderr(log_q, n_heldout, h):
    """Standard error of ``NLL - H``: the NLL's over ``n_heldout`` rows and H's, combined.

    The NLL's is ``std(log q) / sqrt(n_heldout)``, its spread taken from the rows scored one by
    one (``log_q``, (m,)); the two Monte Carlo means are independent, so the variances add.
    """
    nll_stderr = float(np.std(log_q, ddof=1) / np.sqrt(n_heldout))
    return float(np.hypot(nll_stderr, h.stderr))


def markdown_table(rows):
    """The markdown table (gmm_benchmark.md): KL in nats per mixture and d, flow vs Gaussian."""
    lines = ["| mixture | d | entropy H (nats) | flow KL (NLL - H) | Gaussian KL | "
             "flow KL (paired) | train wall s | train CPU s | NLL rk4 steps |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['mixture']} | {r['d']} | "
                     f"{r['entropy']:.3f} +- {r['entropy_stderr']:.3f} | "
                     f"{r['flow_kl']:.3f} +- {r['flow_kl_stderr']:.3f} | "
                     f"{r['gaussian_kl']:.3f} | {r['flow_kl_paired']:.3f} +- "
                     f"{r['flow_kl_paired_stderr']:.3f} "
                     f"| {r['train_wall_seconds']:.0f} | {r['train_cpu_seconds']:.0f} "
                     f"| {r['eval_steps']} |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="KL of a flow trained on Gaussian-mixture rows.")
    p.add_argument("--out", default=os.path.join(HERE, "figures"),
                   help="folder of gmm_benchmark.md and .json (default: demos/experiments/figures)")
    p.add_argument("--dims", type=int, nargs="+", default=list(DIMS), help="dimensions d")
    p.add_argument("--mixtures", nargs="+", choices=list(MIXTURES), default=list(MIXTURES),
                   help="which mixtures (default: all; see MIXTURES)")
    p.add_argument("--n-train", type=int, default=N_TRAIN, help="training rows per d")
    p.add_argument("--n-heldout", type=int, default=N_HELDOUT, help="held-out rows of the NLL")
    p.add_argument("--n-entropy", type=int, default=200000, help="rows of the entropy estimate")
    p.add_argument("--eval-steps", type=int, default=EVAL_STEPS,
                   help=f"rk4 steps of the held-out NLL (default: {EVAL_STEPS})")
    p.add_argument("--seed", type=int, default=0, help="seed of the rows (the mixtures are fixed)")
    p.add_argument("--workdir", default=None, help="folder of the CSV files and models "
                                                   "(default: a temporary folder)")
    p.add_argument("--train-args", default="",
                   help='extra options of npflow train, e.g. "--hidden 256,256,256,256"')
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds")
    args = p.parse_args(argv)
    args.train_args = shlex.split(args.train_args)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    for name in ("n_train", "n_heldout", "n_entropy", "eval_steps"):
        if getattr(args, name) < 2:
            p.error(f"--{name.replace('_', '-')} must be >= 2")
    if min(args.dims) < 1:
        p.error("--dims must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        workdir = scratch if args.workdir is None else args.workdir
        os.makedirs(workdir, exist_ok=True)
        for mixture in args.mixtures:
            for dim in args.dims:
                r = run_dim(dim, mixture, args, workdir)
                rows.append(r)
                print(f"{mixture} d = {dim:2d}: flow KL {r['flow_kl']:.3f} (paired "
                      f"{r['flow_kl_paired']:.3f}), Gaussian KL {r['gaussian_kl']:.3f}, "
                      f"trained in {r['train_wall_seconds']:.0f} s")
                with open(os.path.join(args.out, JSON_NAME), "w") as f:
                    json.dump({"rows": rows, "quick": args.quick}, f, indent=1)
                with open(os.path.join(args.out, MD_NAME), "w") as f:
                    f.write(markdown_table(rows))
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
