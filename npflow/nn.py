"""The velocity field network v(x, t): an MLP with hand-written backprop.

Every layer keeps three rules side by side:

* ``forward``  -- the value, ``y = f(x)``;
* ``backward`` -- the vector-Jacobian product, ``dx = (df/dx)^T dy`` (and parameter gradients);
* ``tangent``  -- the Jacobian-vector product, ``dy = (df/dx) dx`` (forward mode, used for the
  exact divergence in :mod:`npflow.likelihood`).

All weights and biases of a network live in one contiguous flat array ``MLP.params`` (each layer's
``W`` and ``b`` are views into it) and their gradients in a matching flat array ``MLP.grads``, so the
optimizer updates everything with a handful of vectorized operations.

Gradients are *written*, not accumulated: after ``backward`` the array ``grads`` holds the gradient
of the loss of the last ``forward_train`` batch. Every parameter is used exactly once in the graph,
so there is nothing to accumulate and no ``zero_grad`` to forget.

A training loop or an ODE solver calls the network thousands of times with the same batch size;
it passes a :class:`Workspace` so that every call writes its activations into the same arrays
instead of asking for new ones.
"""
import functools
import math
from dataclasses import dataclass

import numpy as np

from . import _checks


# ----------------------------------------------------------------------------------------------
# Activations: a = f(z), and f'(z) for the backward and tangent rules (da -> dz = f'(z) * da).
# ----------------------------------------------------------------------------------------------
ZEROS_CACHED_MAX = 1 << 20  # entries; at most 8 such arrays are kept (32 MB in float32)


def _zeros(shape, dtype):
    """Zeros to compare z (shape) against in ``np.maximum`` / ``np.minimum``, read-only.

    ``np.maximum(z, 0)`` against the scalar 0 takes a slow element-by-element loop in NumPy
    2.4; against an array of zeros it is vectorized (measured on a 10000 x 64 float32 array:
    0.24 ms vs 0.085 ms; against one broadcast row of zeros 0.16 ms). Arrays of up to
    ``ZEROS_CACHED_MAX`` entries are cached by shape; larger ones get the row.
    """
    if math.prod(shape) > ZEROS_CACHED_MAX:
        return _cached_zeros((shape[-1],), dtype)
    return _cached_zeros(shape, dtype)


@functools.lru_cache(maxsize=8)
def _cached_zeros(shape, dtype):
    zeros = np.zeros(shape, dtype)
    zeros.flags.writeable = False
    return zeros


class ReLU:
    """ReLU, ``f(z) = max(z, 0)``, ``f'(z) = 1[z > 0]``."""

    name = "relu"

    @staticmethod
    def forward(z, out=None):
        return np.maximum(z, _zeros(z.shape, z.dtype), out=out)

    @staticmethod
    def derivative(z, a):
        return z > 0  # a boolean mask: multiplying by it is exact, and 4x smaller than floats


class SiLU:
    """SiLU / swish, ``f(z) = z s(z)`` with ``s`` the logistic sigmoid.

    ``f'(z) = s(z) (1 + z (1 - s(z)))``. The sigmoid is computed as ``(1 + tanh(z / 2)) / 2``,
    which never overflows.
    """

    name = "silu"

    @staticmethod
    def _sigmoid(z):
        s = np.tanh(0.5 * z)
        s += 1
        s *= 0.5
        return s

    @classmethod
    def forward(cls, z, out=None):
        return np.multiply(z, cls._sigmoid(z), out=out)

    @classmethod
    def derivative(cls, z, a):
        s = cls._sigmoid(z)
        return s + a * (1 - s)  # s (1 + z (1 - s)) = s + z s (1 - s) = s + a (1 - s)


class Tanh:
    """Hyperbolic tangent, ``f(z) = tanh z``, ``f'(z) = 1 - tanh(z)^2``."""

    name = "tanh"

    @staticmethod
    def forward(z, out=None):
        return np.tanh(z, out=out)

    @staticmethod
    def derivative(z, a):
        return 1 - a * a


