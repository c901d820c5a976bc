"""One float32 training step of the U-Net velocity field, npflow against torch eager, and where
the time goes.

Builds :class:`npflow.networks.unet.UNet` for 28x28 one-channel images (MNIST's shape) and, for
each batch size, times one training step, ``forward_train`` + ``backward`` of a loss
``L = sum w v`` with a reused :class:`npflow.nn.Workspace` (the best of ``--repeats`` steps after
one warm-up step). If torch is installed, :func:`torch_unet` builds the same architecture as a
torch module, loads the same weights (``UNet.torch_state``), checks that its velocity, its input
gradient and its parameter gradients agree with npflow's, and times its step (forward +
``backward``, parameter gradients zeroed by ``set_to_none``). Then a profile: the time of every
layer type's forward and backward rule in the npflow step, measured by wrapping the layer
methods with a clock.

By default OpenBLAS and torch use one thread and the times are the CPU time of the calling
thread (``time.thread_time``), which the other jobs of a shared machine disturb least;
``--threads 2`` measures wall time on two threads (torch's, and OpenBLAS's with the U-Net's
``blas_threads`` set to None). ``--compare-blas-threads`` first times npflow's step
in wall and process-CPU time with ``blas_threads = 1`` and with OpenBLAS's own thread count.
``--side``, ``--channels``, ``--multipliers``, ``--groups`` and ``--classes`` choose another
U-Net (one-channel images).

    PYTHONPATH=. nice python demos/experiments/bench_unet.py
    PYTHONPATH=. nice python demos/experiments/bench_unet.py --side 8 --channels 16 \
        --multipliers 1 2 --groups 8 --classes 10 --batches 64 --repeats 5 --compare-blas-threads

Measured with the first command (``--repeats 3``, torch 2.13.0, NumPy 2.4.6, one thread, on a
2-core machine shared with other jobs; two runs, at load average 6-8 and 2-4, the second with
``--batches 32 64 128``): a U-Net for 28x28 (channels 32, multipliers (1, 2, 2), one
block per level, 1,045,729 parameters, 1.11 GFLOP of convolutions per image for forward and
backward) agrees with torch to a relative 1.5e-6 in v, 2.6e-6 in dL/dx and 2e-5 in the
parameter gradients, and takes

    batch 32:  npflow  518 ms per step, torch  309 ms: npflow / torch 1.68 (second run)
    batch 64:  npflow 1089 / 1073 ms per step, torch 706 / 684 ms: npflow / torch 1.54 / 1.57
    batch 128: npflow 2192 / 2114 ms per step, torch 1400 / 1353 ms: npflow / torch 1.57 / 1.56

(the same command on the same machine, load 4-6, with a 4 MB column chunk and group norm
broadcasting per-group (n, 1, G, 1) factors: 1.91 and 1.96 at batch 64 and 128). Where the
npflow step goes (batch 128, second run): 3x3 convolutions 67.3% (backward 44.6%, forward
22.6%), group norm 13.2%, SiLU 8.9%, 1x1 convolutions 4.4%, the stride-2 convolutions 2.2%,
the rest (concatenations, skip-gradient additions, transposes at the entrance and exit, the
up-convolution's regrouping, the time MLP) 4.1%. ``UNet.memory(128)`` = 2242 MiB against a
workspace of 2019 MiB after the step (memory(64) = 1169 MiB, workspace 1021 MiB).

The 8x8 digits U-Net (the second command, two runs, load 7-8 and 2-3): 160,401 parameters,
agreeing with torch to 8.7e-7 / 1.2e-6 / 5.6e-6; npflow 48 / 40 ms per step at batch 64, torch
28 / 24 ms (1.67 / 1.67); with OpenBLAS's own two threads instead of one, 1139 / 106 ms of wall
time per step (444 / 106 ms of process CPU) against 120 / 41 ms (47 / 41 ms): OpenBLAS's
threads wait for one another at every one of the step's hundreds of small products, and on a
loaded machine they wait for a core too, hence the U-Net's ``blas_threads = 1``.
"""
import argparse
import contextlib
import resource
import time
from collections import defaultdict

import numpy as np

from npflow import _blas, nn
from npflow.networks import layers
from npflow.networks.unet import UNet

CLOCK = time.thread_time


