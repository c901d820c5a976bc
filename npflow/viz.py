"""Pictures of a 2-D flow: samples, paths, the velocity field, the density, the loss, an animation.

Each picture shows one object of the method (Lipman et al. 2023, "Flow Matching for Generative
Modeling"):

==================  ===================================================================
function            what it draws
==================  ===================================================================
:func:`scatter`     points, e.g. ``x0 ~ p0`` or ``x1 ~ p1``
:func:`panels`      noise ``x0 ~ p0`` | generated ``phi_1(x0)`` | target ``x1 ~ p1``
:func:`trajectories`  the paths ``t -> phi_t(x0)``, solutions of ``dx/dt = v(x, t)`` (eq. 1)
:func:`vector_field`  the learned velocity ``v_theta(x, t)`` at several times
:func:`density`     the model density ``p_1(x) = p_0(x0) exp(-int_0^1 div v dt)`` (eq. 3)
:func:`loss_curve`  the CFM loss ``E ||v_theta(x_t, t) - u_t(x_t | x1)||^2`` (eq. 9) per step
:func:`animate`     an animated GIF of the points flowing from t = 0 to t = 1
:func:`image_grid`  images (e.g. 8x8 digits) in a grid, optionally one labelled row per class
:func:`pairplot`    pairwise scatter plots of a few coordinates of d > 2 data, data vs samples
:func:`animate_images`  an animated GIF of images forming from noise along the flow
:func:`table_columns`  each column of a table, real beside synthetic: histograms, level shares
:func:`table_correlations`  the numeric columns' correlation matrices and their difference
:func:`table_pairplot`  pairwise scatter plots of a table's numeric columns, coloured by a
                    categorical one, real beside synthetic
:func:`table_imputations`  K imputations of hidden numeric cells against their true values
==================  ===================================================================

Every function takes explicit arrays (or a model) and returns the matplotlib ``Figure``; nothing
here draws random numbers. matplotlib is optional (``pip install 'npflow[viz]'``) and is
imported inside the functions only, so ``import npflow.viz`` never loads it.
"""
import os
import sys

import numpy as np

from . import _checks, datasets, likelihood, report, solvers
from .tables import TableEncoder

DEFAULT_LIMITS = (-5.0, 5.0)  # covers every built-in dataset except the outer 8gaussians tails
NOISE_COLOR = "#7f7f7f"
GENERATED_COLOR = "#2166ac"
TARGET_COLOR = "#d6604d"
TIME_CMAP = "viridis"  # time t in [0, 1] along paths
SPEED_CMAP = ("magma", 0.0, 0.82)  # |v(x, t)|: magma without its near-white top, seen on white
DENSITY_CMAP = "magma"
SAVE_DPI = 110  # keeps a three-panel PNG near 100-200 KB
GIF_DPI = 72
IMAGE_CMAP = "gray_r"  # digits: ink dark on white paper, as they were written
DIVERGING_CMAP = "RdBu_r"  # a signed quantity (a correlation, a difference): blue < 0 < red
LEVEL_COLORS = "tab10"  # the levels of a categorical column, in order


def pyplot(for_files=False):
    """Import and return ``matplotlib.pyplot``.

    On a machine without a screen (Linux with neither ``DISPLAY`` nor ``WAYLAND_DISPLAY``) the
    file-only Agg backend is selected, unless the user chose a backend through ``MPLBACKEND``.
    ``for_files=True`` (the command line, which only writes files) always selects Agg. Once pyplot
    has been imported the backend is left alone.

    Raises
    ------
    ImportError
        When matplotlib is not installed, saying how to install it.
    """
    try:
        import matplotlib
    except ImportError:
        raise ImportError("npflow.viz needs matplotlib: pip install 'npflow[viz]'") from None
    if "matplotlib.pyplot" not in sys.modules:
        headless = sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        if for_files or (headless and not os.environ.get("MPLBACKEND")):
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path, dpi=SAVE_DPI):
    """Write ``fig`` to ``path``; the format follows the extension (.png, .pdf, .svg).

    The modest default dpi keeps committed PNGs to a few hundred KB.
    """
    dpi = _checks.positive_int(dpi, "dpi")
    fig.savefig(os.fspath(path), dpi=dpi, bbox_inches="tight", facecolor="white")
    return path


def limits_of(*arrays, margin=0.08):
    """Square plot limits ``(-m, m)`` holding 99.9 % of every coordinate of every array.

    Parameters
    ----------
    *arrays : (n, 2) array_like
    margin : float
        The half-width m grows by this fraction, then is rounded up to a multiple of 0.5.
    """
    if not arrays:
        raise ValueError("limits_of needs at least one array of points")
    margin = _checks.finite_float(margin, "margin", low=0)
    # "higher": the 99.9 % quantile is one of the values, so at least 99.9 % lie within it.
    m = max(float(np.quantile(np.abs(_checks.points(x, "x", dim=2)), 0.999, method="higher"))
            for x in arrays)
    m = max(float(np.ceil(2 * m * (1 + margin)) / 2), 0.5)
    return (-m, m)


def scatter(x, ax=None, limits=None, title=None, color=GENERATED_COLOR, size=2.0, alpha=0.5):
    """Scatter plot of 2-D points with equal aspect and fixed limits.

    Parameters
    ----------
    x : (n, 2) array_like
        The points.
    ax : matplotlib Axes, optional
        Draw into this axes; a new 4 x 4 inch figure otherwise.
    limits : (float, float), optional
        ``(low, high)`` for both axes; :func:`limits_of` ``(x)`` when None.
    title, color, size, alpha :
        Axes title, marker colour, marker area (points^2) and opacity.

    Returns
    -------
    matplotlib.figure.Figure
    """
    x = _checks.points(x, "x", dim=2)
    limits = limits_of(x) if limits is None else _limits(limits)
    if ax is None:
        _, ax = pyplot().subplots(figsize=(4, 4))
    ax.scatter(x[:, 0], x[:, 1], s=size, c=color, alpha=alpha, linewidths=0, rasterized=True)
    _square(ax, limits)
    if title is not None:
        ax.set_title(title)
    return ax.figure


