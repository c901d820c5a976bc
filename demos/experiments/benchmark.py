"""Benchmark npflow against PyTorch (training, sampling) and SciPy (OT assignment), interleaved.

The measurements live in ``speed.py`` beside this script; this script adds the references when
they are importable and prints the measurements as a table:

* PyTorch eager: the same network layout under the same names (a class-conditional net's
  label table as ``nn.Embedding``), loaded with npflow's weights
  (``MLP.torch_state``; the outputs are checked to agree to float32 precision first),
  ``torch.optim.Adam`` as constructed by default (on CPU that is its per-tensor loop: PyTorch
  picks the foreach kernels by default on GPUs only; ``--torch-adam foreach|fused`` selects the
  others), an EMA by ``torch._foreach_lerp_``, and ``loss.item()`` every step (npflow records
  every loss too).
  torch samples its batch with torch ops (``torch.randn`` and the checkerboard construction of
  :mod:`npflow.datasets`, as a plain PyTorch demo does), while npflow runs its own
  ``Trainer.draw_batch`` (NumPy samplers, input checks, the path). On the digits rows torch
  takes minibatches of the same training rows in the same way (an epoch permutation, ``x + u``,
  the trainer's standardization, label dropout). Both clip the gradient norm when the
  configuration does (the digits network) and follow the trainer's learning-rate schedule.
  With OT-CFM pairing torch solves the assignment with SciPy, as TorchCFM does with POT.
  torch uses as many threads as NumPy's BLAS (the usable cores, or OPENBLAS_NUM_THREADS /
  OMP_NUM_THREADS when set).
* No reference for the digits network's exact held-out likelihood (npflow's time only).
* SciPy's ``linear_sum_assignment`` for the exact assignment, as in ``bench_assignment.py``.

    python demos/experiments/benchmark.py --out demos/experiments/figures/benchmark.json
    python demos/experiments/benchmark.py --quick   # every code path, meaningless numbers
    python demos/experiments/benchmark.py --nll-rounds 0   # without the held-out likelihood
"""
import argparse
import dataclasses
import os
import sys
import time

import numpy as np

import speed

try:
    import torch
except ImportError:
    torch = None

try:
    from scipy.optimize import linear_sum_assignment
    import scipy
except ImportError:
    linear_sum_assignment = None