# --------------------------------------------------------------------------------------------
# The same network in torch
# --------------------------------------------------------------------------------------------
def torch_unet(net):
    """A torch module computing ``net``'s velocity, NCHW, with ``net``'s weights loaded.

    ``module(x, t, y=None)``: x (n, d) rows, t (n,), y (n,) int64 or None -> v (n, d).
    """
    import torch
    from torch import nn as tnn
    F = torch.nn.functional

    class Res(tnn.Module):
        def __init__(self, block):
            super().__init__()
            G = block.norm1.groups
            self.norm1 = tnn.GroupNorm(G, block.c_in)
            self.conv1 = tnn.Conv2d(block.c_in, block.c_out, 3, padding=1)
            self.emb = tnn.Linear(block.emb.fan_in, block.c_out)
            self.norm2 = tnn.GroupNorm(G, block.c_out)
            self.conv2 = tnn.Conv2d(block.c_out, block.c_out, 3, padding=1)
            self.skip = None if block.skip is None else tnn.Conv2d(block.c_in, block.c_out, 1)

        def forward(self, x, semb):
            h = self.conv1(F.silu(self.norm1(x))) + self.emb(semb)[:, :, None, None]
            h = self.conv2(F.silu(self.norm2(h)))
            return h + (x if self.skip is None else self.skip(x))

    def module_of(layer):
        if isinstance(layer, layers.ResBlock):
            return Res(layer)
        if isinstance(layer, layers.Conv2d):
            return tnn.Conv2d(layer.c_in, layer.c_out, layer.kernel, layer.stride, layer.pad)
        if isinstance(layer, layers.UpConv):  # applied after F.interpolate
            return tnn.Conv2d(layer.c_in, layer.c_out, 3, padding=1)
        if isinstance(layer, layers.GroupNorm):
            return tnn.GroupNorm(layer.groups, layer.channels, layer.eps)
        if isinstance(layer, nn.Embedding):
            return tnn.Embedding(layer.num, layer.dim_out)
        return tnn.Linear(layer.fan_in, layer.fan_out)

    class TorchUNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.layers = tnn.ModuleDict({name: module_of(layer)
                                          for name, layer in net.layers.items()})
            self.register_buffer("freqs", torch.from_numpy(net.embed.freqs.astype(net.dtype)))

        def forward(self, x, t, y=None):
            c, H, W = net.image_shape
            L = self.layers
            angles = (net.time_scale * t[:, None]) * self.freqs  # (n, C/2)
            e = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (n, C)
            emb = L["time2"](F.silu(L["time1"](e)))  # (n, E)
            if net.n_classes:
                emb = emb + L["label"](y)
            semb = F.silu(emb)  # (n, E)
            h = L["conv_in"](x.reshape(-1, c, H, W))  # (n, C, H, W)
            skips = [h]
            for kind, name in net.down:
                h = L[name](h, semb) if kind == "res" else L[name](h)
                skips.append(h)
            for _, name in net.mid:
                h = L[name](h, semb)
            for kind, name, _ in net.up:
                if kind == "res":
                    h = L[name](torch.cat([h, skips.pop()], dim=1), semb)
                else:
                    h = L[name](F.interpolate(h, scale_factor=2, mode="nearest"))
            h = L["conv_out"](F.silu(L["norm_out"](h)))  # (n, c, H, W)
            return h.reshape(h.shape[0], -1)

    module = TorchUNet()
    state = {f"layers.{k}": torch.from_numpy(np.ascontiguousarray(v))
             for k, v in net.torch_state().items()}
    state["freqs"] = module.freqs
    module.load_state_dict(state)
    return module


def torch_grads(module, x, t, y, weight):
    """(v, dL/dx, named parameter gradients) of ``L = sum weight v`` through ``module``."""
    import torch
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = None if y is None else torch.from_numpy(y)
    module.zero_grad(set_to_none=True)
    v = module(xt, torch.from_numpy(t), yt)
    v.backward(torch.from_numpy(weight))
    grads = {name[len("layers."):]: p.grad.numpy() for name, p in module.named_parameters()}
    return v.detach().numpy(), xt.grad.numpy(), grads


def compare(net, module, x, t, y, weight):
    """Max relative differences (v, dL/dx, parameter gradients) between npflow and torch."""
    v, cache = net.forward_train(x, t, y)
    dx = net.backward(cache, weight)
    v_t, dx_t, grads_t = torch_grads(module, x, t, y, weight)
    grads = grads_in_torch_layout(net)
    rel = lambda a, b: float(np.abs(a - b).max() / np.abs(b).max())
    return rel(v, v_t), rel(dx, dx_t), max(rel(grads[k], g) for k, g in grads_t.items())


