"""Time npflow's NumPy assignment solver against SciPy's C ``linear_sum_assignment``.

The cost matrices are those of minibatch OT-CFM: squared distances between ``n`` standard normal
points (x0) and ``n`` points of the 8-Gaussians dataset (x1).  Both solvers run on the same
matrices in one process, alternating which goes first; the script prints the median wall times,
their ratio, and checks that the optimal costs agree.  SciPy is optional: without it only
npflow is timed.

    python demos/experiments/bench_assignment.py --n 256 --repeats 20 --seed 0
"""
import argparse
import time

import numpy as np

from npflow import datasets
from npflow.couplings import solve_assignment, squared_distances


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="batch size: the cost is n x n")
    parser.add_argument("--repeats", type=int, default=20, help="number of cost matrices timed")
    parser.add_argument("--seed", type=int, default=0, help="seed of the point clouds")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        parser.error("--n and --repeats must be >= 1")
    return args


def timed(fn, cost):
    """Wall time of ``fn(cost)`` in seconds, and its optimal total cost."""
    start = time.perf_counter()
    cols = fn(cost)
    elapsed = time.perf_counter() - start
    return elapsed, float(cost[np.arange(cost.shape[0]), cols].sum())


def scipy_solver():
    """SciPy's solver as ``cost -> cols``, or None when SciPy is not installed."""
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        return None
    return lambda cost: linear_sum_assignment(cost)[1]


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    solvers = {"npflow": solve_assignment}
    reference = scipy_solver()
    if reference is not None:
        solvers["scipy"] = reference
    warm = squared_distances(rng.standard_normal((8, 2)), rng.standard_normal((8, 2)))
    for fn in solvers.values():  # first calls pay for imports and caches
        fn(warm)
    times = {name: [] for name in solvers}
    worst_gap = 0.0
    for r in range(args.repeats):
        x0 = datasets.sample("gaussian", args.n, rng)  # (n, 2)
        x1 = datasets.sample("8gaussians", args.n, rng)  # (n, 2)
        cost = squared_distances(x0, x1)  # (n, n)
        names = list(solvers) if r % 2 == 0 else list(reversed(solvers))
        totals = {}
        for name in names:
            elapsed, totals[name] = timed(solvers[name], cost)
            times[name].append(elapsed)
        if "scipy" in totals:
            gap = abs(totals["npflow"] - totals["scipy"]) / max(abs(totals["scipy"]), 1e-300)
            worst_gap = max(worst_gap, gap)
    print(f"n = {args.n}, {args.repeats} cost matrices (gaussian -> 8gaussians, squared distances)")
    medians = {name: float(np.median(t)) for name, t in times.items()}
    for name, median in medians.items():
        print(f"  {name:7s} median {median * 1e3:8.2f} ms")
    if reference is None:
        print("  scipy not installed: no reference timing")
        return 0
    print(f"  ratio npflow / scipy: {medians['npflow'] / medians['scipy']:.2f}")
    agree = worst_gap <= 1e-10
    verdict = "yes" if agree else "NO"
    print(f"  optimal costs agree: {verdict} (largest relative gap {worst_gap:.1e})")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