class SELU:
    """SELU (Klambauer et al. 2017, eq. 2): ``f(z) = lam z`` for ``z > 0``, else ``lam alpha (e^z - 1)``.

    ``f'(z) = lam`` for ``z > 0``, else ``f(z) + lam alpha``. The constants make unit-variance
    activations a fixed point; TorchCFM's 2-D examples use SELU.
    """

    name = "selu"
    alpha = 1.6732632423543772
    lam = 1.0507009873554805

    @classmethod
    def forward(cls, z, out=None):
        # f(z) = lam max(z, 0) + lam alpha (e^min(z, 0) - 1): each term vanishes on the other
        # side of 0, so the sum needs no np.where (a third faster, and exactly equal).
        # ``out`` may be z itself: z is read into ``pos`` before ``out`` is written.
        zeros = _zeros(z.shape, z.dtype)
        pos = np.maximum(z, zeros)
        pos *= cls.lam
        a = np.minimum(z, zeros, out=out)
        np.expm1(a, out=a)
        a *= cls.lam * cls.alpha
        a += pos
        return a

    @classmethod
    def derivative(cls, z, a):
        return np.where(z > 0, cls.lam, a + cls.lam * cls.alpha).astype(z.dtype, copy=False)


ACTIVATIONS = {cls.name: cls for cls in (ReLU, SiLU, Tanh, SELU)}


# ----------------------------------------------------------------------------------------------
# Linear layer
# ----------------------------------------------------------------------------------------------
class Linear:
    """Affine map ``y = x W + b`` with ``W`` of shape (fan_in, fan_out).

    PyTorch's ``nn.Linear`` stores ``W.T``; :meth:`MLP.torch_state` converts. Parameters are bound
    to views of the owning network's flat buffers by :meth:`bind`.
    """

    def __init__(self, fan_in, fan_out):
        self.fan_in, self.fan_out = fan_in, fan_out
        self.W = self.b = self.dW = self.db = None

    def shapes(self):
        """Shapes of the parameters in the order they are laid out in the flat buffer."""
        return (("W", (self.fan_in, self.fan_out)), ("b", (self.fan_out,)))

    def bind(self, params, grads):
        """Take views ``W, b`` of ``params`` and ``dW, db`` of ``grads`` (dicts name -> view)."""
        self.W, self.b = params["W"], params["b"]
        self.dW, self.db = grads["W"], grads["b"]

    def init(self, rng):
        """PyTorch's default: ``W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
        bound = 1.0 / np.sqrt(self.fan_in)
        self.W[...] = rng.uniform(-bound, bound, size=self.W.shape)
        self.b[...] = rng.uniform(-bound, bound, size=self.b.shape)

    def forward(self, x, out=None):
        """``y = x W + b``; x (n, fan_in) -> y (n, fan_out), written into ``out`` if given."""
        y = np.matmul(x, self.W, out=out)  # (n, fan_out)
        y += self.b
        return y

    def backward(self, x, dy, need_dx=True, out=None):
        """Write ``dW = x^T dy``, ``db = sum_n dy``; return ``dx = dy W^T`` (n, fan_in) or None.

        ``dx`` is written into ``out`` if given. ``x^T`` and ``W^T`` are views: BLAS reads them
        transposed, nothing is copied.
        """
        np.matmul(x.T, dy, out=self.dW)  # (fan_in, fan_out)
        np.sum(dy, axis=0, out=self.db)  # (fan_out,)
        return np.matmul(dy, self.W.T, out=out) if need_dx else None

    def tangent(self, dx):
        """``dy = dx W``: the bias does not move with x. dx (..., n, fan_in) -> (..., n, fan_out)."""
        return dx @ self.W


# ----------------------------------------------------------------------------------------------
# Class-label embedding
# ----------------------------------------------------------------------------------------------
class Embedding:
    """Lookup table ``y = E[labels]`` with ``E`` of shape (num, dim_out): one learned row per label.

    The class-conditional :class:`MLP` uses ``num = n_classes + 1``: row ``n_classes`` is the
    learned *null* label, the unconditional field of classifier-free guidance (Ho and Salimans
    2022, Sec. 3.2).
    """

    def __init__(self, num, dim_out):
        self.num, self.dim_out = num, dim_out
        self.E = self.dE = None

    def shapes(self):
        return (("E", (self.num, self.dim_out)),)

    def bind(self, params, grads):
        """Take the view ``E`` of ``params`` and ``dE`` of ``grads`` (dicts name -> view)."""
        self.E, self.dE = params["E"], grads["E"]

    def init(self, rng):
        """``E ~ N(0, 1)``, PyTorch's ``nn.Embedding`` default."""
        self.E[...] = rng.standard_normal(self.E.shape)

    def forward(self, labels):
        """``y = E[labels]``; labels (n,) int -> y (n, dim_out)."""
        return self.E[labels]

    def backward(self, labels, dy):
        """Write ``dE[k] = sum_{j: labels_j = k} dy_j`` (a scatter-add); labels get no gradient."""
        self.dE[...] = 0
        np.add.at(self.dE, labels, dy)  # dy (n, dim_out)

    @staticmethod
    def tangent():
        """``dy = 0``: integer labels do not move with x."""
        return 0