def panels(noise, generated, target, limits=None, titles=None):
    """Three panels side by side: noise x0 ~ p0, generated phi_1(x0), target x1 ~ p1.

    Parameters
    ----------
    noise, generated, target : (n, 2) array_like
        The sets may have different sizes.
    limits : (float, float), optional
        Shared by the three panels; :func:`limits_of` ``(noise, target)`` when None.
    titles : sequence of 3 str, optional

    Returns
    -------
    matplotlib.figure.Figure
        With 3 axes.
    """
    sets = [_checks.points(x, name, dim=2) for x, name in
            ((noise, "noise"), (generated, "generated"), (target, "target"))]
    limits = limits_of(sets[0], sets[2]) if limits is None else _limits(limits)
    titles = (r"noise  $x_0 \sim p_0$", r"generated  $\phi_1(x_0)$",
              r"target  $x_1 \sim p_1$") if titles is None else tuple(titles)
    if len(titles) != 3:
        raise ValueError(f"titles must hold 3 strings, got {len(titles)}")
    fig, axes = pyplot().subplots(1, 3, figsize=(11, 3.9))
    for ax, x, title, color in zip(axes, sets, titles,
                                   (NOISE_COLOR, GENERATED_COLOR, TARGET_COLOR)):
        scatter(x, ax=ax, limits=limits, title=title, color=color)
    fig.tight_layout()
    return fig


def trajectories(traj, n_paths=300, times=None, limits=None, ax=None):
    """Paths ``t -> x(t)`` from x0 to x1, each segment coloured by its time.

    Parameters
    ----------
    traj : (m, n, 2) array_like
        States at ``m`` times, e.g. ``Solution.trajectory`` of :func:`npflow.solvers.solve`.
    n_paths : int
        Draw the first ``min(n_paths, n)`` paths.
    times : (m,) array_like, optional
        Time of each row; ``linspace(0, 1, m)`` when None.
    limits : (float, float), optional
        :func:`limits_of` of the start and end points when None.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        One axes for the paths plus one for the colour bar of t.
    """
    import matplotlib.cm
    import matplotlib.colors
    from matplotlib.collections import LineCollection

    traj = _trajectory(traj)
    times = _times(times, traj.shape[0])
    n_paths = _checks.positive_int(n_paths, "n_paths")
    paths = traj[:, :n_paths]  # (m, k, 2)
    limits = limits_of(paths[0], paths[-1]) if limits is None else _limits(limits)
    if ax is None:
        _, ax = pyplot().subplots(figsize=(5, 4.3))
    m, k = paths.shape[:2]
    segments = np.stack([paths[:-1], paths[1:]], axis=2)  # (m - 1, k, 2 ends, 2)
    segments = segments.transpose(1, 0, 2, 3).reshape(-1, 2, 2)  # (k (m - 1), 2, 2)
    t_mid = np.tile((times[:-1] + times[1:]) / 2, k)  # (k (m - 1),), path-major like segments
    norm = matplotlib.colors.Normalize(times.min(), times.max())
    ax.add_collection(LineCollection(segments, array=t_mid, cmap=TIME_CMAP, norm=norm,
                                     linewidths=0.6, alpha=0.7, rasterized=True))
    ax.scatter(paths[0, :, 0], paths[0, :, 1], s=5, c="black", alpha=0.6, linewidths=0,
               label=r"$x_0$", zorder=3)
    ax.scatter(paths[-1, :, 0], paths[-1, :, 1], s=7, c=TARGET_COLOR, linewidths=0,
               label=r"$x_1$", zorder=3)
    _square(ax, limits)
    ax.legend(loc="upper right", fontsize=8, markerscale=2, framealpha=0.8)
    ax.set_title(f"{k} paths, {m - 1} steps")
    ax.figure.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=TIME_CMAP), ax=ax, label="t",
                       fraction=0.046, pad=0.04)
    return ax.figure


def vector_field(model, times=(0.0, 0.25, 0.5, 0.75, 1.0), limits=DEFAULT_LIMITS, grid=25):
    """Streamlines of the learned velocity ``v_theta(x, t)``, one panel per time, coloured by speed.

    Parameters
    ----------
    model : callable ``model(x, t) -> v``
        x (n, 2), t a float, v (n, 2); an :class:`~npflow.nn.MLP` with ``dim=2``.
    times : sequence of float
        One panel per time.
    limits : (float, float)
        Square window ``[low, high]^2``.
    grid : int
        The field is evaluated on ``grid x grid`` points and interpolated by streamplot.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(times)`` panels plus one colour bar of ``|v|``, shared by all panels.
    """
    import matplotlib.cm
    import matplotlib.colors

    times = [_checks.finite_float(t, "times") for t in np.atleast_1d(times)]
    limits = _limits(limits)
    grid = _checks.positive_int(grid, "grid")
    coords, points = _grid(limits, grid)
    fields = [np.asarray(model(points, t), dtype=np.float64).reshape(grid, grid, 2)
              for t in times]  # each (grid, grid, 2), row = y
    speeds = [np.hypot(v[..., 0], v[..., 1]) for v in fields]
    norm = matplotlib.colors.Normalize(0.0, max(float(s.max()) for s in speeds))
    name, low, high = SPEED_CMAP
    cmap = matplotlib.colors.ListedColormap(matplotlib.colormaps[name](np.linspace(low, high, 256)))
    fig, axes = pyplot().subplots(1, len(times), figsize=(2.7 * len(times) + 0.8, 3.0),
                                  squeeze=False)
    for ax, t, v, speed in zip(axes[0], times, fields, speeds):
        ax.streamplot(coords, coords, v[..., 0], v[..., 1], color=speed, cmap=cmap,
                      norm=norm, density=0.8, linewidth=0.8, arrowsize=0.7)
        _square(ax, limits)
        ax.set_title(f"t = {t:g}")
    mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=list(axes[0]), label=r"$|v_\theta(x, t)|$", fraction=0.02,
                 pad=0.02)
    return fig