def grads_in_torch_layout(net):
    """``net.grads`` named and shaped as :meth:`UNet.torch_state` names the weights."""
    saved = net.params.copy()
    net.params[...] = net.grads
    state = net.torch_state()
    net.params[...] = saved
    return state


# --------------------------------------------------------------------------------------------
# Timing and profile
# --------------------------------------------------------------------------------------------
def best_time(fn, repeats):
    fn()  # warm-up: the workspace allocates its arrays
    best = np.inf
    for _ in range(repeats):
        start = CLOCK()
        fn()
        best = min(best, CLOCK() - start)
    return best


def npflow_step(net, x, t, y, weight, work):
    def step():
        v, cache = net.forward_train(x, t, y, work)
        net.backward(cache, weight, work)
    return step


def torch_step(module, x, t, y, weight):
    import torch
    xt, tt, wt = torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(weight)
    yt = None if y is None else torch.from_numpy(y)

    def step():
        module.zero_grad(set_to_none=True)
        module(xt, tt, yt).backward(wt)
    return step


def _kind(layer):
    if isinstance(layer, layers.Conv2d):
        return f"Conv2d {layer.kernel}x{layer.kernel}" + (" stride 2" if layer.stride == 2 else "")
    return type(layer).__name__


@contextlib.contextmanager
def profiled(totals):
    """Wrap the forward and backward rules of the layers with a clock adding into
    ``totals[(kind, rule)]`` the time spent in the rule itself, the time of the wrapped rules it
    calls subtracted (UpConv runs a Conv2d inside)."""
    classes = (layers.Conv2d, layers.UpConv, layers.GroupNorm, layers.SiLU, nn.Linear)
    saved = []
    inner = [0.0]  # time of the wrapped calls made by the call being timed, innermost last
    for cls in classes:
        for rule in ("forward", "backward"):
            original = cls.__dict__[rule]
            saved.append((cls, rule, original))

            def timed(self, *args, _original=original, _rule=rule, **kwargs):
                inner.append(0.0)
                start = CLOCK()
                out = _original(self, *args, **kwargs)
                elapsed = CLOCK() - start
                totals[(_kind(self), _rule)] += elapsed - inner.pop()
                inner[-1] += elapsed
                return out
            setattr(cls, rule, timed)
    try:
        yield totals
    finally:
        for cls, rule, original in saved:
            setattr(cls, rule, original)


def profile(net, x, t, y, weight, work, repeats):
    """Seconds per step of each (layer kind, rule), the rest under ("other", "")."""
    step = npflow_step(net, x, t, y, weight, work)
    step()
    totals = defaultdict(float)
    with profiled(totals):
        start = CLOCK()
        for _ in range(repeats):
            step()
        total = (CLOCK() - start) / repeats
    table = {key: value / repeats for key, value in totals.items()}
    table[("other (concat, adds, transposes, embedding)", "")] = total - sum(table.values())
    return total, table


def conv_flops(net):
    """FLOPs (2 per multiply-add) of every convolution in one forward pass of one image."""
    count = 0
    original = layers.Conv2d.forward

    def counting(self, x, work=None):
        nonlocal count
        ho, wo = self.out_size(x.shape[1], x.shape[2])
        count += 2 * self.kernel ** 2 * self.c_in * self.c_out * ho * wo * x.shape[0]
        return original(self, x, work)
    layers.Conv2d.forward = counting
    try:
        net.forward(np.zeros((1, net.dim), net.dtype), 0.5)
    finally:
        layers.Conv2d.forward = original
    return count


def blas_threads_table(net, x, t, y, weight, repeats):
    """Wall and process-CPU seconds of one npflow step with OpenBLAS held to one thread (the
    U-Net's ``blas_threads = 1``) and left at its own count (``None``), alternating, best of
    ``repeats``: {label: (wall, cpu)}."""
    work = nn.Workspace(np.float32)
    step = npflow_step(net, x, t, y, weight, work)
    times = {}
    try:
        for _ in range(repeats):
            for label, count in (("one OpenBLAS thread", 1),
                                 (f"OpenBLAS's own {_blas.threads()} threads", None)):
                net.blas_threads = count
                step()  # warm-up, and the workspace
                wall, cpu = time.perf_counter(), time.process_time()
                step()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                old = times.get(label, (np.inf, np.inf))
                times[label] = (min(old[0], wall), min(old[1], cpu))
    finally:
        net.blas_threads = UNet.blas_threads
    return times