# ----------------------------------------------------------------------------------------------
# Time embedding
# ----------------------------------------------------------------------------------------------
class SinusoidalEmbedding:
    """Sinusoidal features of time, ``e(t) = [sin(s t w_k), cos(s t w_k)]_{k < E/2}`` (n, E).

    Frequencies are geometric, ``w_k = P^(-k / (E/2))`` for ``k = 0 .. E/2 - 1`` with max period
    ``P = 10000`` (Vaswani et al. 2017, Sec. 3.5), and time is scaled by ``s = time_scale``.

    Why the scale: flow-matching time lives in [0, 1]. With ``s = 1`` every angle ``t w_k`` is at
    most 1 radian, so all E features are almost linear (or constant) in t and the embedding
    barely moves. With ``s = 1000`` (the diffusion convention of 1000 time steps) the angles span
    0.1 to 1000 radians: low frequencies encode t smoothly while high ones resolve fine
    differences in t.
    """

    def __init__(self, dim, time_scale=1000.0, max_period=10000.0):
        if dim % 2:
            raise ValueError(f"embed_dim must be even, got {dim}")
        self.dim = dim
        self.time_scale = time_scale
        half = dim // 2
        self.freqs = max_period ** (-np.arange(half) / half)  # (E/2,)

    def __call__(self, t):
        """t (n, 1) -> e(t) (n, E) in t's dtype."""
        half = self.dim // 2
        angles = (self.time_scale * t) * self.freqs.astype(t.dtype)  # (n, E/2)
        emb = np.empty((t.shape[0], self.dim), dtype=angles.dtype)  # (n, E)
        # sin and cos are written straight into the two halves: no np.concatenate copy (this
        # halves the embedding's time when sampling 10,000 points).
        np.sin(angles, out=emb[:, :half])
        np.cos(angles, out=emb[:, half:])
        return emb


# ----------------------------------------------------------------------------------------------
# The MLP velocity field
# ----------------------------------------------------------------------------------------------
TIME_EMBEDDINGS = ("concat", "sinusoidal")


class Workspace:
    """Work arrays that training reuses from step to step, one per name.

    ``get(name, shape)`` returns the array kept under ``name``, allocating it on first use and
    whenever the shape changes (a new batch size). Training draws a batch of the same shape every
    step; without reuse each step would take fresh multi-megabyte arrays from the allocator, whose
    pages fault on first touch (measured at batch 1536: about 3,500 page faults, a quarter of the
    step time). ``Workspace(dtype, reuse=False)`` hands out a fresh array on every call instead.

    Arrays from a reused workspace are overwritten by the next pass that uses it: the ``v`` and
    :class:`Cache` of :meth:`MLP.forward_train` stay valid until the next ``forward_train`` with
    the same workspace, and the ``dL/dx`` of :meth:`MLP.backward` until the next ``backward``.
    """

    def __init__(self, dtype, reuse=True):
        self.dtype, self.reuse = np.dtype(dtype), reuse
        self._arrays = {}

    def get(self, name, shape):
        """An uninitialized array of ``shape`` and the workspace's dtype."""
        if not self.reuse:
            return np.empty(shape, self.dtype)
        array = self._arrays.get(name)
        if array is None or array.shape != shape:
            array = self._arrays[name] = np.empty(shape, self.dtype)
        return array


