"""The 2-D benchmark of Tong et al. (TMLR 2024, arXiv 2302.00482, Sec. 5.1 and Table 2), in NumPy.

Four tasks, ``source -> target`` (N is the standard normal)::

    N -> 8gaussians     moons -> 8gaussians (data to data)     N -> moons     N -> scurve

and three ways to train ``v_theta(x, t)`` by conditional flow matching, all on the path
``xt = (1 - t) x0 + t x1 + sigma eps`` or close to it, with sigma = 0.1:

    I-CFM   independent pairs, Gaussian path of constant width sigma     (Tong et al., Table 1)
    OT-CFM  the same path, pairs re-drawn by exact minibatch OT per batch (Tong et al., Table 1)
    FM      Lipman et al.'s OT path, sigma_min = 0.1, independent pairs  (Lipman et al., eq. 20-23)

FM needs a Gaussian source, so it runs on the three N -> ... tasks only. The training setup is
TorchCFM's 2-D one, set field by field below (``paper_config``): an MLP with three hidden layers of
64 SELU units and t concatenated to x, batch 256, Adam at a constant 1e-3, no warm-up, no
clipping, no weight decay, t ~ U[0, 1], 20,000 steps, float32. The raw weights are evaluated (no
EMA), as in the paper's code.

For each trained model, on 2,000 held-out points:

* W2 (exact assignment, :func:`npflow.metrics.wasserstein2`) between the samples of
  Euler with 1, 2, 5, 10, 100 steps (NFE = steps) and of dopri5 (rtol = atol = 1e-5, its NFE
  recorded) and 2,000 fresh target points;
* the normalized path energy ``NPE = |PE - W2^2(q0, q1)| / W2^2(q0, q1)``, with PE the model's
  path energy along its dopri5 trajectories from 2,000 source points and W2^2(q0, q1) estimated
  by the exact W2 between those points and the 2,000 target points;
* the training wall time.

The noise floor of W2 at this size, W2 between two fresh target sets of 2,000 points, is
reported per task: a model cannot be told apart from the data below it.

Randomness. Training seed ``s`` is ``TrainConfig.seed`` (network init and every batch); the
evaluation points of task ``k`` (its index in ``TASKS``) and seed ``s`` come from
``np.random.default_rng([EVAL_SEED, s, k])``, drawn in the order source points, target points,
second target points, so every method of a (task, seed) is scored on the same points.

Runs are ordered seed by seed (all of seed 0 first), and after each run the JSON and the
markdown table are rewritten in ``--out``; started again with the same ``--out``, the script
skips the runs already there.

    python demos/experiments/paper_2d_table.py --out demos/experiments/figures  # ~1 h, 2 cores
    python demos/experiments/paper_2d_table.py --quick --out /tmp/paper2d   # smoke run, seconds
    python demos/experiments/paper_2d_table.py --tasks N-moons --seeds 0 --out /tmp/moons
"""
import argparse
import dataclasses
import json
import os
import time

import numpy as np

from npflow import datasets, metrics, sampling
from npflow.train import TrainConfig, Trainer

DEMOS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # demos/

TASKS = {  # name -> (source, target), in the paper's column order
    "N->8gaussians": ("gaussian", "8gaussians"),
    "moons->8gaussians": ("moons", "8gaussians"),
    "N->moons": ("gaussian", "moons"),
    "N->scurve": ("gaussian", "scurve"),
}
METHODS = {  # name -> (path, coupling)
    "I-CFM": ("icfm", "independent"),
    "OT-CFM": ("icfm", "ot"),
    "FM": ("lipman", "independent"),
}
SIGMA = 0.1  # sigma of I-CFM and OT-CFM, sigma_min of FM (the paper's 2-D setting)
EULER_STEPS = (1, 2, 5, 10, 100)
DOPRI5_TOL = 1e-5  # rtol = atol
EVAL_SEED = 2302  # first entry of the evaluation generators' seed
JSON_NAME = "paper_2d_table.json"
MD_NAME = "paper_2d_table.md"
QUICK = {"steps": 300, "seeds": [0], "n_eval": 256}


def paper_config(task, method, steps, seed):
    """The TrainConfig of one run, every field the 2-D setup depends on set explicitly."""
    source, target = TASKS[task]
    path, coupling = METHODS[method]
    return TrainConfig(
        source=source, target=target, path=path, sigma=SIGMA, coupling=coupling,
        steps=steps, batch_size=256, lr=1e-3, schedule="constant", warmup_steps=0,
        weight_decay=0.0, grad_clip=0.0, ema_decay=0.0,  # ema unused: the raw weights are scored
        hidden=(64, 64, 64), activation="selu", time_embedding="concat",
        time_sampling="uniform", seed=seed, dtype="float32")