def main(batches=(64, 128), side=28, channels=32, multipliers=(1, 2, 2), blocks=1, groups=8,
         n_classes=0, repeats=3, threads=1, compare_blas_threads=False, seed=0):
    global CLOCK
    CLOCK = time.thread_time if threads == 1 else time.perf_counter
    rng = np.random.default_rng(seed)
    net = UNet((1, side, side), channels, multipliers, blocks, groups, n_classes=n_classes,
               rng=rng)
    print(f"U-Net {net.config()}: {net.num_params:,} parameters; {threads} thread(s), "
          f"{CLOCK.__name__}; numpy {np.__version__}")
    try:
        import torch
        torch.set_num_threads(threads)
        module = torch_unet(net)
        print(f"torch {torch.__version__}")
    except ImportError:
        module = None
        print("torch not installed: npflow only")
    for n in batches:
        x = rng.standard_normal((n, net.dim)).astype(np.float32)
        t = rng.uniform(size=n).astype(np.float32)
        y = rng.integers(0, n_classes + 1, size=n) if n_classes else None
        weight = rng.standard_normal((n, net.dim)).astype(np.float32) / n
        if compare_blas_threads:
            for label, (wall, cpu) in blas_threads_table(net, x, t, y, weight, repeats).items():
                print(f"batch {n}, {label}: {wall * 1e3:.0f} ms wall, {cpu * 1e3:.0f} ms CPU "
                      f"of the process per step")
        with _blas.limit(threads) if threads == 1 else contextlib.nullcontext():
            net.blas_threads = threads if threads == 1 else None
            time_batch(net, module, x, t, y, weight, repeats)
            net.blas_threads = UNet.blas_threads


def time_batch(net, module, x, t, y, weight, repeats):
    """Print npflow's and torch's step times on one batch, their agreement, the memory and the
    profile of the npflow step."""
    n = x.shape[0]
    gflop = 3 * n * conv_flops(net) / 1e9  # forward + backward (dx and dW)
    work = nn.Workspace(np.float32)
    seconds = best_time(npflow_step(net, x, t, y, weight, work), repeats)
    line = (f"batch {n}: npflow {seconds * 1e3:.0f} ms/step "
            f"({gflop / seconds:.0f} GFLOP/s over the convolutions' {gflop:.2f} GFLOP)")
    if module is not None:
        errs = compare(net, module, x, t, y, weight)
        print(f"batch {n}: npflow vs torch, max relative difference: v {errs[0]:.1e}, "
              f"dL/dx {errs[1]:.1e}, parameter gradients {errs[2]:.1e}")
        tseconds = best_time(torch_step(module, x, t, y, weight), repeats)
        line += (f"; torch {tseconds * 1e3:.0f} ms/step; "
                 f"npflow / torch = {seconds / tseconds:.2f}")
    print(line, flush=True)
    workspace = sum(a.nbytes for a in work._arrays.values())
    print(f"  UNet.memory({n}) = {net.memory(n) / 2**20:.0f} MiB; this step's workspace "
          f"{workspace / 2**20:.0f} MiB; peak resident memory of the process so far "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")
    total, table = profile(net, x, t, y, weight, work, repeats)
    print(f"  profile of the npflow step ({total * 1e3:.0f} ms with the clocks):")
    for (kind, rule), sec in sorted(table.items(), key=lambda kv: -kv[1]):
        print(f"    {kind + ' ' + rule:<50} {sec * 1e3:7.1f} ms  {100 * sec / total:5.1f}%")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--side", type=int, default=28, help="image side (one channel)")
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--multipliers", type=int, nargs="+", default=[1, 2, 2])
    parser.add_argument("--blocks", type=int, default=1)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--classes", type=int, default=0, help="n_classes (labels drawn at random)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, choices=(1, 2), default=1)
    parser.add_argument("--compare-blas-threads", action="store_true",
                        help="first time npflow's step with one OpenBLAS thread and with "
                             "OpenBLAS's own count (wall and process CPU)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.batches, args.side, args.channels, args.multipliers, args.blocks, args.groups,
         args.classes, args.repeats, args.threads, args.compare_blas_threads, args.seed)