@dataclass(frozen=True)
class Cache:
    """What ``backward`` needs from ``forward_train``: returned explicitly, never kept in the net.

    Attributes
    ----------
    inp : (n, d_in) network input: ``x`` or ``[x, t]`` (concat time embedding).
    emb : (n, E) time embedding, or None.
    z : list of (n, h_i) pre-activations of the hidden layers.
    a : list of (n, h_i) outputs of the hidden layers.
    labels : (n,) int class labels (``n_classes`` = null), or None for an unconditional net.
    f : list of (n, h_i) ``act(z_i)``, the residual branches, for a residual net (``a_i`` is
        ``a_{i-1} + act(z_i)`` where there is a shortcut); None for a plain net, whose ``a_i`` is
        ``act(z_i)`` itself.
    """

    inp: np.ndarray
    emb: np.ndarray
    z: list
    a: list
    labels: np.ndarray = None
    f: list = None


class MLP:
    """Velocity field ``v_theta(x, t)``: an MLP on ``R^d x [0, 1] -> R^d``.

    Layout (``L = len(hidden)`` hidden layers, widths ``h_0 .. h_{L-1}``)::

        z_0 = Linear_in(x or [x, t])  (+ Linear_time(e(t)) with the sinusoidal embedding)
                                      (+ Embedding_label(y) for a class-conditional net)
        a_0 = act(z_0)
        a_i = act(z_i),      z_i = Linear_i(a_{i-1})   for i = 1 .. L-1
        v   = Linear_out(a_{L-1})

    Conditioning terms (the time projection, the class-label embedding) are *added* to ``z_0``.
    A residual net (He et al. 2016, eq. 1, with the identity as shortcut) adds a hidden layer's
    input to its output, ``a_i = a_{i-1} + act(z_i)``, wherever the two have the same width
    (``h_i = h_{i-1}``, i >= 1), so that gradients reach the first layers of a deep net through
    the shortcuts.

    Parameters
    ----------
    dim : int
        Dimension d of x (and of v).
    hidden : sequence of int
        Hidden widths ``h_i``. ``(512,) * 5`` with ``time_embedding="sinusoidal"``,
        ``embed_dim=512``, ``time_scale=10000`` and ReLU has the shape of the network in
        dome272/Flow-Matching (``flow-matching.ipynb``): x and the 512-d embedding each
        projected to 512 and added, five ReLU layers of 512, and 512 -> 2 (the notebook's input
        projection and first block compose into the first layer here).
    activation : {"relu", "silu", "tanh", "selu"}
    time_embedding : {"concat", "sinusoidal"}
        ``"concat"`` feeds ``[x, t]`` to the first layer (TorchCFM's style); ``"sinusoidal"``
        projects :class:`SinusoidalEmbedding` features to width ``h_0`` and adds them.
    embed_dim : int
        Size E of the sinusoidal embedding (even); ignored for ``"concat"``.
    time_scale : float
        Scale ``s`` of t inside the sinusoidal embedding (see :class:`SinusoidalEmbedding`).
    residual : bool
        Shortcuts around the hidden layers i >= 1 whose width equals the previous one's. Plain
        nets stop improving beyond about 10 layers; residual ones go deeper (see
        ``train.DATA_DEFAULTS``).
    n_classes : int
        0 (default) for an unconditional field ``v(x, t)``; ``K >= 1`` for a class-conditional
        ``v(x, t, y)`` with labels ``y`` in ``0 .. K``, where ``y = K`` is the learned null label
        (unconditional) used by classifier-free guidance (:mod:`npflow.guidance`).
    dtype : {np.float32, np.float64}
        float32 for speed; the gradient tests use float64.
    rng : np.random.Generator
        Draws the initial weights (PyTorch's ``nn.Linear`` default).
    """

    def __init__(self, dim, hidden=(256, 256, 256), activation="silu", time_embedding="concat",
                 embed_dim=64, time_scale=1000.0, dtype=np.float32, *, rng, n_classes=0,
                 residual=False):
        self.dim = _checks.positive_int(dim, "dim")
        self.hidden = check_hidden(hidden)
        self.activation = ACTIVATIONS[_checks.choice(activation, "activation", ACTIVATIONS)]
        self.time_embedding = _checks.choice(time_embedding, "time_embedding", TIME_EMBEDDINGS)
        self.embed_dim = _checks.positive_int(embed_dim, "embed_dim")
        self.time_scale = _checks.finite_float(time_scale, "time_scale", low=0, low_open=True)
        self.dtype = check_dtype(dtype)
        self.n_classes = _check_n_classes(n_classes)
        self.residual = _checks.boolean(residual, "residual")
        _checks.generator(rng)

        h = self.hidden
        self.shortcuts = tuple(self.residual and i > 0 and h[i] == h[i - 1] for i in range(len(h)))
        sinusoidal = self.time_embedding == "sinusoidal"
        self.embed = SinusoidalEmbedding(self.embed_dim, self.time_scale) if sinusoidal else None
        self.layers = {"in": Linear(self.dim + (0 if sinusoidal else 1), h[0])}
        if sinusoidal:
            self.layers["time"] = Linear(self.embed_dim, h[0])
        if self.n_classes:
            self.layers["label"] = Embedding(self.n_classes + 1, h[0])  # + the null label
        for i in range(1, len(h)):
            self.layers[f"hidden{i}"] = Linear(h[i - 1], h[i])
        self.layers["out"] = Linear(h[-1], self.dim)
        self._allocate()
        for layer in self.layers.values():
            layer.init(rng)

    def _allocate(self):
        """Lay every parameter out in one flat buffer and bind the layers to views of it."""
        self.params, self.grads, self.named_params, self.named_grads = flat_buffers(
            self.layers, self.dtype)

    @property
    def num_params(self):
        return self.params.size

    arch = "mlp"  # its name in npflow.networks.ARCHITECTURES and in checkpoints

    @classmethod
    def count_params(cls, description):
        """Check a description (``config()``'s keys) and return its number of parameters.

        Every option is checked on a one-unit network of the same kind; the sizes (``dim``,
        ``hidden``) only by :func:`param_count`, so nothing of the described size is allocated.
        """
        tiny = {**description, "dim": 1, "hidden": [1] * len(check_hidden(description["hidden"]))}
        cls(**tiny, rng=np.random.default_rng(0))
        _checks.positive_int(description["dim"], "dim")
        return param_count(**description)

    def memory(self, batch_size):
        """Bytes a training step at ``batch_size`` needs at least: seven arrays of P parameters
        (weights, gradients, two Adam moments, the EMA, two scratch buffers) and, per row, four
        arrays per hidden unit (pre-activation, activation, their gradients; five with residual
        shortcuts, which keep the branch ``act(z_i)`` apart). An estimate for a clear error
        before allocating, not an exact count."""
        itemsize = np.dtype(self.dtype).itemsize
        per_row = (5 if self.residual else 4) * sum(self.hidden) * itemsize
        return 7 * self.num_params * itemsize + batch_size * per_row

    def config(self):
        """Constructor arguments as a JSON-serializable dict (``MLP(**config, rng=rng)``)."""
        return {"dim": self.dim, "hidden": list(self.hidden), "activation": self.activation.name,
                "time_embedding": self.time_embedding, "embed_dim": self.embed_dim,
                "time_scale": self.time_scale, "dtype": np.dtype(self.dtype).name,
                "n_classes": self.n_classes, "residual": self.residual}

    # --- forward, backward, tangent ---------------------------------------------------------
    def _inputs(self, x, t):
        """Validate x (n, d) and t (scalar or (n,)); return the first layer's input and e(t)."""
        x = _checks.points(x, "x", dim=self.dim, dtype=self.dtype)
        t = _checks.times(t, x.shape[0], "t", dtype=self.dtype)  # (n, 1)
        if self.embed is None:
            return np.concatenate([x, t], axis=1), None  # (n, d + 1)
        return x, self.embed(t)  # (n, d), (n, E)

    def _first_layer(self, inp, emb, labels, work=None):
        work = self._workspace(work)
        n, h0 = inp.shape[0], self.hidden[0]
        z0 = self.layers["in"].forward(inp, out=work.get("z0", (n, h0)))  # (n, h0)
        if emb is not None:
            z0 += self.layers["time"].forward(emb, out=work.get("z_time", (n, h0)))
        if labels is not None:
            z0 += self.layers["label"].forward(labels)  # (n, h0)
        return z0

    def _workspace(self, work):
        """``work``, or a workspace that allocates fresh arrays when ``work`` is None."""
        return Workspace(self.dtype, reuse=False) if work is None else work

    def _hidden_names(self):
        return [f"hidden{i}" for i in range(1, len(self.hidden))]

    def workspace(self):
        """A fresh :class:`Workspace` for ``forward(..., work=...)``: evaluations that reuse
        their arrays (sampling: one workspace per thread)."""
        return Workspace(self.dtype)

    def forward(self, x, t, y=None, work=None):
        """Inference: ``v_theta(x, t[, y])``. x (n, d), t scalar or (n,) -> v (n, d).

        y : (n,) int labels in ``0 .. n_classes`` (``n_classes`` = null), or None (the null label
        of a conditional net). Caches nothing. ``work``: a :class:`Workspace` for the layer
        outputs (an ODE solver passes the same one at every step; v is then overwritten by the
        next call), or None for fresh arrays.
        """
        work = self._workspace(work)
        inp, emb = self._inputs(x, t)
        n = inp.shape[0]
        labels = network_labels(y, n, self.n_classes)
        z = self._first_layer(inp, emb, labels, work)
        a = self.activation.forward(z, out=z)
        for i, name in enumerate(self._hidden_names(), start=1):
            z = self.layers[name].forward(a, out=work.get(f"z{i}", (n, self.hidden[i])))
            f = self.activation.forward(z, out=z)
            a = np.add(a, f, out=f) if self.shortcuts[i] else f
        return self.layers["out"].forward(a, out=work.get("v", (n, self.dim)))

    __call__ = forward

    def forward_train(self, x, t, y=None, work=None):
        """Forward pass that also returns the :class:`Cache` that :meth:`backward` needs.

        x, t, y as in :meth:`forward`. ``work``: a :class:`Workspace` whose arrays receive the
        activations (a training loop passes the same one every step); None allocates fresh ones.

        Returns
        -------
        v : (n, d) ndarray
        cache : Cache
        """
        work = self._workspace(work)
        inp, emb = self._inputs(x, t)
        n = inp.shape[0]
        labels = network_labels(y, n, self.n_classes)
        zs = [self._first_layer(inp, emb, labels, work)]
        acts = [self.activation.forward(zs[0], out=work.get("a0", zs[0].shape))]
        branches = [acts[0]] if self.residual else None
        for i, name in enumerate(self._hidden_names(), start=1):
            z = self.layers[name].forward(acts[-1], out=work.get(f"z{i}", (n, self.hidden[i])))
            zs.append(z)
            if self.shortcuts[i]:
                branches.append(self.activation.forward(z, out=work.get(f"f{i}", z.shape)))
                acts.append(np.add(acts[-1], branches[-1], out=work.get(f"a{i}", z.shape)))
                continue
            acts.append(self.activation.forward(z, out=work.get(f"a{i}", z.shape)))
            if branches is not None:
                branches.append(acts[-1])  # no shortcut here: the branch is the output
        v = self.layers["out"].forward(acts[-1], out=work.get("v", (n, self.dim)))
        return v, Cache(inp, emb, zs, acts, labels, branches)

    def backward(self, cache, dv, work=None):
        """Backpropagate ``dv = dL/dv`` (n, d); write ``self.grads``; return ``dL/dx`` (n, d).

        Chain rule layer by layer: ``da_{L-1} = dv W_out^T``, ``dz_i = f'(z_i) * da_i``,
        ``da_{i-1} = dz_i W_i^T`` (``+ da_i`` through a residual shortcut);
        ``dW_i = a_{i-1}^T dz_i``, ``db_i = sum_n dz_i``.
        ``work``: a :class:`Workspace` for ``da_i`` (see :meth:`forward_train`), or None.
        """
        work = self._workspace(work)
        dv = np.asarray(dv, dtype=self.dtype)
        n = cache.inp.shape[0]
        if dv.shape != (n, self.dim):
            raise ValueError(f"dv must have shape ({n}, {self.dim}) like v, got shape {dv.shape}")
        last = len(self.hidden) - 1
        da = self.layers["out"].backward(cache.a[last], dv,
                                         out=work.get(f"da{last}", cache.a[last].shape))
        for i in range(last, 0, -1):
            # a shortcut still needs da_i (it flows on unchanged to a_{i-1}): dz_i goes elsewhere
            dz = self._activation_backward(
                cache, i, da, out=work.get("dz", da.shape) if self.shortcuts[i] else da)
            da_prev = self.layers[f"hidden{i}"].backward(
                cache.a[i - 1], dz, out=work.get(f"da{i - 1}", cache.a[i - 1].shape))
            if self.shortcuts[i]:
                da_prev += da
            da = da_prev
        dz0 = self._activation_backward(cache, 0, da, out=da)  # (n, h0)
        if cache.emb is not None:
            self.layers["time"].backward(cache.emb, dz0, need_dx=False)
        if cache.labels is not None:
            self.layers["label"].backward(cache.labels, dz0)
        dinp = self.layers["in"].backward(cache.inp, dz0, out=work.get("dinp", cache.inp.shape))
        return dinp[:, :self.dim]

    def _activation_backward(self, cache, i, da, out):
        """``dz_i = f'(z_i) * da_i`` (n, h_i), written into ``out`` (``da_i`` itself when nothing
        reads it again)."""
        f = cache.a[i] if cache.f is None else cache.f[i]  # act(z_i)
        return np.multiply(da, self.activation.derivative(cache.z[i], f), out=out)

    def jvp(self, x, t, y=None, *, dx):
        """Jacobian-vector products ``(dv/dx) dx_k`` for k tangents at once (forward mode).

        Parameters
        ----------
        x : (n, d) points; t : scalar or (n,) times; y : (n,) labels or None: the same arguments,
            in the same order, as :meth:`forward` and :meth:`forward_train`.
        dx : (k, n, d), keyword-only: tangent directions in x (t and y are held fixed).

        Returns
        -------
        v : (n, d) the velocity ``v_theta(x, t)``.
        dv : (k, n, d) ``J(x_j) dx_{k, j}`` for every tangent k and point j.
        """
        inp, emb = self._inputs(x, t)
        dx = np.asarray(dx, dtype=self.dtype)
        if dx.ndim != 3 or dx.shape[1:] != (inp.shape[0], self.dim):
            raise ValueError(f"dx must have shape (k, {inp.shape[0]}, {self.dim}), got {dx.shape}")
        labels = network_labels(y, inp.shape[0], self.n_classes)
        z = self._first_layer(inp, emb, labels)
        dz = dx @ self.layers["in"].W[:self.dim]  # (k, n, h0): t and e(t) do not move with x
        if labels is not None:
            dz += self.layers["label"].tangent()  # 0: nor does y
        a = self.activation.forward(z)
        dz *= self.activation.derivative(z, a)  # (k, n, h0): da_0 = f'(z_0) dz_0, in place
        da = dz
        for i, name in enumerate(self._hidden_names(), start=1):
            z, dz = self.layers[name].forward(a), self.layers[name].tangent(da)
            f = self.activation.forward(z)
            dz *= self.activation.derivative(z, f)  # (k, n, h_i): f'(z_i) dz_i
            if self.shortcuts[i]:
                f += a  # a_i = a_{i-1} + act(z_i)
                dz += da  # da_i = da_{i-1} + f'(z_i) dz_i
            a, da = f, dz
        return self.layers["out"].forward(a), self.layers["out"].tangent(da)

    def vjp(self, x, t, y=None, *, dv):
        """Vector-Jacobian products ``dv_k^T (dv/dx)`` for k cotangents (reverse mode).

        One :meth:`forward_train` and k :meth:`backward` passes; :meth:`jvp` does the same work
        in one forward pass, so the likelihood uses it when a field has both. ``self.grads`` is
        left as it was (the backward passes' parameter gradients are a by-product).

        Parameters
        ----------
        x, t, y : as :meth:`forward`.
        dv : (k, n, d), keyword-only: cotangents (directions in the output).

        Returns
        -------
        v : (n, d) the velocity; dx : (k, n, d) ``J(x_j)^T dv_{k, j}``.
        """
        dv = np.asarray(dv, dtype=self.dtype)
        work = Workspace(self.dtype, reuse=False)  # backward's dL/dx outlives the next pass
        v, cache = self.forward_train(x, t, y, work)
        if dv.ndim != 3 or dv.shape[1:] != v.shape:
            raise ValueError(f"dv must have shape (k, {v.shape[0]}, {self.dim}), got {dv.shape}")
        grads = self.grads.copy()
        dx = np.stack([self.backward(cache, cotangent, work) for cotangent in dv])  # (k, n, d)
        self.grads[...] = grads
        return v, dx

    def torch_state(self):
        """Weights named and shaped as PyTorch ``nn.Linear`` layers (``weight`` is ``W.T``)."""
        state = {}
        for name, layer in self.layers.items():
            if isinstance(layer, Embedding):  # nn.Embedding's weight is E itself, (num, dim)
                state[f"{name}.weight"] = layer.E.copy()
                continue
            state[f"{name}.weight"] = layer.W.T.copy()
            state[f"{name}.bias"] = layer.b.copy()
        return state