def density(model, limits=DEFAULT_LIMITS, grid=64, true_log_density=None, log_p0=None,
            method="rk4", steps=16, chunk_size=1024):
    """Heat map of the model density ``p_1(x)``, beside the true density when given.

    ``log p_1(x) = log p_0(x0) - int_0^1 div v(x_t, t) dt`` (Lipman et al. 2023, eq. 3;
    Chen et al. 2018, Thm. 1), computed by :func:`npflow.likelihood.log_likelihood` with the
    exact divergence at the centre of each grid cell.

    Parameters
    ----------
    model : an :class:`~npflow.nn.MLP` with ``dim=2`` (anything with ``jvp``)
    limits : (float, float)
        Square window ``[low, high]^2``.
    grid : int
        ``grid x grid`` cells; 64 x 64 = 4096 likelihoods (about 10 s for the default network
        with 16 rk4 steps, which keep the density within 1e-4 of 100 steps on trained models).
    true_log_density : callable (n, 2) -> (n,), optional
        E.g. ``lambda x: datasets.log_density("checkerboard", x)``; drawn in a second panel with
        the same colour scale.
    log_p0 : callable (n, 2) -> (n,), optional
        Log-density of the source; the standard normal when None.
    method, steps : the solver of the backward integration (see :func:`npflow.solvers.solve`).
    chunk_size : int
        Points integrated at once.

    Returns
    -------
    matplotlib.figure.Figure
        One panel (two with ``true_log_density``) plus a colour bar.
    """
    import matplotlib.colors

    limits = _limits(limits)
    grid = _checks.positive_int(grid, "grid")
    coords, points = _grid(limits, grid)
    ll = likelihood.log_likelihood(model, points.astype(model.dtype), method=method, steps=steps,
                                   log_p0=log_p0, chunk_size=chunk_size)
    images = [("model", np.exp(ll.log_prob.astype(np.float64)).reshape(grid, grid))]
    if true_log_density is not None:  # closed form: cheap, so 4x finer for crisp edges
        _, fine = _grid(limits, 4 * grid)
        true = np.exp(np.asarray(true_log_density(fine), dtype=np.float64))
        images.append(("true", true.reshape(4 * grid, 4 * grid)))
    # The 99.5th percentile keeps a few sharp model peaks from washing out the picture.
    vmax = max([float(np.quantile(images[0][1], 0.995))]
               + [float(img.max()) for _, img in images[1:]])
    norm = matplotlib.colors.Normalize(0.0, vmax)
    fig, axes = pyplot().subplots(1, len(images), figsize=(3.9 * len(images) + 0.6, 3.7),
                                  squeeze=False)
    step = "" if steps is None else f", {steps} steps"
    for ax, (name, img) in zip(axes[0], images):
        shown = ax.imshow(img, origin="lower", extent=(*limits, *limits), cmap=DENSITY_CMAP,
                          norm=norm, interpolation="bilinear" if name == "model" else "nearest")
        ax.set_title(f"model $p_1(x)$ ({method}{step})" if name == "model" else "true $p_1(x)$")
        ax.set_aspect("equal")
    fig.colorbar(shown, ax=list(axes[0]), label="density", fraction=0.035, pad=0.03)
    return fig