AGREEMENT = 1e-4  # largest |v_torch - v_npflow| / max |v| accepted before timing (float32)
ADAM_VARIANTS = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="write every number to this JSON file")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes: checks every code path in seconds")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved blocks per training figure (default: 7)")
    parser.add_argument("--sample-rounds", type=int, default=None,
                        help="sampling runs per library; 0 skips sampling (default: 3)")
    parser.add_argument("--sample-points", type=int, default=None, help="default: 10000")
    parser.add_argument("--sample-steps", type=int, default=None, help="default: 100")
    parser.add_argument("--nll-rounds", type=int, default=None,
                        help="runs of the digits network's exact held-out likelihood; 0 skips "
                             "it (default: 1)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    parser.add_argument("--torch-adam", choices=ADAM_VARIANTS, default="default",
                        help="torch.optim.Adam implementation: the constructor's default (on "
                             "CPU the per-tensor loop), foreach=True or fused=True "
                             "(default: default)")
    parser.add_argument("--no-scipy", action="store_true", help="skip the SciPy reference")
    args = parser.parse_args(argv)
    for name in ("rounds", "sample_rounds", "sample_points", "sample_steps", "nll_rounds"):
        value, low = getattr(args, name), 0 if name in ("sample_rounds", "nll_rounds") else 1
        if value is not None and value < low:
            parser.error(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    return args


def options_from(args):
    options = speed.Options.quick() if args.quick else speed.Options()
    given = {name: getattr(args, name) for name in
             ("rounds", "sample_rounds", "sample_points", "sample_steps", "nll_rounds")
             if getattr(args, name) is not None}
    return dataclasses.replace(options, **given)


# ----------------------------------------------------------------------------------------------
# PyTorch reference
# ----------------------------------------------------------------------------------------------
if torch is not None:
    class TorchMLP(torch.nn.ModuleDict):
        """npflow's MLP in torch: layers named like ``MLP.layers``, same forward.

        ``z0 = in(x or [x, t]) (+ time(e(t))) (+ label(y))``, ``a_i = act(z_i)``,
        ``v = out(a_{L-1})``.
        """

        ACTIVATIONS = {"relu": torch.relu, "selu": torch.selu, "silu": torch.nn.functional.silu,
                       "tanh": torch.tanh}

        def __init__(self, model):
            super().__init__({name: _torch_layer(layer) for name, layer in model.layers.items()})
            self.load_state_dict({k: torch.from_numpy(v) for k, v in model.torch_state().items()})
            self.act = self.ACTIVATIONS[model.activation.name]
            self.hidden_names = [name for name in model.layers if name.startswith("hidden")]
            self.residual = model.residual
            self.time_scale = model.time_scale
            self.n_classes = model.n_classes
            self.freqs = None if model.embed is None else torch.tensor(
                model.embed.freqs, dtype=torch.float32)  # (E/2,)

        def forward(self, x, t, y=None):
            """x (n, d), t (n,), y (n,) labels (None: the null label) -> v (n, d)."""
            if self.freqs is None:
                z = self["in"](torch.cat([x, t[:, None]], dim=1))
            else:
                angles = (self.time_scale * t)[:, None] * self.freqs  # (n, E/2)
                emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (n, E)
                z = self["in"](x) + self["time"](emb)
            if self.n_classes:
                if y is None:
                    y = torch.full((x.shape[0],), self.n_classes, dtype=torch.long)
                z = z + self["label"](y)  # (n, h0)
            a = self.act(z)
            for name in self.hidden_names:
                f = self.act(self[name](a))
                a = a + f if self.residual else f
            return self["out"](a)

    def _torch_layer(layer):
        """nn.Embedding for a label table ((K + 1) x h0), nn.Linear for the rest."""
        if hasattr(layer, "E"):
            return torch.nn.Embedding(layer.num, layer.dim_out)
        return torch.nn.Linear(layer.fan_in, layer.fan_out)


def torch_points(name, n, generator):
    """n points of dataset ``name`` drawn with torch (the constructions of npflow.datasets)."""
    if name == "gaussian":
        return torch.randn(n, 2, generator=generator)
    if name == "checkerboard":
        labels = torch.randint(0, 8, (n,), generator=generator)
        row = labels // 2
        col = 2 * (labels % 2) + (row + 1) % 2
        corner = torch.stack([col, row], dim=1) * 2.0 - 4.0  # (n, 2)
        return corner + 2.0 * torch.rand(n, 2, generator=generator)
    raise ValueError(f"the torch reference samples gaussian and checkerboard only, not {name!r}")


def agreement(net, model, seed=0):
    """Largest |v_torch - v_npflow| / max |v_npflow| on 256 random points, times (and labels)."""
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal((256, model.dim))).astype(np.float32)
    t = rng.random(256).astype(np.float32)
    y = rng.integers(0, model.n_classes + 1, 256) if model.n_classes else None  # null included
    v = model.forward(x, t, y)
    with torch.no_grad():
        v_torch = net(torch.from_numpy(x), torch.from_numpy(t),
                      None if y is None else torch.from_numpy(y)).numpy()
    deviation = float(np.abs(v_torch - v).max() / np.abs(v).max())
    if deviation > AGREEMENT:
        raise RuntimeError(f"the torch network disagrees with npflow's: relative deviation "
                           f"{deviation:.2e} > {AGREEMENT}")
    return deviation