def network_labels(y, n, n_classes):
    """Class labels y (n,) in 0 .. n_classes (``n_classes`` the learned null label) as a
    network's input; None -> the null label, or None for an unconditional network."""
    if not n_classes:
        if y is not None:
            raise ValueError("y must be None: this network is unconditional (n_classes=0)")
        return None
    if y is None:
        return np.full(n, n_classes, dtype=np.int64)
    return _checks.classes(y, n_classes, "y", n, null=True)


def flat_buffers(layers, dtype):
    """One flat parameter buffer and one gradient buffer for ``layers`` (name -> layer), every
    layer bound to views of them (``bind``): the optimizer, the EMA and checkpoints see one array.

    Returns ``(params, grads, named_params, named_grads)``: the buffers (P,) and their views
    ``"layer.param"`` -> array of the parameter's shape.
    """
    shapes = [(f"{name}.{p}", shape) for name, layer in layers.items()
              for p, shape in layer.shapes()]
    sizes = [int(np.prod(shape)) for _, shape in shapes]
    params = np.zeros(sum(sizes), dtype=dtype)
    grads = np.zeros_like(params)
    named_params, named_grads, offset = {}, {}, 0
    for (name, shape), size in zip(shapes, sizes):
        named_params[name] = params[offset:offset + size].reshape(shape)
        named_grads[name] = grads[offset:offset + size].reshape(shape)
        offset += size
    for name, layer in layers.items():
        keys = [p for p, _ in layer.shapes()]
        layer.bind({p: named_params[f"{name}.{p}"] for p in keys},
                   {p: named_grads[f"{name}.{p}"] for p in keys})
    return params, grads, named_params, named_grads