def runs_to_do(tasks, methods, seeds):
    """(task, method, seed) in running order: seed by seed; FM only from a Gaussian source."""
    return [(task, method, seed) for seed in seeds for task in tasks for method in methods
            if not (method == "FM" and TASKS[task][0] != "gaussian")]


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """Held-out points of one (task, seed), shared by its methods; each array is (n, 2)."""

    x0: np.ndarray       # source points: flow starts
    x1: np.ndarray       # target points the samples are compared with
    x1_other: np.ndarray  # a second target set: W2(x1, x1_other) is the noise floor
    w2_floor: float
    w2_squared: float    # W2^2(x0, x1), the estimate of W2^2(q0, q1) in the NPE


def eval_set(task, seed, n):
    """Draw the evaluation points of ``task`` and ``seed`` (see the module docstring)."""
    source, target = TASKS[task]
    rng = np.random.default_rng([EVAL_SEED, seed, list(TASKS).index(task)])
    x0 = datasets.sample(source, n, rng)
    x1 = datasets.sample(target, n, rng)
    x1_other = datasets.sample(target, n, rng)
    return EvalSet(x0, x1, x1_other, metrics.wasserstein2(x1, x1_other),
                   metrics.wasserstein2(x0, x1) ** 2)


def evaluate(model, ev):
    """W2 of the samples of every solver, dopri5's NFE, the path energy and the NPE."""
    w2 = {}
    for steps in EULER_STEPS:
        x = sampling.sample_flow(model, ev.x0, method="euler", steps=steps).x
        w2[f"euler-{steps}"] = metrics.wasserstein2(x, ev.x1)
    sol = sampling.sample_flow(model, ev.x0, method="dopri5", rtol=DOPRI5_TOL, atol=DOPRI5_TOL)
    w2["dopri5"] = metrics.wasserstein2(sol.x, ev.x1)
    energy = metrics.path_energy(model, ev.x0, method="dopri5", rtol=DOPRI5_TOL, atol=DOPRI5_TOL)
    return {"w2": w2, "dopri5_nfe": int(sol.nfe), "path_energy": energy,
            "w2_squared_source_target": ev.w2_squared,
            "npe": metrics.normalized_path_energy(energy, ev.w2_squared),
            "w2_floor": ev.w2_floor}


def one_run(task, method, seed, steps, ev):
    """Train one model, score it, return the JSON record."""
    config = paper_config(task, method, steps, seed)
    trainer = Trainer(config)
    start = time.perf_counter()
    trainer.run(quiet=True)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    scores = evaluate(trainer.model, ev)
    return {"task": task, "method": method, "seed": seed, "train_seconds": train_seconds,
            "eval_seconds": time.perf_counter() - start,
            "final_loss": float(np.mean(trainer.losses[-1000:])), **scores}


# --- the table ------------------------------------------------------------------------------

def _mean_std(values, digits=3):
    values = np.asarray(values, dtype=np.float64)
    if values.size == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def summarize(runs):
    """{task: {method: {column: [values over seeds]}}} in TASKS and METHODS order."""
    table = {}
    for task in TASKS:
        for method in METHODS:
            rows = [r for r in runs if r["task"] == task and r["method"] == method]
            if not rows:
                continue
            cols = {key: [r["w2"][key] for r in rows] for key in rows[0]["w2"]}
            cols.update({key: [r[key] for r in rows]
                         for key in ("dopri5_nfe", "npe", "path_energy", "train_seconds",
                                     "w2_floor", "w2_squared_source_target")})
            cols["energy_gap"] = [(r["path_energy"] - r["w2_squared_source_target"])
                                  / r["w2_squared_source_target"] for r in rows]  # signed NPE
            cols["seeds"] = [r["seed"] for r in rows]
            table.setdefault(task, {})[method] = cols
    return table