def torch_trainer(trainer, adam="default"):
    """``(run, deviation)``: ``run(count)`` trains the same configuration in torch eager.

    The batches come from :func:`torch_toy_batches` (the 2-D datasets) or
    :func:`torch_row_batches` (target "data": the trainer's rows). Like ``Trainer.train_step``
    each step clips the global gradient norm when ``grad_clip > 0`` and takes the learning rate
    of the trainer's schedule. ``adam`` picks the torch.optim.Adam implementation (see
    ADAM_VARIANTS).
    """
    config, model = trainer.config, trainer.model
    if config.coupling not in ("independent", "ot") or config.path != "linear" \
            or config.time_sampling != "uniform" or config.weight_decay or config.reflow \
            or config.source != "gaussian":
        raise ValueError("the torch reference covers the benchmark's configurations only")
    if config.coupling == "ot" and linear_sum_assignment is None:
        return None  # OT pairs need SciPy's assignment
    net = TorchMLP(model)
    deviation = agreement(net, model)
    params = list(net.parameters())
    optimizer = torch.optim.Adam(params, lr=config.lr, **ADAM_VARIANTS[adam])
    shadow = [p.detach().clone() for p in params]  # the EMA
    generator = torch.Generator().manual_seed(config.seed)
    draw = torch_row_batches(trainer, generator) if trainer.rows is not None \
        else torch_toy_batches(config, generator)
    n, losses, step = config.batch_size, [], [trainer.step]

    def run(count):
        for _ in range(count):
            x0, x1, y = draw(n)  # (n, d), (n, d), (n,) or None
            t = torch.rand(n, generator=generator)  # (n,)
            xt = (1 - t[:, None]) * x0 + t[:, None] * x1  # the linear path
            ut = x1 - x0
            loss = torch.mean((net(xt, t, y) - ut) ** 2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.param_groups[0]["lr"] = trainer.schedule(step[0])
            optimizer.step()
            with torch.no_grad():
                torch._foreach_lerp_(shadow, params, 1 - config.ema_decay)
            losses.append(loss.item())
            step[0] += 1

    return run, deviation


def torch_toy_batches(config, generator):
    """``draw(n) -> (x0, x1, None)``: the 2-D source and target drawn with torch (OT: SciPy)."""
    if config.conditional:
        raise ValueError("the torch reference has no labelled 2-D datasets")

    def draw(n):
        x0 = torch_points(config.source, n, generator)  # (n, 2)
        x1 = torch_points(config.target, n, generator)  # (n, 2)
        if config.coupling == "ot":
            cost = torch.cdist(x0, x1) ** 2  # (n, n) squared distances
            x1 = x1[torch.from_numpy(linear_sum_assignment(cost.numpy())[1])]
        return x0, x1, None

    return draw


def torch_row_batches(trainer, generator):
    """``draw(n) -> (x0, x1, y)``: minibatches of the trainer's rows, as ``RowBatches`` makes.

    The training rows are reshuffled every epoch (``torch.randperm``) and read without
    replacement (an epoch's last partial batch is skipped, where npflow wraps it over); each
    batch is dequantized (``x + u``, ``u ~ U[0, 1)``) when the trainer's transform says so and
    standardized with its mean and scale; x0 is standard normal noise; labels are replaced by
    the null label with probability ``label_dropout``.
    """
    config, rows = trainer.config, trainer.rows
    if config.coupling != "independent":
        raise ValueError("the torch reference pairs rows of data independently only")
    transform = rows.transform
    x = torch.from_numpy(np.asarray(rows.x[rows.split.train], dtype=np.float32))  # (N, d)
    y = None if rows.y is None else torch.from_numpy(rows.y[rows.split.train])  # (N,)
    mean = torch.from_numpy(transform.mean.astype(np.float32))  # (d,)
    scale = torch.from_numpy(transform.scale.astype(np.float32))  # (d,)
    order, start = torch.randperm(len(x), generator=generator), 0

    def draw(n):
        nonlocal order, start
        if start + n > len(x):  # a new epoch
            order, start = torch.randperm(len(x), generator=generator), 0
        idx = order[start:start + n]
        start += n
        x1 = x[idx]  # (n, d)
        if transform.dequantize:
            x1 = x1 + torch.rand(x1.shape, generator=generator)
        x1 = (x1 - mean) / scale
        x0 = torch.randn(x1.shape, generator=generator)  # (n, d)
        if y is None:
            return x0, x1, None
        drop = torch.rand(n, generator=generator) < config.label_dropout  # (n,)
        return x0, x1, torch.where(drop, rows.n_classes, y[idx])

    return draw


def torch_sampler(model, x0, steps):
    """``run()``: RK4 from x0 on the grid of npflow.solvers (t_i = i / steps), in torch."""
    net = TorchMLP(model)
    agreement(net, model)
    x0 = torch.from_numpy(np.ascontiguousarray(x0))
    times = np.linspace(0.0, 1.0, steps + 1)  # (steps + 1,) as npflow.solvers
    h = 1.0 / steps

    def v(x, t):
        return net(x, torch.full((x.shape[0],), t))

    def run():
        with torch.inference_mode():
            x = x0.clone()
            for i in range(steps):
                t = float(times[i])
                k1 = v(x, t)
                k2 = v(torch.add(x, k1, alpha=h / 2), t + h / 2)
                k3 = v(torch.add(x, k2, alpha=h / 2), t + h / 2)
                k4 = v(torch.add(x, k3, alpha=h), t + h)
                x.add_(k1, alpha=h / 6).add_(k2, alpha=h / 3).add_(k3, alpha=h / 3)
                x.add_(k4, alpha=h / 6)
            return x.numpy()

    return run


def torch_matmul(size, repeats=3):
    """Best GFLOP/s of a float32 (size, size) @ (size, size) product in torch."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def torch_reference(adam="default"):
    torch.set_num_threads(speed.blas_threads())  # as many threads as NumPy's BLAS
    name = f"torch {torch.__version__}" + ("" if adam == "default" else f" (Adam {adam})")
    return speed.Reference(name=name, trainer=lambda trainer: torch_trainer(trainer, adam),
                           sampler=torch_sampler, matmul=torch_matmul)


def scipy_reference():
    return speed.Reference(name=f"scipy {scipy.__version__}",
                           assignment=lambda cost: linear_sum_assignment(cost)[1])


def main(argv=None):
    args = parse_args(argv)
    options = options_from(args)
    reference = None if args.no_torch or torch is None else torch_reference(args.torch_adam)
    assignment = None if args.no_scipy or linear_sum_assignment is None else scipy_reference()
    start = time.perf_counter()

    def log(text):
        print(f"[{time.perf_counter() - start:6.1f} s] {text}", file=sys.stderr, flush=True)

    result = speed.run(options, reference, assignment, log=log)
    if reference is not None:
        result["machine"]["torch_threads"] = torch.get_num_threads()
        result["machine"]["torch_adam"] = args.torch_adam
    print(speed.machine_line(result))
    print()
    print(speed.table(result))
    if args.out:
        folder = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(folder, exist_ok=True)
        speed.save(result, args.out)
        print(f"\nsaved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
