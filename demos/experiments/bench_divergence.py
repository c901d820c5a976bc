"""Exact divergence against Hutchinson's estimator: cost per velocity evaluation, and noise.

The augmented ODE of :func:`npflow.likelihood.log_likelihood` evaluates, at every stage, the
velocity and its divergence with one call of ``MLP.jvp``: with d unit tangents for the exact
divergence, with k probes for Hutchinson's estimator. For each dimension d this script builds a
3 x 256 SiLU MLP (float32, random weights), and times, for 1000 points:

* ``likelihood.divergence`` (exact, d tangents),
* ``likelihood.hutchinson_divergence`` with k = 1, 4, 16 probes,

each the least of ``--repeats`` calls after one warm-up call. Costs are CPU times of the calling
thread (``time.thread_time``) with NumPy's OpenBLAS held to one thread (:mod:`npflow._blas`):
on a machine shared with other jobs the wall time measures the other jobs too, the CPU time of
one thread measures the work. Without a controllable OpenBLAS the wall time is used.

(The augmented velocity adds only the copy of ``[v, div]`` into one (n, d + k) array to these.)

It then measures the noise of Hutchinson's log-likelihood:
``log_likelihood(divergence="hutchinson", n_probes=16)`` on ``--std-points`` points (rk4,
``--std-steps`` steps) gives each point 16 independent estimates; their per-point standard
deviation (the noise of one probe) and the resulting standard error with ``DEFAULT_PROBES`` probes
are printed (medians over the points). The crossover is the smallest d at which the exact
divergence costs more than Hutchinson's estimator with ``likelihood.DEFAULT_PROBES`` probes;
``likelihood.EXACT_MAX_DIM`` is chosen from it.

    python demos/experiments/bench_divergence.py
    python demos/experiments/bench_divergence.py --dims 12 14 16 18 --json divergence.json
"""
import argparse
import json
import time

import numpy as np

from npflow import _blas, likelihood
from npflow.nn import MLP

DIMS = (2, 5, 10, 20, 32, 64, 100)
PROBES = (1, 4, 16)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=list(DIMS),
                        help=f"dimensions d (default: {' '.join(map(str, DIMS))})")
    parser.add_argument("--probes", type=int, nargs="+", default=list(PROBES),
                        help=f"Hutchinson probe counts k (default: {' '.join(map(str, PROBES))})")
    parser.add_argument("--n", type=int, default=1000, help="points per evaluation (default: 1000)")
    parser.add_argument("--width", type=int, default=256, help="hidden width (default: 256)")
    parser.add_argument("--layers", type=int, default=3, help="hidden layers (default: 3)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls (default: 3)")
    parser.add_argument("--std-points", type=int, default=200,
                        help="points of the noise measurement (default: 200)")
    parser.add_argument("--std-steps", type=int, default=8,
                        help="rk4 steps of the noise measurement (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--json", default=None, help="also write the table to this JSON file")
    args = parser.parse_args(argv)
    if min(args.dims + args.probes) < 1 or min(args.n, args.width, args.layers, args.repeats,
                                                args.std_points, args.std_steps) < 1:
        parser.error("every count must be >= 1")
    return args


def best_ms(fn, repeats, clock):
    """Least time of ``fn()`` on ``clock``, in ms, over ``repeats`` calls after a warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return 1e3 * min(times)


def measure(d, args, rng, clock):
    """Timings (ms) and Hutchinson's noise for one dimension d."""
    model = MLP(d, (args.width,) * args.layers, "silu", dtype=np.float32, rng=rng)
    x = rng.standard_normal((args.n, d)).astype(np.float32)  # (n, d)
    row = {"d": d, "exact_ms": best_ms(lambda: likelihood.divergence(model, x, 0.5),
                                         args.repeats, clock)}
    for k in args.probes:
        probes = likelihood.draw_probes(rng, (k, args.n, d), dtype=np.float32)  # (k, n, d)
        row[f"hutchinson_{k}_ms"] = best_ms(
            lambda: likelihood.hutchinson_divergence(model, x, 0.5, probes), args.repeats, clock)
    probes_k = 16
    ll = likelihood.log_likelihood(model, x[:args.std_points], steps=args.std_steps,
                                   divergence="hutchinson", n_probes=probes_k, rng=rng)
    one_probe = ll.stderr.astype(np.float64) * np.sqrt(probes_k)  # (m,) std of one probe
    row["one_probe_std"] = float(np.median(one_probe))
    row["default_probes_stderr"] = float(np.median(one_probe / np.sqrt(likelihood.DEFAULT_PROBES)))
    return row


def crossover(rows, k):
    """Smallest d whose exact divergence costs more than Hutchinson with k probes, or None."""
    slower = [row["d"] for row in rows if row["exact_ms"] > row[f"hutchinson_{k}_ms"]]
    return min(slower) if slower else None


def main(argv=None):
    args = parse_args(argv)
    with _blas.limit(1) as one_thread:
        clock = time.thread_time if one_thread else time.perf_counter
        return run(args, clock, "CPU ms, one BLAS thread" if one_thread else "wall ms")


def run(args, clock, unit):
    rng = np.random.default_rng(args.seed)
    k_default = likelihood.DEFAULT_PROBES
    print(f"{args.layers} x {args.width} SiLU MLP, float32, {args.n} points, best of "
          f"{args.repeats} calls ({unit}); noise from {args.std_points} points, 16 probes, rk4 "
          f"{args.std_steps} steps")
    header = "    d   exact ms" + "".join(f"  hutch k={k:<2} ms" for k in args.probes) + \
        "   1-probe std   stderr k=" + str(k_default)
    print(header)
    rows = []
    for d in sorted(args.dims):
        row = measure(d, args, rng, clock)
        rows.append(row)
        print(f"  {d:>3} {row['exact_ms']:>10.2f}"
              + "".join(f"  {row[f'hutchinson_{k}_ms']:>13.2f}" for k in args.probes)
              + f"   {row['one_probe_std']:>11.4f}   {row['default_probes_stderr']:>10.4f}")
    if k_default in args.probes:
        d_cross = crossover(rows, k_default)
        where = "at no d measured" if d_cross is None else f"from d = {d_cross} on"
        print(f"exact costs more than Hutchinson with {k_default} probes {where} "
              f"(likelihood.EXACT_MAX_DIM = {likelihood.EXACT_MAX_DIM})")
    if args.json is not None:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"config": vars(args), "unit": unit, "rows": rows}, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
