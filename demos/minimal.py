"""Flow matching in one file: Gaussian noise -> 2-D checkerboard, NumPy only, no npflow.

Regress v(xt, t) on ut = x1 - x0 at xt = (1 - t) x0 + t x1 (Lipman et al. 2023, eq. 23), then
carry noise x0 ~ N(0, I) to data by integrating dx/dt = v(x, t) from t = 0 to 1. Backprop by hand.

    python demos/minimal.py --out /tmp/minimal   # 2500 steps; writes samples.npy, samples.png
"""
import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: 2 threads thrash a busy CPU
import numpy as np  # noqa: E402

# --- data: the 8 filled squares of a 4 x 4 board over [-4, 4]^2 (npflow.datasets) ---
def checkerboard(n, rng):
    col = rng.integers(0, 4, size=n)  # (n,) column i of each point's square
    row = 2 * rng.integers(0, 2, size=n) + (col + 1) % 2  # (n,) a row j with i + j odd
    corner = np.stack([col, row], axis=1) * 2.0 - 4.0  # (n, 2) lower-left corner
    return corner + rng.uniform(0.0, 2.0, size=(n, 2))  # (n, 2)

# --- the velocity field: an MLP on [x, t] with ReLU hidden layers (npflow.nn) ---
def init_mlp(sizes, rng, dtype=np.float32):
    """[W1, b1, W2, b2, ...] for layer sizes (3, h, ..., h, 2), He-initialised for ReLU."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        W = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)  # (fan_in, fan_out)
        params += [W.astype(dtype), np.zeros(fan_out, dtype)]
    return params

def forward(params, x, t):
    """v(x, t) (n, 2) for x (n, 2), t (n, 1), and the layer inputs that backward needs."""
    a = np.concatenate([x, t], axis=1).astype(params[0].dtype)  # (n, 3) the input [x, t]
    inputs = []
    for k in range(0, len(params), 2):
        inputs.append(a)
        z = a @ params[k] + params[k + 1]  # (n, h) z = a W + b
        a = np.maximum(z, 0) if k + 2 < len(params) else z  # (n, h) ReLU; the last layer is linear
    return a, inputs  # (n, 2), [(n, 3), (n, h), ...]

def backward(params, inputs, dv):
    """Gradients of a loss L given dv = dL/dv (n, 2): one per parameter, and dL/d[x, t] (n, 3)."""
    grads = [None] * len(params)
    dz = dv  # (n, 2) dL/dz of the last (linear) layer
    for k in range(len(params) - 2, -1, -2):
        a = inputs[k // 2]  # (n, h_in) this layer's input
        grads[k] = a.T @ dz  # (h_in, h_out) dL/dW = a^T dz
        grads[k + 1] = dz.sum(axis=0)  # (h_out,) dL/db = sum_n dz
        da = dz @ params[k].T  # (n, h_in) dL/da = dz W^T
        dz = da * (a > 0) if k > 0 else da  # (n, h_in) ReLU'(z) = 1 where a = relu(z) > 0
    return grads, dz  # dz is now dL/d[x, t]: (n, 3)

# --- Adam, Kingma & Ba 2015, Algorithm 1 (npflow.optim) ---
class Adam:
    def __init__(self, params, beta1=0.9, beta2=0.999, eps=1e-8):
        self.m = [np.zeros_like(p) for p in params]  # first moments, shaped like params
        self.v = [np.zeros_like(p) for p in params]  # second moments
        self.beta1, self.beta2, self.eps, self.t = beta1, beta2, eps, 0

    def step(self, params, grads, lr):
        """theta <- theta - lr mhat / (sqrt(vhat) + eps), in place."""
        self.t += 1
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m += (1 - self.beta1) * (g - m)  # m <- b1 m + (1 - b1) g
            v += (1 - self.beta2) * (g * g - v)  # v <- b2 v + (1 - b2) g^2
            m_hat, v_hat = m / (1 - self.beta1 ** self.t), v / (1 - self.beta2 ** self.t)
            p -= lr * m_hat / (np.sqrt(v_hat) + self.eps)  # bias-corrected moments

# --- the CFM loss on straight paths (npflow.paths) and the training loop (npflow.train) ---
def cfm_loss(params, x0, x1, t):
    """L = sum_n |v(xt, t) - (x1 - x0)|^2 / (n d), xt = (1 - t) x0 + t x1; L and its gradients."""
    x0, x1, t = (a.astype(params[0].dtype) for a in (x0, x1, t))  # float32: twice as fast
    xt = (1 - t) * x0 + t * x1  # (n, 2) a point on the straight path from x0 to x1
    ut = x1 - x0  # (n, 2) the path's velocity d xt / dt
    v, inputs = forward(params, xt, t)  # (n, 2)
    diff = v - ut  # (n, 2)
    loss = float(np.mean(diff * diff))  # the mean over all n d entries, as npflow.train takes it
    grads, _ = backward(params, inputs, 2.0 * diff / diff.size)  # dL/dv = 2 (v - ut) / (n d)
    return loss, grads

def train(steps, rng, width=128, depth=3, batch=2048, lr=8e-3, warmup=200, ema_decay=0.995):
    """Adam with warm-up then cosine decay; returns the EMA of the weights and the losses."""
    params = init_mlp([3] + [width] * depth + [2], rng)
    ema = [p.copy() for p in params]  # theta_ema <- d theta_ema + (1 - d) theta
    opt, losses = Adam(params), []
    for step in range(steps):
        x0 = rng.standard_normal((batch, 2))  # (B, 2) noise
        x1 = checkerboard(batch, rng)  # (B, 2) data, paired with x0 independently
        t = 1 / (1 + np.exp(-rng.standard_normal((batch, 1))))  # (B, 1) logit-normal: more mid-path
        loss, grads = cfm_loss(params, x0, x1, t)
        rate = lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * step / steps))
        opt.step(params, grads, rate)
        for e, p in zip(ema, params):
            e += (1 - ema_decay) * (p - e)
        losses.append(loss)
        if (step + 1) % max(1, steps // 10) == 0:
            print(f"step {step + 1:5d}  loss {np.mean(losses[-100:]):.4f}")
    return ema, losses

# --- sampling: integrate dx/dt = v(x, t) from t = 0 to 1 (npflow.solvers) ---
def velocity(params, x, t):
    return forward(params, x, np.full((len(x), 1), t))[0]  # (n, 2)

def euler(params, x0, steps):
    x, h = x0, 1.0 / steps
    for t in h * np.arange(steps):
        x = x + h * velocity(params, x, t)  # (n, 2)
    return x

def rk4(params, x0, steps):
    x, h = x0, 1.0 / steps
    for t in h * np.arange(steps):
        k1 = velocity(params, x, t)  # (n, 2)
        k2 = velocity(params, x + h / 2 * k1, t + h / 2)
        k3 = velocity(params, x + h / 2 * k2, t + h / 2)
        k4 = velocity(params, x + h * k3, t + h)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)  # (n, 2)
    return x

# --- the run: train, sample, save; a scatter plot per (title, points) (npflow.cli, npflow.viz) ---
def draw(panels, path):
    try:
        from matplotlib.figure import Figure  # no pyplot: no window, no backend to choose
    except ImportError:
        return print("pictures skipped: matplotlib is not installed (pip install 'npflow[viz]')")
    fig = Figure(figsize=(4 * len(panels), 4), layout="tight")
    for ax, (title, x) in zip(fig.subplots(1, len(panels)), panels):
        ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4)
        ax.set(title=title, xlim=(-5, 5), ylim=(-5, 5), aspect="equal")
    fig.savefig(path, dpi=80)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2500, help="training steps")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "output", "minimal"),
                   help="folder for samples.npy and samples.png (default: demos/output/minimal)")
    p.add_argument("--seed", type=int, default=0, help="seed of the one random generator")
    p.add_argument("--n", type=int, default=10000, help="points to sample")
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    params, losses = train(args.steps, rng)
    x0 = rng.standard_normal((args.n, 2))  # (n, 2)
    samples = rk4(params, x0, 20)  # (n, 2) 20 RK4 steps; Euler needs many more
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "samples.npy"), samples)
    draw([("noise x0", x0), ("Euler, 4 steps", euler(params, x0, 4)), ("RK4, 20 steps", samples)],
         os.path.join(args.out, "samples.png"))
    return samples, losses

if __name__ == "__main__":
    main()