def markdown(runs, settings):
    """The results as markdown, mean ± std over seeds: the paper's columns, W2 per Euler NFE."""
    table = summarize(runs)
    rows = [(task, method, cols) for task, methods in table.items()
            for method, cols in methods.items()]
    n = settings["n_eval"]
    lines = [
        "# Tong et al. (2024) 2-D benchmark, reproduced with npflow",
        "",
        f"{settings['steps']} training steps per run; every W2 is exact (assignment) between {n} "
        f"generated and {n} fresh target points; mean ± std over seeds (sample std, ddof 1). "
        "NPE = |PE - W2^2(q0, q1)| / W2^2(q0, q1) (Tong et al. 2024, Sec. 5.1), PE the model's "
        "path energy along its dopri5 trajectories; the signed gap (PE - W2^2) / W2^2 shows "
        "on which side of the optimum PE falls.",
        "",
        "| task | method | seeds | W2 dopri5 | dopri5 NFE | NPE | signed gap | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, method, cols in rows:
        cells = [task, method, str(len(cols["seeds"])), _mean_std(cols["dopri5"]),
                 _mean_std(cols["dopri5_nfe"], 0), _mean_std(cols["npe"]),
                 _mean_std(cols["energy_gap"]), _mean_std(cols["train_seconds"], 0)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "W2 of Euler samples by number of steps (NFE = steps):", "",
              "| task | method | " + " | ".join(f"Euler {s}" for s in EULER_STEPS) + " |",
              "|---|---|" + "---|" * len(EULER_STEPS)]
    for task, method, cols in rows:
        cells = [task, method] + [_mean_std(cols[f"euler-{s}"]) for s in EULER_STEPS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Noise floor (W2 between two fresh target sets of {n} points) and the "
              "estimate of W2^2(q0, q1) used by the NPE:", "",
              "| task | W2 noise floor | W2^2(q0, q1) estimate |", "|---|---|---|"]
    for task, methods in table.items():
        first = next(iter(methods.values()))
        lines.append(f"| {task} | {_mean_std(first['w2_floor'])} | "
                     f"{_mean_std(first['w2_squared_source_target'])} |")
    return "\n".join(lines) + "\n"


# --- files ----------------------------------------------------------------------------------

def _write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def load_runs(path, settings):
    """Runs already in ``path`` (a previous, maybe interrupted, call with the same settings)."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if data.get("settings") != settings:
        raise SystemExit(f"{path} holds results for other settings {data.get('settings')}; "
                         "use another --out or delete the file")
    return data["runs"]


def save(folder, runs, settings):
    """Rewrite the JSON and the markdown in ``folder``; return the markdown."""
    data = {"settings": settings, "runs": runs, "summary": summarize(runs)}
    _write_atomic(os.path.join(folder, JSON_NAME), json.dumps(data, indent=1) + "\n")
    text = markdown(runs, settings)
    _write_atomic(os.path.join(folder, MD_NAME), text)
    return text


def task_id(task):
    """Shell-safe spelling of a task on the command line: ``N->moons`` is ``N-moons``."""
    return task.replace("->", "-")


def task_name(text):
    """argparse type of ``--tasks``: a task id (or its name, quoted in a shell) -> its name."""
    names = {task_id(task): task for task in TASKS}
    if text in TASKS or text in names:
        return names.get(text, text)
    raise argparse.ArgumentTypeError(f"unknown task {text!r}; choose from {', '.join(names)}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Reproduce the 2-D table of Tong et al. (2024).")
    p.add_argument("--out", default=os.path.join(DEMOS, "output", "paper_2d_table"),
                   help="folder for paper_2d_table.json and .md (default: demos/output/...)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default 20000)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default 0 1 2)")
    p.add_argument("--n-eval", type=int, default=None,
                   help="held-out points per W2 (default 2000)")
    p.add_argument("--tasks", nargs="+", type=task_name, default=list(TASKS),
                   help="tasks to run, " + ", ".join(map(task_id, TASKS)) + " (default: all)")
    p.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: defaults become {QUICK}")
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else {"steps": 20000, "seeds": [0, 1, 2], "n_eval": 2000}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.steps < 1 or args.n_eval < 2 or min(args.seeds) < 0:
        p.error("--steps must be >= 1, --n-eval >= 2 and the seeds >= 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    settings = {"steps": args.steps, "n_eval": args.n_eval, "sigma": SIGMA,
                "euler_steps": list(EULER_STEPS), "dopri5_tol": DOPRI5_TOL,
                "eval_seed": EVAL_SEED,
                "train_config": {k: v for k, v in paper_config(
                    "N->8gaussians", "I-CFM", args.steps, 0).to_dict().items()
                    if k not in ("source", "target", "path", "coupling", "seed")}}
    runs = load_runs(os.path.join(args.out, JSON_NAME), settings)
    done = {(r["task"], r["method"], r["seed"]) for r in runs}
    todo = [run for run in runs_to_do(args.tasks, args.methods, args.seeds) if run not in done]
    print(f"{len(done)} runs found in {args.out}, {len(todo)} to do", flush=True)
    evals = {}
    for i, (task, method, seed) in enumerate(todo, 1):
        if (task, seed) not in evals:
            evals = {(task, seed): eval_set(task, seed, args.n_eval)}  # keep one set in memory
        record = one_run(task, method, seed, args.steps, evals[(task, seed)])
        runs.append(record)
        save(args.out, runs, settings)
        print(f"[{i}/{len(todo)}] {task:<18} {method:<6} seed {seed}: "
              f"W2 euler-1 {record['w2']['euler-1']:.3f}  dopri5 {record['w2']['dopri5']:.3f} "
              f"(NFE {record['dopri5_nfe']})  NPE {record['npe']:.3f}  "
              f"train {record['train_seconds']:.0f} s", flush=True)
    text = save(args.out, runs, settings)
    print(text)
    return runs


if __name__ == "__main__":
    main()
