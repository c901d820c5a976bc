"""A plain PyTorch flow-matching recipe on gmm_benchmark's mixtures: torch trains, npflow scores.

The recipe is a common plain one: an MLP of 3 x 256 SiLU units, Adam 1e-3, 20,000 steps of 512
rows. This script trains it on the rows of ``gmm_benchmark.py`` beside it (the same mixture
``make_gmm(d, default_rng([GMM_SEED, d]), mixture)``, far or near, the same 20,000 training and
10,000 held-out rows drawn from ``default_rng([seed, d])``), so its KL and the benchmark's are
measured on the same data:

* the training rows standardized per feature, ``z = (x - mean) / scale``;
* ``x0 ~ N(0, I)``, ``t ~ U[0, 1)``, the linear path ``xt = (1 - t) x0 + t x1``, ``ut = x1 - x0``
  (Lipman et al. 2023, Eq. 23) and the loss ``mean_batch |v(xt, t) - ut|^2``;
* a 3 x 256 SiLU MLP with t concatenated to the input, torch's default initialization;
* Adam with a constant learning rate 1e-3, no EMA, no gradient clipping;
* 20,000 steps of 512 rows drawn without replacement, reshuffled every epoch (an epoch's last
  partial batch is skipped).

torch only trains. The weights are then copied into an ``npflow.nn.MLP`` of the same layout
(checked to give the torch net's velocity to float32 precision) and npflow scores it:
``log q(x) = log_likelihood(z).log_prob - sum log scale`` with rk4 in 10 steps, and the paired
KL ``mean_j [log p(x_j) - log q(x_j)]`` on the first ``--n-eval`` held-out rows, with its
standard error, as gmm_benchmark reports it. torch is optional: without it the script says so
and exits with code 2.

    python demos/experiments/gmm_torch_reference.py   # d = 10, about 3 minutes on one thread
    python demos/experiments/gmm_torch_reference.py --quick --out /tmp/ref.json   # seconds
"""
import argparse
import json
import os
import sys
import time

import numpy as np

import benchmark
import gmm_benchmark
from npflow import likelihood, nn

try:
    import torch
except ImportError:
    torch = None