def loss_curve(losses, window=None, ax=None):
    """Training loss per step on a log scale, with its moving average.

    Parameters
    ----------
    losses : (steps,) array_like
        The loss of each step, e.g. ``Checkpoint.losses``.
    window : int, optional
        Moving-average width; ``max(1, steps // 50)`` when None.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 1 or losses.size == 0:
        raise ValueError(f"losses must have shape (steps,) with steps >= 1, got {losses.shape}")
    if not np.all(np.isfinite(losses)) or np.any(losses <= 0):
        raise ValueError("losses must be finite and > 0 (the y axis is logarithmic)")
    window = max(1, losses.size // 50) if window is None else _checks.positive_int(window, "window")
    window = min(window, losses.size)
    steps = np.arange(1, losses.size + 1)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")  # (steps - window + 1,)
    if ax is None:
        _, ax = pyplot().subplots(figsize=(6, 3.6))
    ax.plot(steps, losses, color="#9ecae1", linewidth=0.6, label="per step", rasterized=True)
    ax.plot(steps[window - 1:], smooth, color=GENERATED_COLOR, linewidth=1.6,
            label=f"moving average ({window} steps)")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))  # 3, not 3 x 10^0
    few_decades = np.log10(losses.max() / losses.min()) < 1.5
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%g") if few_decades else NullFormatter())
    ax.set_xlim(1, max(losses.size, 2))
    ax.set_xlabel("step")
    ax.set_ylabel("CFM loss")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"training loss (last average {smooth[-1]:.4g})")
    return ax.figure


def animate(traj, path, times=None, fps=20, limits=None, hold_seconds=1.0, size=3.5,
            dpi=GIF_DPI):
    """Write an animated GIF of points flowing along ``traj``, one frame per row.

    Points are coloured by the angle of their start point x0 (a colour wheel), so one can follow
    where each part of the noise goes. The last frame is held for ``hold_seconds``.

    Parameters
    ----------
    traj : (m, n, 2) array_like
        The states to show, one frame per row (pick the rows before calling).
    path : str or os.PathLike
        Output file; must end with ``.gif``.
    times : (m,) array_like, optional
        Time of each row, shown in the title; ``linspace(0, 1, m)`` when None.
    fps : int
        Frames per second.
    limits : (float, float), optional
        :func:`limits_of` of the first and last rows when None.
    hold_seconds : float
        Pause on the final frame.
    size, dpi : figure side in inches and its resolution (small keeps the file small).

    Returns
    -------
    matplotlib.figure.Figure
        The figure, showing the last frame.
    """
    from matplotlib.colors import hsv_to_rgb

    traj = _trajectory(traj)
    times = _times(times, traj.shape[0])
    fps, hold_seconds = _gif_options(path, fps, hold_seconds)
    limits = limits_of(traj[0], traj[-1]) if limits is None else _limits(limits)
    fig, ax = pyplot().subplots(figsize=(size, size))
    hue = (np.arctan2(traj[0, :, 1], traj[0, :, 0]) + np.pi) / (2 * np.pi)  # (n,) in [0, 1]
    hsv = np.stack([hue, np.full_like(hue, 0.75), np.full_like(hue, 0.8)], axis=1)  # (n, 3)
    points = ax.scatter(traj[0, :, 0], traj[0, :, 1], s=4, c=hsv_to_rgb(hsv), linewidths=0)
    _square(ax, limits)
    ax.set_xticks([])
    ax.set_yticks([])
    title = ax.set_title(f"t = {times[0]:.2f}")
    fig.tight_layout()

    def draw(i):
        points.set_offsets(traj[i])
        title.set_text(f"t = {times[i]:.2f}")
        return points, title

    _save_gif(fig, draw, traj.shape[0], path, fps, hold_seconds, dpi)
    return fig


def image_grid(images, shape=(8, 8), ncols=10, row_labels=None, vmin=None, vmax=None,
               cell=0.6, title=None):
    """Images side by side in a grid, row by row, optionally with a label in front of each row.

    Parameters
    ----------
    images : (n, h * w) array_like
        One flattened image per row (e.g. ``load_digits()[0]`` or flow samples in data units).
    shape : (int, int)
        ``(h, w)`` of one image.
    ncols : int
        Images per grid row; ``ceil(n / ncols)`` rows.
    row_labels : sequence of str, optional
        One label per grid row, written at its left (e.g. the class of a row of samples).
    vmin, vmax : float, optional
        The grey scale, shared by every image; the images' min and max when None.
    cell : float
        Side of one image in inches.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One axes per grid cell, in reading order (empty cells are hidden).
    """
    h, w = _image_shape(shape)
    images = _images(images, h * w)
    ncols = _checks.positive_int(ncols, "ncols")
    n = images.shape[0]
    nrows = -(-n // ncols)
    if row_labels is not None and len(row_labels) != nrows:
        raise ValueError(f"row_labels must hold one label per grid row ({nrows}), "
                         f"got {len(row_labels)}")
    vmin = float(images.min()) if vmin is None else _checks.finite_float(vmin, "vmin")
    vmax = float(images.max()) if vmax is None else _checks.finite_float(vmax, "vmax")
    fig, axes = pyplot().subplots(nrows, ncols, figsize=(cell * ncols + 0.4, cell * nrows + 0.3),
                                  squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.set_visible(False)
            continue
        ax.imshow(images[i].reshape(h, w), cmap=IMAGE_CMAP, vmin=vmin, vmax=vmax,
                  interpolation="nearest")
    for label, ax in zip(row_labels or (), axes[:, 0]):
        ax.set_ylabel(str(label), rotation=0, ha="right", va="center", fontsize=9)
    if title is not None:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def pairplot(data, samples, dims=None, max_dims=4, size=2.0, alpha=0.4):
    """Pairwise scatter plots of a few coordinates, data (red) beside samples (blue), for d > 2.

    Panel (i, j) shows coordinate ``dims[j]`` against ``dims[i]``; the diagonal shows the two
    histograms of coordinate ``dims[i]``.

    Parameters
    ----------
    data, samples : (n, d) and (m, d) array_like
    dims : sequence of int, optional
        Coordinates to show; the ``max_dims`` coordinates of largest data variance when None.
    max_dims : int
        At most this many coordinates when ``dims`` is None.
    size, alpha : marker area and opacity.

    Returns
    -------
    matplotlib.figure.Figure
        A k x k grid of axes, k = ``len(dims)``.
    """
    data = _checks.points(data, "data", dtype=np.float64)
    samples = _checks.points(samples, "samples", dim=data.shape[1], dtype=np.float64)
    d = data.shape[1]
    if dims is None:
        k = min(_checks.positive_int(max_dims, "max_dims"), d)
        dims = np.sort(np.argsort(-data.var(axis=0), kind="stable")[:k])
    dims = [int(i) for i in dims]
    if not dims or any(i < 0 or i >= d for i in dims):
        raise ValueError(f"dims must hold at least one coordinate in 0 .. {d - 1}, got {dims}")
    k = len(dims)
    fig, axes = pyplot().subplots(k, k, figsize=(1.9 * k + 0.4, 1.9 * k + 0.4), squeeze=False)
    for r, i in enumerate(dims):
        for c, j in enumerate(dims):
            ax = axes[r, c]
            if r == c:
                bins = np.histogram_bin_edges(np.concatenate([data[:, i], samples[:, i]]), 30)
                ax.hist(data[:, i], bins=bins, density=True, color=TARGET_COLOR, alpha=0.5)
                ax.hist(samples[:, i], bins=bins, density=True, color=GENERATED_COLOR, alpha=0.5)
            else:
                ax.scatter(data[:, j], data[:, i], s=size, c=TARGET_COLOR, alpha=alpha,
                           linewidths=0, rasterized=True, label="data")
                ax.scatter(samples[:, j], samples[:, i], s=size, c=GENERATED_COLOR, alpha=alpha,
                           linewidths=0, rasterized=True, label="samples")
            ax.tick_params(labelsize=6)
            if r == k - 1:
                ax.set_xlabel(f"x[{j}]", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"x[{i}]", fontsize=8)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color=color, label=label)
               for color, label in ((TARGET_COLOR, "data"), (GENERATED_COLOR, "samples"))]
    fig.legend(handles=handles, loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def animate_images(frames, path, shape=(8, 8), ncols=10, fps=12, times=None, hold_seconds=1.5,
                   vmin=None, vmax=None, cell=0.45, dpi=GIF_DPI):
    """Write an animated GIF of a grid of images changing along ``frames`` (e.g. noise -> digits).

    Parameters
    ----------
    frames : (m, n, h * w) array_like
        ``m`` frames of ``n`` flattened images each, e.g. rows of a flow trajectory mapped to data
        units.
    path : str or os.PathLike
        Output file; must end with ``.gif``.
    shape : (int, int) ; ncols : int
        One image's ``(h, w)`` and images per grid row.
    fps : int ; hold_seconds : float
        Frames per second, and the pause on the last frame.
    times : (m,) array_like, optional
        Time of each frame, in the title; ``linspace(0, 1, m)`` when None.
    vmin, vmax : float, optional
        The grey scale, shared by all frames; the last frame's min and max when None (noise
        frames then saturate instead of dimming the digits).
    cell, dpi : side of one image in inches, and the resolution.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, showing the last frame.
    """
    h, w = _image_shape(shape)
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.shape[0] < 2 or frames.shape[2] != h * w:
        raise ValueError(f"frames must have shape (m, n, {h * w}) with m >= 2 frames, got shape "
                         f"{frames.shape}")
    frames = np.stack([_images(f, h * w) for f in frames])  # (m, n, h w) float64
    times = _times(times, frames.shape[0])
    fps, hold_seconds = _gif_options(path, fps, hold_seconds)
    vmin = float(frames[-1].min()) if vmin is None else _checks.finite_float(vmin, "vmin")
    vmax = float(frames[-1].max()) if vmax is None else _checks.finite_float(vmax, "vmax")
    fig = image_grid(frames[0], shape, ncols, vmin=vmin, vmax=vmax, cell=cell)
    title = fig.suptitle(f"t = {times[0]:.2f}", fontsize=10)
    shown = [ax.images[0] for ax in fig.axes if ax.get_visible()]

    def draw(i):
        for im, image in zip(shown, frames[i]):
            im.set_data(image.reshape(h, w))
        title.set_text(f"t = {times[i]:.2f}")
        return shown

    _save_gif(fig, draw, frames.shape[0], path, fps, hold_seconds, dpi)
    return fig


# --- pictures of a table: real rows beside synthetic ones ----------------------------------------
def table_columns(real, synthetic, encoder, bins=20, ncols=4, labels=("real", "synthetic")):
    """One panel per column of a table, real beside synthetic: overlaid histograms (density) of
    a numeric or integer column, side-by-side bars of the level shares of a categorical one.

    The pictures behind SDMetrics' Column Shapes (:func:`npflow.report.quality_report`). Both
    histograms of a column share their bins (``bins`` equal ones over both tables' observed
    range; one per value for an integer column with at most ``bins`` values); a categorical
    column's shares are over all its cells, a missing cell one more level, ``NA``. Each title
    gives the column's share of missing cells, real / synthetic.

    Parameters
    ----------
    real, synthetic : Table or (n, d) array_like
        Rows with the columns ``encoder`` was fitted on.
    encoder : TableEncoder
        Fitted; it says each column's kind (ignored columns are not drawn).
    bins, ncols : int
        Histogram bins, and panels per row.
    labels : (str, str)
        The legend's names of the two tables.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per drawn column, in the table's order.
    """
    columns, real_values, syn_values = _table_values(real, synthetic, encoder)
    bins, ncols = _checks.positive_int(bins, "bins"), _checks.positive_int(ncols, "ncols")
    labels = _two_labels(labels)
    nrows = -(-len(columns) // ncols)
    fig, axes = pyplot().subplots(nrows, min(ncols, len(columns)), squeeze=False,
                                  figsize=(2.9 * min(ncols, len(columns)), 2.4 * nrows))
    for ax, column, a, b in zip(axes.flat, columns, real_values, syn_values):
        if column.kind == "categorical":
            _level_bars(ax, column, a, b, labels)
        else:
            edges = _column_bins(column, a, b, bins)
            for x, color, label in ((a, TARGET_COLOR, labels[0]), (b, GENERATED_COLOR, labels[1])):
                ax.hist(x[~np.isnan(x)], bins=edges, density=True, color=color, alpha=0.5,
                        label=label)
        ax.set_title(f"{column.name}\nNA {100 * _missing_share(a):.1f}% / "
                     f"{100 * _missing_share(b):.1f}%", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.flat[len(columns):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def table_correlations(real, synthetic, encoder, labels=("real", "synthetic")):
    """The numeric columns' correlation matrices, real and synthetic, and their difference
    ``r_real - r_syn`` (what SDMetrics' Correlation Similarity ``1 - |r_real - r_syn| / 2``
    scores), each cell written on it, on a diverging colour map centred on 0.

    ``r`` is Pearson's over the rows where both columns are present
    (:func:`npflow.report.correlation_matrix`). The two matrices share the scale [-1, 1]; the
    difference has its own, symmetric about 0 and as wide as its largest entry, so that small
    differences show.

    Parameters
    ----------
    real, synthetic : Table or (n, d) array_like
    encoder : TableEncoder
        Fitted; its numeric and integer columns are drawn (at least two).
    labels : (str, str)

    Returns
    -------
    matplotlib.figure.Figure
        Three image axes (real, synthetic, difference) and two colour bars.
    """
    import matplotlib.colors

    columns, real_values, syn_values = _table_values(real, synthetic, encoder)
    labels = _two_labels(labels)
    keep = [j for j, c in enumerate(columns) if c.kind in ("numeric", "integer")]
    if len(keep) < 2:
        raise ValueError(f"table_correlations needs at least two numeric or integer columns, "
                         f"the encoder has {len(keep)}")
    names = [columns[j].name for j in keep]
    r = [report.correlation_matrix(np.stack([v[j] for j in keep], axis=1))
         for v in (real_values, syn_values)]  # two (p, p)
    diff = r[0] - r[1]  # (p, p)
    width = max(float(np.nanmax(np.abs(diff))), 1e-3)
    p = len(keep)
    fig, axes = pyplot().subplots(1, 3, figsize=(3 * 0.6 * p + 2.6, 0.6 * p + 1.3),
                                  layout="constrained")
    panels = ((r[0], f"{labels[0]}: r", 1.0, None), (r[1], f"{labels[1]}: r", 1.0, "r"),
              (diff, f"{labels[0]} - {labels[1]}", width, "difference of r"))
    for ax, (matrix, title, scale, bar) in zip(axes, panels):
        shown = ax.imshow(matrix, cmap=DIVERGING_CMAP,
                          norm=matplotlib.colors.Normalize(-scale, scale))
        for (a, b), value in np.ndenumerate(matrix):
            ink = "white" if abs(value) > 0.6 * scale else "black"
            ax.text(b, a, "" if np.isnan(value) else f"{value + 0.0:.2f}", ha="center",
                    va="center", fontsize=6, color=ink)
        ax.set_xticks(range(p), names, rotation=45, ha="right", fontsize=6)
        ax.set_yticks(range(p), names if ax is axes[0] else [""] * p, fontsize=6)
        ax.set_title(title, fontsize=9)
        if bar is not None:  # the two r panels share the first bar
            fig.colorbar(shown, ax=ax, shrink=0.8, label=bar)
    return fig


def table_pairplot(real, synthetic, encoder, hue, columns=None, labels=("real", "synthetic"),
                   size=5.0, alpha=0.6):
    """Pairwise scatter plots of a table's numeric columns, each point coloured by its row's
    level of the categorical column ``hue``: the real rows' grid beside the synthetic rows'.

    Panel (i, j) of a grid shows column ``columns[j]`` against ``columns[i]`` over the rows where
    both (and ``hue``) are present; the diagonal holds each level's histogram of column i. A
    column has the same limits in both grids.

    Parameters
    ----------
    real, synthetic : Table or (n, d) array_like
    encoder : TableEncoder
        Fitted.
    hue : str
        A categorical column.
    columns : sequence of str, optional
        Numeric or integer columns to draw; every one of them when None.
    labels : (str, str)
        The two grids' titles.
    size, alpha : marker area and opacity.

    Returns
    -------
    matplotlib.figure.Figure
        Two subfigures of k x k axes each (k = ``len(columns)``), real first.
    """
    table_columns_, real_values, syn_values = _table_values(real, synthetic, encoder)
    labels = _two_labels(labels)
    kinds = {c.name: (j, c) for j, c in enumerate(table_columns_)}
    if hue not in kinds or kinds[hue][1].kind != "categorical":
        raise ValueError(f"hue must name a categorical column, got {hue!r}")
    numeric = [c.name for c in table_columns_ if c.kind in ("numeric", "integer")]
    columns = numeric if columns is None else list(columns)
    if not columns or any(name not in numeric for name in columns):
        raise ValueError(f"columns must name numeric or integer columns ({', '.join(numeric)}), "
                         f"got {columns}")
    levels = kinds[hue][1].levels
    colors = [pyplot().get_cmap(LEVEL_COLORS)(i % 10) for i in range(len(levels))]
    index = [kinds[name][0] for name in columns]
    grids = [(np.stack([v[j] for j in index], axis=1), np.asarray(v[kinds[hue][0]], dtype=object))
             for v in (real_values, syn_values)]  # ((n, k) numbers, (n,) hue cells) per table
    both = np.concatenate([g[0] for g in grids])
    low, high = np.nanmin(both, axis=0), np.nanmax(both, axis=0)  # (k,) each
    pad = 0.05 * np.where(high > low, high - low, 1.0)
    limits = np.stack([low - pad, high + pad], axis=1)  # (k, 2)
    k = len(columns)
    fig = pyplot().figure(figsize=(2 * (1.6 * k + 0.3), 1.6 * k + 0.6), layout="constrained")
    for sub, (x, cells), title in zip(fig.subfigures(1, 2, wspace=0.04), grids, labels):
        _pair_grid(sub.subplots(k, k, squeeze=False), x, cells, levels, colors, columns, limits,
                   size, alpha)
        sub.suptitle(title, fontsize=10)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color=color, label=level)
               for level, color in zip(levels, colors)]
    fig.legend(handles=handles, title=hue, loc="outside upper center", ncols=len(levels),
               fontsize=7, title_fontsize=8)
    return fig


def table_imputations(truth, draws, hidden, encoder, fills=None, columns=None, ncols=4):
    """Imputed against true values of the hidden numeric cells of a table, one panel per column:
    each of the K draws of a cell is a point above its true value, so the vertical spread of a
    cell's points shows the uncertainty of its imputation; on the diagonal ``y = x`` an
    imputation is exact.

    Parameters
    ----------
    truth : Table
        The rows with every hidden cell as it was.
    draws : sequence of K Table
        Imputations of the rows with the hidden cells removed (e.g. :meth:`npflow.Flow.impute`).
    hidden : (n, d) bool array_like
        Which cells were hidden.
    encoder : TableEncoder
        Fitted; its numeric and integer columns with a hidden cell are drawn.
    fills : sequence of float, optional
        Per column, the value a simpler imputation gives every cell (e.g. the column's mean),
        drawn as a dashed horizontal line (None: not drawn; an entry of a categorical column is
        ignored).
    columns : sequence of str, optional
        The columns to draw (None: every numeric or integer column with a hidden cell).
    ncols : int

    Returns
    -------
    matplotlib.figure.Figure
        One axes per drawn column.
    """
    if not isinstance(encoder, TableEncoder):
        raise TypeError(f"encoder must be a fitted TableEncoder, got {type(encoder).__name__}")
    hidden = np.asarray(hidden, dtype=bool)
    true_values, drawn = encoder.values(truth), [encoder.values(d) for d in draws]
    if not drawn or hidden.shape != (len(truth), len(encoder.columns_)):
        raise ValueError(f"draws must hold at least one table and hidden have shape "
                         f"({len(truth)}, {len(encoder.columns_)}), got {len(drawn)} tables "
                         f"and shape {hidden.shape}")
    shown = [j for j, c in enumerate(encoder.columns_)
             if c.kind in ("numeric", "integer") and hidden[:, j].any()
             and (columns is None or c.name in columns)]
    if not shown:
        raise ValueError("no numeric or integer column has a hidden cell")
    ncols = min(_checks.positive_int(ncols, "ncols"), len(shown))
    nrows = -(-len(shown) // ncols)
    fig, axes = pyplot().subplots(nrows, ncols, squeeze=False, figsize=(2.8 * ncols, 2.7 * nrows),
                                  layout="constrained")
    for ax, j in zip(axes.flat, shown):
        rows = hidden[:, j]
        x = true_values[j][rows]  # (m,)
        y = np.stack([d[j][rows] for d in drawn])  # (K, m)
        low, high = min(x.min(), y.min()), max(x.max(), y.max())
        ax.plot([low, high], [low, high], color=NOISE_COLOR, linewidth=0.8)
        ax.scatter(np.broadcast_to(x, y.shape), y, s=8, color=GENERATED_COLOR, alpha=0.5,
                   linewidths=0, label=f"{len(drawn)} draws per cell")
        if fills is not None:
            ax.axhline(fills[j], color=TARGET_COLOR, linestyle="--", linewidth=1,
                       label="mean imputation")
        ax.set_title(f"{encoder.columns_[j].name} ({int(rows.sum())} cells)", fontsize=8)
        ax.set_xlabel("true value", fontsize=7)
        ax.set_ylabel("imputed", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=6)
    return fig


def _pair_grid(axes, x, cells, levels, colors, columns, limits, size, alpha):
    """Draw one grid of :func:`table_pairplot`: ``x`` (n, k) numbers, ``cells`` (n,) hues."""
    k = len(columns)
    for r in range(k):
        for c in range(k):
            ax = axes[r, c]
            for level, color in zip(levels, colors):
                rows = cells == level  # (n,)
                if r == c:
                    values = x[rows, r]
                    ax.hist(values[~np.isnan(values)], bins=np.linspace(*limits[r], 21),
                            color=color, alpha=0.5)
                else:
                    keep = rows & ~np.isnan(x[:, r]) & ~np.isnan(x[:, c])
                    ax.scatter(x[keep, c], x[keep, r], s=size, color=color, alpha=alpha,
                               linewidths=0, rasterized=True, label=level)
            ax.set_xlim(*limits[c])
            if r != c:
                ax.set_ylim(*limits[r])
            ax.tick_params(labelsize=5)
            ax.set_xlabel(columns[c] if r == k - 1 else "", fontsize=7)
            ax.set_ylabel(columns[r] if c == 0 else "", fontsize=7)


def _table_values(real, synthetic, encoder):
    """(columns, real values, synthetic values) of the columns that are not ignored
    (:meth:`npflow.tables.TableEncoder.values`)."""
    if not isinstance(encoder, TableEncoder):
        raise TypeError(f"encoder must be a fitted TableEncoder, got {type(encoder).__name__}")
    keep = [j for j, c in enumerate(encoder.columns_) if c.kind != "ignore"]
    if not keep:
        raise ValueError("the encoder has no column to draw (every one is ignored)")
    a, b = encoder.values(real), encoder.values(synthetic)
    return ([encoder.columns_[j] for j in keep], [a[j] for j in keep], [b[j] for j in keep])


def _two_labels(labels):
    labels = tuple(labels)
    if len(labels) != 2 or not all(isinstance(s, str) for s in labels):
        raise ValueError(f"labels must be two strings, got {labels!r}")
    return labels


def _column_bins(column, a, b, bins):
    """Shared histogram edges of a numeric column's two samples: one bin per value of an integer
    column with at most ``bins`` values, else ``bins`` equal bins over both observed ranges."""
    both = np.concatenate([a[~np.isnan(a)], b[~np.isnan(b)]])
    if both.size == 0:
        return np.linspace(0.0, 1.0, bins + 1)
    if column.kind == "integer" and both.max() - both.min() < bins:
        return np.arange(both.min() - 0.5, both.max() + 1.0)
    return np.histogram_bin_edges(both, bins=bins)


def _missing_share(values):
    """Share of missing cells among a column's values (NaN numbers or None cells)."""
    v = np.asarray(values)
    return float(np.mean(np.isnan(v) if v.dtype.kind == "f" else [c is None for c in v]))


def _level_bars(ax, column, a, b, labels):
    """Side-by-side bars of the shares of each level (and ``NA``) in two categorical columns."""
    names = list(column.levels)
    shares = [[np.mean([c == level for c in x]) for level in names] for x in (a, b)]
    gone = [_missing_share(a), _missing_share(b)]
    if max(gone) > 0:
        names.append("NA")
        shares = [s + [g] for s, g in zip(shares, gone)]
    at = np.arange(len(names))
    ax.bar(at - 0.2, shares[0], width=0.4, color=TARGET_COLOR, alpha=0.8, label=labels[0])
    ax.bar(at + 0.2, shares[1], width=0.4, color=GENERATED_COLOR, alpha=0.8, label=labels[1])
    ax.set_xticks(at, names, rotation=30 if len(names) > 3 else 0, fontsize=6)
    ax.set_ylabel("share", fontsize=7)


# --- small helpers ------------------------------------------------------------------------------
def _gif_options(path, fps, hold_seconds):
    """``(fps, hold_seconds)`` checked, and ``path`` checked to end with ``.gif``."""
    fps = _checks.positive_int(fps, "fps")
    hold_seconds = _checks.finite_float(hold_seconds, "hold_seconds", low=0)
    if not os.fspath(path).lower().endswith(".gif"):
        raise ValueError(f"path must end with .gif, got {os.fspath(path)!r}")
    return fps, hold_seconds


def _save_gif(fig, draw, m, path, fps, hold_seconds, dpi):
    """Write the GIF of ``draw(i)`` for the ``m`` frames, the last held ``hold_seconds``."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    order = list(range(m)) + [m - 1] * round(hold_seconds * fps)
    animation = FuncAnimation(fig, draw, frames=order, blit=False, repeat=False)
    animation.save(os.fspath(path), writer=PillowWriter(fps=fps), dpi=dpi)


def _limits(limits):
    """``(low, high)`` as two finite floats with low < high."""
    try:
        low, high = limits
    except (TypeError, ValueError):
        raise ValueError(f"limits must be a pair (low, high), got {limits!r}") from None
    low, high = _checks.finite_float(low, "limits[0]"), _checks.finite_float(high, "limits[1]")
    if not low < high:
        raise ValueError(f"limits must satisfy low < high, got {limits!r}")
    return low, high


def _image_shape(shape):
    """``(h, w)`` as two positive ints."""
    try:
        h, w = shape
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a pair (h, w), got {shape!r}") from None
    return _checks.positive_int(h, "shape[0]"), _checks.positive_int(w, "shape[1]")


def _images(images, size):
    """A finite float64 array (n, size) of flattened images."""
    arr = np.asarray(images)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"images must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != size or arr.shape[0] < 1:
        raise ValueError(f"images must have shape (n, {size}), one flattened image per row, "
                         f"got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("images must be finite, found NaN or infinity")
    return arr


def _trajectory(traj):
    """A finite float64 array of shape (m, n, 2) with m >= 2."""
    arr = np.asarray(traj)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"traj must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[2] != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"traj must have shape (m, n, 2) with m >= 2 times, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("traj must be finite, found NaN or infinity")
    return arr


def _times(times, m):
    """The (m,) times of the trajectory rows; ``linspace(0, 1, m)`` when None."""
    if times is None:
        return np.linspace(0.0, 1.0, m)
    times = np.asarray(times, dtype=np.float64)
    if times.shape != (m,) or not np.all(np.isfinite(times)):
        raise ValueError(f"times must be {m} finite numbers, one per trajectory row, "
                         f"got shape {times.shape}")
    return times


def _grid(limits, grid):
    """Cell centres of a ``grid x grid`` lattice over ``[low, high]^2``.

    Returns coords (grid,) and points (grid * grid, 2), ordered row by row (y outer, x inner) so
    that ``values.reshape(grid, grid)`` is an image with rows along y.
    """
    low, high = limits
    half = (high - low) / (2 * grid)
    coords = np.linspace(low + half, high - half, grid)  # (grid,)
    gx, gy = np.meshgrid(coords, coords)  # (grid, grid) each, row = y
    return coords, np.stack([gx.ravel(), gy.ravel()], axis=1)


def _square(ax, limits):
    ax.set_xlim(*limits)
    ax.set_ylim(*limits)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)


# --- pictures of a trained flow (npflow plot / animate) -------------------------------------------
PLOT_KINDS = ("samples", "trajectories", "field", "density", "loss")


def plot_flow(flow, kind="samples", n=None, steps=None, rng=None, rows=None):
    """One picture of a :class:`~npflow.trained.TrainedFlow`; returns the figure.

    ``kind``: ``samples`` (noise | generated | target; a flow of rows: its samples beside
    ``rows`` (m, d), side by side in 2-D, pairwise plots above), ``trajectories`` (paths
    x0 -> x1), ``field`` (v(x, t) at five times), ``density`` (the model's p1 beside the true
    one) or ``loss`` (the training loss); a flow of grey images draws a grid of up to 100 samples
    without ``rows``. ``n`` points (300 paths for trajectories), ``steps``
    of rk4 (16 for density, else 100); ``rng`` draws the points. Every kind but ``samples`` and
    ``loss`` draws a flow of a built-in 2-D target.
    """
    _checks.choice(kind, "kind", PLOT_KINDS)
    rng = np.random.default_rng(0) if rng is None else _checks.generator(rng)
    n = (300 if kind == "trajectories" else 2000) if n is None else _checks.positive_int(n, "n")
    steps = (16 if kind == "density" else 100) if steps is None else steps
    if kind == "loss":
        if len(flow.checkpoint.losses) == 0:
            raise ValueError("the model holds no training losses")
        return loss_curve(flow.checkpoint.losses)
    if flow.on_rows:
        return _plot_rows(flow, kind, n, steps, rng, rows)
    if rows is not None:
        raise _checks.OptionError("{0} applies to a model of rows only; this model has a "
                                  "built-in 2-D target, whose fresh points are drawn instead",
                                  "rows")
    source, target = flow.config["source"], flow.config["target"]
    if kind == "field":
        return vector_field(flow.model, limits=_window(flow, rng))
    if kind == "density":
        if not datasets.has_density(source):
            raise _checks.OptionError(f"{{0}} density needs the density of the source, and "
                                      f"{source!r} has no closed form", "kind")
        return density(flow.model, limits=_window(flow, rng), steps=steps,
                       log_p0=lambda x: datasets.log_density(source, x),
                       true_log_density=(lambda x: datasets.log_density(target, x))
                       if datasets.has_density(target) else None)
    x0, x1, sol = flow_of_source(flow, n, steps, rng, trajectory=kind == "trajectories")
    if kind == "trajectories":
        return trajectories(sol.trajectory, n_paths=n, limits=limits_of(x0, x1))
    return panels(x0, sol.x, x1)


def _plot_rows(flow, kind, n, steps, rng, rows):
    """A flow of rows: its samples beside ``rows`` (panels in 2-D, pairwise plots above)."""
    image_shape = getattr(flow.model, "image_shape", None)
    if kind == "samples" and image_shape is not None and image_shape[0] == 1 and rows is None:
        generated = flow.sample(min(n, 100), rng, steps=steps)  # a grid of 10 columns
        return image_grid(generated, shape=image_shape[1:], vmin=0.0,
                          title="generated images (data units)")
    if kind != "samples":
        raise _checks.OptionError(f"{{0}} {kind} draws a model of a built-in 2-D target; for a "
                                  f"model of rows use {{0}} samples (with {{1}}) or loss",
                                  "kind", "rows")
    if rows is None:
        raise _checks.OptionError("{0} samples of a model of rows needs {1} (rows to draw "
                                  "beside its samples)", "kind", "rows")
    if flow.source_is_data:
        raise _checks.OptionError("{0} samples of a data-to-data flow needs its source rows, "
                                  "which a plot does not take: map them with sample ({1}), then "
                                  "plot the result yourself", "kind", "source_rows")
    rows = flow.check_rows(rows, "rows")
    z0 = flow.draw_source(n, rng)
    generated = flow.decode(z0, steps=steps)
    if flow.dim == 2:
        return panels(flow.to_data(z0), generated, rows,
                      titles=("noise (in data units)", "generated", "data"))
    return pairplot(rows, generated)


def animate_flow(flow, path, n=600, frames=41, fps=20, steps=100, rng=None):
    """A GIF of ``n`` points of a built-in 2-D flow carried from the source by rk4 ``steps``,
    one frame per evenly spaced time; returns the figure."""
    if flow.on_rows:
        raise _checks.OptionError("{0}: animate draws a model of a built-in 2-D target", "model")
    if _checks.positive_int(frames, "frames") < 2:
        raise _checks.refuse("frames", f"must be at least 2 (the first and the last), got {frames}")
    if frames > _checks.positive_int(steps, "steps") + 1:
        raise _checks.OptionError(f"{{0}} ({frames}) must be at most {{1}} + 1 ({steps + 1})",
                                  "frames", "steps")
    rng = np.random.default_rng(0) if rng is None else _checks.generator(rng)
    x0, x1, sol = flow_of_source(flow, n, steps, rng, trajectory=True)
    rows = np.round(np.linspace(0, steps, frames)).astype(int)  # (frames,)
    return animate(sol.trajectory[rows], path, times=sol.times[rows], fps=fps,
                   limits=limits_of(x0, x1))


def flow_of_source(flow, n, steps, rng, trajectory=False):
    """x0 ~ source (n, 2), x1 ~ target (n, 2) of a built-in 2-D flow, and the rk4 solution."""
    x0 = datasets.sample(flow.config["source"], n, rng)
    x1 = datasets.sample(flow.config["target"], n, rng)
    sol = solvers.solve(flow.model, x0.astype(flow.model.dtype), "rk4", steps,
                        return_trajectory=trajectory)
    return x0, x1, sol


def _window(flow, rng):
    """Plot limits that hold 2000 source and 2000 target points."""
    return limits_of(datasets.sample(flow.config["source"], 2000, rng),
                     datasets.sample(flow.config["target"], 2000, rng))