def check_hidden(hidden):
    """Hidden widths as a non-empty tuple of positive ints (the MLP's and the classifier's)."""
    if isinstance(hidden, str):
        raise ValueError(f"hidden must be a sequence of integer widths such as (128, 128), got "
                         f"{hidden!r}")
    try:
        widths = tuple(hidden)
    except TypeError:
        raise TypeError(f"hidden must be a sequence of positive integers, got {hidden!r}") from None
    if not widths:
        raise ValueError("hidden must name at least one hidden width, got an empty sequence")
    if not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) for w in widths):
        raise TypeError(f"hidden must hold integer widths, got {hidden!r}")
    if min(widths) < 1:
        raise _checks.refuse("hidden", f"must hold widths >= 1, got {hidden!r}")
    return tuple(int(w) for w in widths)


def _check_n_classes(n_classes):
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise TypeError(f"n_classes must be an integer >= 0, got {n_classes!r}")
    if n_classes < 0:
        raise ValueError(f"n_classes must be an integer >= 0, got {n_classes}")
    return int(n_classes)


def check_dtype(dtype):
    """The NumPy scalar type of ``dtype``: float32 or float64 only."""
    if dtype is None:
        raise TypeError("dtype must be float32 or float64, got None")
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt.type


def param_count(dim, hidden, time_embedding="concat", embed_dim=64, n_classes=0, **_):
    """Number of parameters of ``MLP(dim, hidden, ...)``, computed without building it.

    The layout of :class:`MLP`: ``in`` (d or d + 1 -> h_0), ``time`` (E -> h_0, sinusoidal only),
    ``label`` ((K + 1) x h_0, conditional only), ``hidden_i`` (h_{i-1} -> h_i) and ``out``
    (h_{L-1} -> d), each with a bias except the label table. Checkpoint validation uses it to
    check array sizes before allocating anything; other constructor arguments are ignored.
    """
    widths = [int(w) for w in hidden]
    sinusoidal = time_embedding == "sinusoidal"
    count = (dim + (0 if sinusoidal else 1) + 1) * widths[0]
    if sinusoidal:
        count += (embed_dim + 1) * widths[0]
    if n_classes:
        count += (n_classes + 1) * widths[0]
    count += sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))
    return count + (widths[-1] + 1) * dim