HERE = os.path.dirname(os.path.abspath(__file__))
N_TRAIN, N_HELDOUT = gmm_benchmark.N_TRAIN, gmm_benchmark.N_HELDOUT  # its default rows
EVAL_STEPS = 10  # rk4 steps of the held-out likelihood
QUICK = {"steps": 200, "batch_size": 64, "hidden": (32, 32, 32), "n_eval": 200}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d", type=int, default=10, help="dimension of the mixture (default: 10)")
    p.add_argument("--mixture", choices=list(gmm_benchmark.MIXTURES), default="near",
                   help="which of gmm_benchmark's mixtures (default: near)")
    p.add_argument("--steps", type=int, default=20000, help="Adam steps (default: 20000)")
    p.add_argument("--batch-size", type=int, default=512, help="rows per step (default: 512)")
    p.add_argument("--lr", type=float, default=1e-3, help="constant learning rate (default: 1e-3)")
    p.add_argument("--hidden", default="256,256,256",
                   help="hidden widths, comma-separated (default: 256,256,256)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default: 1)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the rows (as gmm_benchmark's) and of torch (default: 0)")
    p.add_argument("--n-eval", type=int, default=2000,
                   help=f"held-out rows scored, at most {N_HELDOUT} (default: 2000)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds")
    p.add_argument("--out", default=None,
                   help="JSON file of the result (default: "
                        "demos/experiments/figures/gmm_torch_reference_<mixture>.json)")
    args = p.parse_args(argv)
    try:
        args.hidden = tuple(int(h) for h in args.hidden.split(","))
    except ValueError:
        p.error(f"--hidden must be comma-separated integers, got {args.hidden!r}")
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    for name in ("d", "steps", "batch_size", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if min(args.hidden) < 1:
        p.error("--hidden widths must be >= 1")
    if not 0 < args.lr < np.inf:
        p.error(f"--lr must be a positive finite number, got {args.lr}")
    if args.batch_size > N_TRAIN:
        p.error(f"--batch-size must be at most the {N_TRAIN} training rows")
    if not 2 <= args.n_eval <= N_HELDOUT:
        p.error(f"--n-eval must be between 2 and {N_HELDOUT}")
    if args.out is None:
        args.out = os.path.join(HERE, "figures", f"gmm_torch_reference_{args.mixture}.json")
    return args


def benchmark_rows(d, seed, mixture="near"):
    """``(gmm, train_rows (20000, d), heldout_rows (10000, d))`` exactly as in run_dim."""
    return gmm_benchmark.benchmark_rows(d, mixture, np.random.default_rng([seed, d]))


def npflow_layout(d, hidden):
    """The npflow MLP whose layout (and layer names) the torch net copies: SiLU, t concatenated."""
    return nn.MLP(d, hidden=hidden, activation="silu", time_embedding="concat",
                  rng=np.random.default_rng(0))


def torch_net(d, hidden, seed):
    """``benchmark.TorchMLP`` of that layout with torch's default initialization (seeded)."""
    net = benchmark.TorchMLP(npflow_layout(d, hidden))
    torch.manual_seed(seed)
    for layer in net.values():
        layer.reset_parameters()
    return net


def epoch_batches(n_rows, batch_size, generator):
    """Index tensors of ``batch_size`` rows, without replacement, a new permutation per epoch."""
    while True:
        perm = torch.randperm(n_rows, generator=generator)  # (n_rows,)
        for start in range(0, n_rows - batch_size + 1, batch_size):
            yield perm[start:start + batch_size]  # (B,)


def train(net, z, args):
    """Train ``net`` on the standardized rows ``z`` (n, d) with the plain recipe; return losses.

    The losses of every tenth of the run are printed and returned as ``[(step, loss)]``.
    """
    generator = torch.Generator().manual_seed(args.seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    rows = torch.from_numpy(z)  # (n, d) float32
    batches = epoch_batches(len(rows), args.batch_size, generator)
    report, losses = max(args.steps // 10, 1), []
    for step in range(args.steps):
        x1 = rows[next(batches)]  # (B, d)
        x0 = torch.randn(x1.shape, generator=generator)  # (B, d)
        t = torch.rand(x1.shape[0], generator=generator)  # (B,)
        xt = (1 - t[:, None]) * x0 + t[:, None] * x1  # (B, d) the linear path
        ut = x1 - x0  # (B, d)
        loss = ((net(xt, t) - ut) ** 2).sum(dim=1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if (step + 1) % report == 0:
            losses.append((step + 1, loss.item()))
            print(f"  step {step + 1:6d}  loss {losses[-1][1]:.4f}", flush=True)
    return losses


def npflow_copy(net, d, hidden):
    """An ``npflow.nn.MLP`` holding the torch net's weights (``W = weight.T``)."""
    model = npflow_layout(d, hidden)
    state = {name: value.detach().numpy() for name, value in net.state_dict().items()}
    for name, layer in model.layers.items():
        layer.W[...] = state[f"{name}.weight"].T  # (fan_in, fan_out)
        layer.b[...] = state[f"{name}.bias"]  # (fan_out,)
    return model


def paired_kl(model, gmm, heldout_rows, mean, scale):
    """``(KL, stderr)``: mean and standard error of ``log p - log q`` on ``heldout_rows`` (m, d).

    ``log q(x) = log q_z((x - mean) / scale) - sum log scale``, the change of variables of the
    standardization; ``log q_z`` is npflow's likelihood with rk4 in EVAL_STEPS steps.
    """
    z = ((heldout_rows - mean) / scale).astype(np.float32)  # (m, d)
    result = likelihood.log_likelihood(model, z, method="rk4", steps=EVAL_STEPS)
    log_q = result.log_prob - np.sum(np.log(scale))  # (m,)
    gaps = gmm_benchmark.gmm_log_density(gmm, heldout_rows) - log_q  # (m,)
    return float(gaps.mean()), float(gaps.std(ddof=1) / np.sqrt(len(gaps)))


def main(argv=None):
    args = parse_args(argv)
    if torch is None:
        print("gmm_torch_reference.py needs PyTorch, which is not installed", file=sys.stderr)
        raise SystemExit(2)
    torch.set_num_threads(args.threads)
    gmm, train_rows, heldout_rows = benchmark_rows(args.d, args.seed, args.mixture)
    mean, scale = train_rows.mean(axis=0), train_rows.std(axis=0)  # (d,), (d,)
    z = ((train_rows - mean) / scale).astype(np.float32)  # (20000, d)
    net = torch_net(args.d, args.hidden, args.seed)
    wall, cpu = time.perf_counter(), time.process_time()
    losses = train(net, z, args)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    model = npflow_copy(net, args.d, args.hidden)
    deviation = benchmark.agreement(net, model)  # raises beyond float32 precision
    kl, stderr = paired_kl(model, gmm, heldout_rows[:args.n_eval], mean, scale)
    result = {
        "d": args.d, "kl_paired": kl, "kl_paired_stderr": stderr, "n_eval": args.n_eval,
        "eval": f"rk4, {EVAL_STEPS} steps", "train_wall_seconds": wall,
        "train_cpu_seconds": cpu, "losses": losses, "agreement": deviation,
        "torch_version": torch.__version__,
        "options": {**vars(args), "hidden": list(args.hidden),
                    "out": os.path.basename(args.out)},
    }
    print(f"{args.mixture} d = {args.d}: torch reference KL {kl:.4f} +- {stderr:.4f} nats (paired, "
          f"{args.n_eval} rows), trained in {wall:.0f} s wall, {cpu:.0f} s CPU")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
