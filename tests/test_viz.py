"""Tests for npflow.viz and the ``npflow plot`` / ``npflow animate`` commands.

The pictures are checked through what they hold (axes, plotted data, colour scales) against
values computed here independently, and the files through their magic bytes and frame counts.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
Image = pytest.importorskip("PIL.Image")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from npflow import cli, datasets, viz  # noqa: E402
from npflow.nn import MLP  # noqa: E402
from npflow.train import TrainConfig, Trainer  # noqa: E402
from npflow.trained import TrainedFlow  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny checkpoint (gaussian -> checkerboard, one hidden layer of 16) after 5 steps."""
    trainer = Trainer(TrainConfig(steps=5, batch_size=64, hidden=(16,)))
    trainer.run(quiet=True)
    path = tmp_path_factory.mktemp("viz") / "m.npz"
    trainer.save(path)
    return str(path)


def tiny_mlp():
    return MLP(2, hidden=(16,), rng=np.random.default_rng(0))


def points(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 2))


def gif_durations(path):
    with Image.open(path) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    return durations


# --- matplotlib stays optional ---------------------------------------------------------------------
def test_importing_npflow_does_not_load_matplotlib():
    code = "import npflow, npflow.viz, npflow.cli, sys; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_pyplot_without_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'npflow\[viz\]'"):
        viz.pyplot()


@pytest.mark.parametrize("mplbackend, for_files, expected", [
    (None, False, "agg"),  # no screen, no choice: Agg
    ("svg", False, "svg"),  # the user's choice is kept
    ("svg", True, "agg"),  # files only (the command line): Agg
])
def test_pyplot_backend_choice_without_a_screen(mplbackend, for_files, expected):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    if mplbackend is not None:
        env["MPLBACKEND"] = mplbackend
    code = (f"import npflow.viz, matplotlib; npflow.viz.pyplot(for_files={for_files}); "
            f"print(matplotlib.get_backend().lower())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.strip() == expected


# --- limits ----------------------------------------------------------------------------------------
@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(1, 300), scale=st.floats(0.01, 50))
def test_limits_of_are_square_half_steps_holding_the_points(seed, n, scale):
    x = scale * np.random.default_rng(seed).standard_normal((n, 2))
    low, high = viz.limits_of(x)
    assert low == -high and high >= 0.5
    assert (2 * high) == int(2 * high)  # a multiple of 0.5
    inside = np.mean(np.abs(x) <= high)  # every coordinate of every point
    assert inside >= 0.999 - 1e-12
    # Not wasteful: without the 8 % margin and the rounding the window would be too small.
    assert high <= max(0.5, np.max(np.abs(x)) * 1.08 + 0.5)


def test_bad_limits_are_rejected():
    with pytest.raises(ValueError, match="limits"):
        viz.scatter(points(10), limits=(1.0, -1.0))
    with pytest.raises(ValueError, match="limits"):
        viz.scatter(points(10), limits=3.0)
    with pytest.raises(ValueError, match="x must have shape"):
        viz.scatter(np.zeros((5, 3)))


# --- scatter and panels -------------------------------------------------------------------------------
def test_scatter_draws_the_points_with_fixed_limits_and_equal_aspect():
    x = points(50)
    fig = viz.scatter(x, limits=(-3, 3), title="x0")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.collections[0].get_offsets(), x)
    assert ax.get_xlim() == (-3, 3) and ax.get_ylim() == (-3, 3)
    assert ax.get_aspect() == 1.0
    assert ax.get_title() == "x0"


def test_scatter_into_a_given_axes():
    fig, (a, b) = plt.subplots(1, 2)
    assert viz.scatter(points(5), ax=b) is fig
    assert len(a.collections) == 0 and len(b.collections) == 1


def test_panels_share_limits_and_hold_each_set():
    noise, generated, target = points(30, 1), points(40, 2), 4 * points(50, 3)
    fig = viz.panels(noise, generated, target)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    expected = viz.limits_of(noise, target)
    for ax, x in zip(fig.axes, (noise, generated, target)):
        assert ax.get_xlim() == expected and ax.get_ylim() == expected
        np.testing.assert_array_equal(ax.collections[0].get_offsets(), x)


# --- trajectories ---------------------------------------------------------------------------------
def test_trajectories_segments_follow_rows_and_are_coloured_by_time():
    m, n, k = 6, 10, 4
    rng = np.random.default_rng(0)
    traj = np.cumsum(rng.standard_normal((m, n, 2)), axis=0)  # (m, n, 2)
    times = np.array([0.0, 0.1, 0.3, 0.6, 0.8, 1.0])
    fig = viz.trajectories(traj, n_paths=k, times=times, limits=(-6, 6))
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # paths + colour bar
    lines = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    assert len(lines) == 1
    segments = lines[0].get_segments()
    assert len(segments) == k * (m - 1)
    for j in range(k):  # path j: segments j (m - 1) .. (j + 1)(m - 1) - 1, from row i to row i + 1
        for i in range(m - 1):
            np.testing.assert_allclose(segments[j * (m - 1) + i], traj[i:i + 2, j])
    mid = (times[:-1] + times[1:]) / 2
    np.testing.assert_allclose(lines[0].get_array(), np.tile(mid, k))
    starts, ends = [c for c in fig.axes[0].collections if not isinstance(c, LineCollection)]
    np.testing.assert_array_equal(starts.get_offsets(), traj[0, :k])
    np.testing.assert_array_equal(ends.get_offsets(), traj[-1, :k])


@pytest.mark.parametrize("traj", [np.zeros((1, 4, 2)), np.zeros((5, 4, 3)), np.zeros((5, 2))])
def test_trajectories_reject_bad_shapes(traj):
    with pytest.raises(ValueError, match="traj must have shape"):
        viz.trajectories(traj)


def test_trajectories_reject_times_of_the_wrong_length():
    with pytest.raises(ValueError, match="times"):
        viz.trajectories(np.zeros((5, 4, 2)), times=np.linspace(0, 1, 4))


# --- vector field ---------------------------------------------------------------------------------
def test_vector_field_panels_and_shared_speed_scale():
    def velocity(x, t):  # |v| = (1 + t) |x|, largest at t = 1 in the grid's corner cells
        return (1.0 + t) * x

    times, limits, grid = (0.0, 0.5, 1.0), (-2.0, 2.0), 8
    fig = viz.vector_field(velocity, times=times, limits=limits, grid=grid)
    assert isinstance(fig, Figure) and len(fig.axes) == len(times) + 1
    assert [ax.get_title() for ax in fig.axes[:3]] == ["t = 0", "t = 0.5", "t = 1"]
    corner = 2.0 - 4.0 / (2 * grid)  # centre of the outermost cell
    norm = fig.axes[0].collections[0].norm
    assert all(ax.collections[0].norm is norm for ax in fig.axes[:3])  # one shared scale
    assert norm.vmin == 0.0
    np.testing.assert_allclose(norm.vmax, 2.0 * np.sqrt(2.0) * corner)


def test_vector_field_colours_streamlines_by_the_speed_where_they_run():
    def velocity(x, t):  # v = (x + 3, 0): horizontal streamlines, speed x + 3 (not y + 3)
        return np.stack([x[:, 0] + 3.0, np.zeros(len(x))], axis=1)

    fig = viz.vector_field(velocity, times=(0.5,), limits=(-2.0, 2.0), grid=9)
    lines = fig.axes[0].collections[0]
    segments = np.asarray(lines.get_segments())  # (k, 2, 2)
    assert len(segments) > 10
    np.testing.assert_allclose(segments[:, 0, 1], segments[:, 1, 1], atol=1e-9)  # horizontal
    x_start = segments[:, 0, 0]
    np.testing.assert_allclose(lines.get_array(), x_start + 3.0, atol=0.05)


def test_vector_field_of_an_mlp():
    fig = viz.vector_field(tiny_mlp(), grid=10)
    assert len(fig.axes) == 6


# --- density ----------------------------------------------------------------------------------------
def test_density_of_a_zero_field_is_the_source_density():
    """v = 0 moves nothing, so p_1 = p_0 = N(0, I) at every cell centre."""
    model = tiny_mlp()
    model.params[...] = 0.0
    grid, limits = 8, (-4.0, 4.0)
    fig = viz.density(model, limits=limits, grid=grid, steps=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # model + colour bar
    centres = -4.0 + (np.arange(grid) + 0.5) * 8.0 / grid  # (grid,)
    gx, gy = np.meshgrid(centres, centres)  # row = y
    expected = np.exp(-(gx ** 2 + gy ** 2) / 2) / (2 * np.pi)
    image = fig.axes[0].images[0]
    np.testing.assert_allclose(image.get_array(), expected, rtol=1e-5)
    assert tuple(image.get_extent()) == (-4.0, 4.0, -4.0, 4.0)


def test_density_image_rows_run_along_y():
    """With v = 0 the image is p_0 itself; an asymmetric p_0 pins the orientation."""
    model = tiny_mlp()
    model.params[...] = 0.0
    grid = 6
    fig = viz.density(model, limits=(-1.0, 2.0), grid=grid, steps=1,
                      log_p0=lambda x: 0.5 * x[:, 0] - x[:, 1],
                      true_log_density=lambda x: -x[:, 0])
    centres = -1.0 + (np.arange(grid) + 0.5) * 3.0 / grid
    gx, gy = np.meshgrid(centres, centres)  # row = y, column = x
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), np.exp(0.5 * gx - gy),
                               rtol=1e-5)
    fine = -1.0 + (np.arange(4 * grid) + 0.5) * 3.0 / (4 * grid)
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(),
                               np.exp(-np.meshgrid(fine, fine)[0]), rtol=1e-12)


def test_density_beside_the_true_checkerboard():
    grid = 8
    fig = viz.density(tiny_mlp(), limits=(-4.0, 4.0), grid=grid, steps=2,
                      true_log_density=lambda x: datasets.log_density("checkerboard", x))
    assert len(fig.axes) == 3  # model, true, colour bar
    true = np.asarray(fig.axes[1].images[0].get_array())
    assert true.shape == (4 * grid, 4 * grid)
    # Half of [-4, 4]^2 is covered at density 1/32; the cell centres avoid the square edges.
    np.testing.assert_allclose(true.mean(), 1 / 64)
    assert set(np.unique(true)) == {0.0, 1 / 32}
    # Bottom-left square [-4, -2]^2 (column 0, row 0) is empty; the one to its right is filled.
    assert true[0, 0] == 0.0 and true[0, grid] == pytest.approx(1 / 32)
    # Both panels share one colour scale.
    assert fig.axes[0].images[0].norm is fig.axes[1].images[0].norm


# --- loss curve ---------------------------------------------------------------------------------------
def test_loss_curve_raw_and_moving_average():
    losses = np.arange(1.0, 11.0)  # 1 .. 10
    fig = viz.loss_curve(losses, window=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    raw, smooth = ax.lines
    np.testing.assert_array_equal(raw.get_xdata(), np.arange(1, 11))
    np.testing.assert_array_equal(raw.get_ydata(), losses)
    # The mean of (k - 2, k - 1, k) is k - 1, plotted at step k = 3 .. 10.
    np.testing.assert_array_equal(smooth.get_xdata(), np.arange(3, 11))
    np.testing.assert_allclose(smooth.get_ydata(), np.arange(2.0, 10.0))


@pytest.mark.parametrize("losses", [[], [1.0, np.nan], [1.0, 0.0], [[1.0, 2.0]]])
def test_loss_curve_rejects_bad_losses(losses):
    with pytest.raises(ValueError, match="losses"):
        viz.loss_curve(losses)


# --- files ------------------------------------------------------------------------------------------
def test_save_figure_writes_small_png_and_pdf(tmp_path):
    rng = np.random.default_rng(0)
    fig = viz.panels(rng.standard_normal((2000, 2)), rng.standard_normal((2000, 2)),
                     datasets.sample("checkerboard", 2000, rng))
    png, pdf = tmp_path / "p.png", tmp_path / "p.pdf"
    viz.save_figure(fig, png)
    viz.save_figure(fig, pdf)
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert png.stat().st_size < 400_000
    assert pdf.read_bytes()[:4] == b"%PDF"


def test_animate_writes_one_frame_per_row_and_holds_the_last(tmp_path):
    m, fps = 6, 10
    traj = np.linspace(0, 1, m)[:, None, None] * np.random.default_rng(0).standard_normal((1, 30, 2))
    path = tmp_path / "flow.gif"
    fig = viz.animate(traj, path, fps=fps, hold_seconds=0.5, limits=(-3, 3))
    assert isinstance(fig, Figure)
    assert path.read_bytes()[:6] == b"GIF89a"
    durations = gif_durations(path)  # Pillow merges the identical held frames into the last
    assert len(durations) == m
    assert durations[:-1] == [1000 // fps] * (m - 1)
    assert durations[-1] == 1000 // fps * (1 + 5)
    assert fig.axes[0].get_title() == "t = 1.00"
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(), traj[-1])


def test_animate_needs_a_gif_path(tmp_path):
    with pytest.raises(ValueError, match=".gif"):
        viz.animate(np.zeros((3, 4, 2)), tmp_path / "flow.png")


# --- command line -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["samples", "trajectories", "field", "density", "loss"])
def test_cli_plot_writes_each_kind(model_file, tmp_path, capsys, kind):
    out = tmp_path / f"{kind}.png"
    code = cli.main(["plot", "--model", model_file, "--out", str(out), "--kind", kind,
                     "--n", "200", "--steps", "4"])
    assert code == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert str(out) in capsys.readouterr().out


def test_cli_plot_svg(model_file, tmp_path):
    out = tmp_path / "s.svg"
    assert cli.main(["plot", "--model", model_file, "--out", str(out), "--n", "50",
                     "--steps", "2"]) == 0
    assert b"<svg" in out.read_bytes()[:2000]


def test_cli_animate_writes_a_gif(model_file, tmp_path):
    out = tmp_path / "flow.gif"
    code = cli.main(["animate", "--model", model_file, "--out", str(out), "--frames", "5",
                     "--steps", "8", "--n", "100", "--fps", "10"])
    assert code == 0
    with Image.open(out) as im:
        assert im.n_frames == 5


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize("argv, needle", [
    (["plot", "--model", "{tmp}/absent.npz", "--out", "{tmp}/f.png"], "does not exist"),
    (["plot", "--model", "{tmp}/junk.npz", "--out", "{tmp}/f.png"], "junk.npz"),
    (["plot", "--model", "{model}", "--out", "{tmp}/missing/f.png"], "does not exist"),
    (["plot", "--model", "{model}", "--out", "{tmp}/f.gif"], ".png"),
    (["animate", "--model", "{tmp}/absent.npz", "--out", "{tmp}/f.gif"], "does not exist"),
    (["animate", "--model", "{model}", "--out", "{tmp}/f.png"], ".gif"),
    (["animate", "--model", "{model}", "--out", "{tmp}/missing/f.gif"], "does not exist"),
    (["animate", "--model", "{model}", "--out", "{tmp}/f.gif", "--frames", "12", "--steps", "10"],
     "--frames"),
    (["animate", "--model", "{model}", "--out", "{tmp}/f.gif", "--frames", "1"], "--frames"),
    (["animate", "--model", "{model}", "--out", "{tmp}/f.gif", "--fps", "0"], "--fps"),
    (["animate", "--model", "{model}", "--out", "{tmp}/f.gif", "--n", "0"], "--n"),
    (["plot", "--model", "{model}", "--out", "{tmp}/f.png", "--seed", "-1"], "--seed"),
])
def test_cli_errors_are_one_line_with_exit_2(model_file, tmp_path, capsys, argv, needle):
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    argv = [a.format(tmp=tmp_path, model=model_file) for a in argv]
    assert cli.main(argv) == 2
    _one_line_error(capsys, needle)
    assert not (tmp_path / "f.png").exists() and not (tmp_path / "f.gif").exists()


@pytest.mark.parametrize("command, out", [("plot", "f.png"), ("animate", "f.gif")])
def test_cli_without_matplotlib_says_how_to_install(model_file, tmp_path, capsys, monkeypatch,
                                                    command, out):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cli.main([command, "--model", model_file, "--out", str(tmp_path / out)]) == 2
    _one_line_error(capsys, "pip install 'npflow[viz]'")


def test_cli_plot_rejects_an_unknown_kind(model_file, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["plot", "--model", model_file, "--out", str(tmp_path / "f.png"),
                  "--kind", "histogram"])
    assert exc.value.code == 2
    _one_line_error(capsys, "--kind")


# --- images: grids, pair plots, animations ----------------------------------------------------

def digit_like(n, seed=0):
    return np.random.default_rng(seed).integers(0, 17, size=(n, 64)).astype(float)


def test_image_grid_shows_every_image_in_reading_order_with_row_labels():
    images = digit_like(23)
    fig = viz.image_grid(images, ncols=10, row_labels=["a", "b", "c"])
    axes = fig.axes
    assert len(axes) == 30
    shown = [ax for ax in axes if ax.get_visible()]
    assert len(shown) == 23
    for ax, image in zip(shown, images):
        np.testing.assert_array_equal(ax.images[0].get_array(), image.reshape(8, 8))
        assert ax.images[0].get_clim() == (images.min(), images.max())
    assert [axes[10 * r].get_ylabel() for r in range(3)] == ["a", "b", "c"]


def test_image_grid_other_shapes_and_scale():
    fig = viz.image_grid(np.arange(12.0).reshape(2, 6), shape=(2, 3), ncols=1, vmin=0, vmax=20)
    assert len(fig.axes) == 2
    assert fig.axes[1].images[0].get_array().shape == (2, 3)
    assert fig.axes[1].images[0].get_clim() == (0.0, 20.0)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"images": np.zeros((3, 63))}, ValueError, r"\(n, 64\)"),
    ({"images": np.zeros(64)}, ValueError, r"\(n, 64\)"),
    ({"images": np.zeros((2, 64)), "row_labels": ["a", "b"]}, ValueError, "row_labels"),
    ({"images": np.zeros((2, 64)), "shape": (8,)}, ValueError, "shape"),
    ({"images": np.full((2, 64), np.nan)}, ValueError, "finite"),
])
def test_image_grid_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        viz.image_grid(**kwargs)


def test_pairplot_draws_data_and_samples_for_the_chosen_coordinates():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((300, 6)) * np.array([1, 5, 1, 3, 1, 2])
    samples = rng.standard_normal((200, 6))
    fig = viz.pairplot(data, samples)  # the 4 coordinates of largest variance: 1, 3, 5, 0 or 2
    axes = np.array(fig.axes[:16]).reshape(4, 4)
    assert axes[3, 0].get_xlabel() == axes[0, 0].get_ylabel()
    picked = [int(axes[3, c].get_xlabel()[2:-1]) for c in range(4)]
    assert {1, 3, 5} <= set(picked)
    off = axes[0, 1].collections
    np.testing.assert_allclose(off[0].get_offsets(), data[:, [picked[1], picked[0]]])
    np.testing.assert_allclose(off[1].get_offsets(), samples[:, [picked[1], picked[0]]])
    fig2 = viz.pairplot(data, samples, dims=[2, 4])
    assert len(fig2.axes) == 4
    with pytest.raises(ValueError, match="dims"):
        viz.pairplot(data, samples, dims=[6])
    with pytest.raises(ValueError, match=r"\(n, 6\)"):
        viz.pairplot(data, samples[:, :5])


def test_animate_images_writes_a_gif_with_one_frame_per_row_plus_the_hold(tmp_path):
    frames = np.stack([digit_like(12, seed) for seed in range(4)])  # (4, 12, 64)
    path = tmp_path / "digits.gif"
    fig = viz.animate_images(frames, path, ncols=6, fps=10, hold_seconds=0.5)
    with open(path, "rb") as f:
        assert f.read(6) in (b"GIF87a", b"GIF89a")
    assert len(gif_durations(path)) >= 4  # Pillow may merge identical held frames
    shown = [ax for ax in fig.axes if ax.get_visible()]
    np.testing.assert_array_equal(shown[0].images[0].get_array(), frames[-1, 0].reshape(8, 8))
    with pytest.raises(ValueError, match=".gif"):
        viz.animate_images(frames, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\(m, n, 64\)"):
        viz.animate_images(frames[:1], tmp_path / "y.gif")


def test_cli_plot_of_a_model_of_rows_draws_pairwise_panels_beside_the_data(tmp_path, capsys):
    from npflow.cli import main
    rows = str(tmp_path / "rows.npy")
    np.save(rows, np.random.default_rng(0).standard_normal((200, 5)) * [1, 2, 3, 4, 5])
    model = str(tmp_path / "m.npz")
    assert main(["train", "--data", rows, "--steps", "5", "--hidden", "8", "--batch-size", "32",
                 "--out", model, "--quiet"]) == 0
    out = str(tmp_path / "p.png")
    assert main(["plot", "--model", model, "--data", rows, "--n", "100", "--steps", "3",
                 "--out", out]) == 0
    assert os.path.getsize(out) > 0
    assert main(["plot", "--model", model, "--kind", "field", "--out", out]) == 2
    assert main(["plot", "--model", model, "--out", out]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "--kind samples" in err[-2] and "needs --data" in err[-1]


def test_plot_of_an_image_model_draws_a_grid_of_samples(tmp_path):
    images = np.random.default_rng(0).integers(0, 16, size=(40, 8, 8)).astype(np.float64)
    np.save(tmp_path / "i.npy", images)
    model, out = str(tmp_path / "u.npz"), str(tmp_path / "grid.png")
    assert cli.main(["train", "--data", str(tmp_path / "i.npy"), "--arch", "unet", "--channels",
                     "4", "--multipliers", "1,2", "--groups", "2", "--steps", "2", "--batch-size",
                     "8", "--out", model, "--quiet"]) == 0
    assert cli.main(["plot", "--model", model, "--n", "20", "--steps", "2", "--out", out]) == 0
    with open(out, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    fig = viz.plot_flow(TrainedFlow.load(model), n=20, steps=2)
    assert sum(ax.get_visible() for ax in fig.axes) == 20  # one cell per sample, 10 per row
    viz.pyplot().close(fig)


# --- tables: real beside synthetic --------------------------------------------------------------

def small_tables():
    """Two small tables (numeric x with a gap, integer k of three values, level c with a gap)
    and the encoder fitted on the first."""
    from npflow.tables import Table, TableEncoder

    names = ("x", "k", "c")
    real = Table(names, np.array([["0.5", "1", "a"], ["1.5", "2", "b"], [None, "3", "a"],
                                  ["2.5", "1", None], ["3.0", "2", "a"]], dtype=object))
    synthetic = Table(names, np.array([["1.0", "3", "b"], ["2.0", "3", "b"], ["0.0", "1", "a"],
                                       ["3.5", "2", "b"]], dtype=object))
    return real, synthetic, TableEncoder().fit(real)


def bar_heights(ax):
    return [p.get_height() for p in ax.patches]


def test_table_columns_draw_shared_histograms_and_level_shares_with_na():
    real, synthetic, encoder = small_tables()
    fig = viz.table_columns(real, synthetic, encoder, bins=4)
    x_ax, k_ax, c_ax = [ax for ax in fig.axes if ax.get_visible()]
    edges = np.histogram_bin_edges([0.5, 1.5, 2.5, 3.0, 1.0, 2.0, 0.0, 3.5], bins=4)
    expected = np.concatenate([np.histogram([0.5, 1.5, 2.5, 3.0], edges, density=True)[0],
                               np.histogram([1.0, 2.0, 0.0, 3.5], edges, density=True)[0]])
    np.testing.assert_allclose(bar_heights(x_ax), expected)
    assert [p.get_x() for p in x_ax.patches[:4]] == [p.get_x() for p in x_ax.patches[4:]]
    # an integer column of three values: one bin per value, 1 .. 3
    np.testing.assert_allclose([p.get_x() + p.get_width() / 2 for p in k_ax.patches[:3]],
                               [1, 2, 3])
    np.testing.assert_allclose(bar_heights(k_ax), [2 / 5, 2 / 5, 1 / 5, 1 / 4, 1 / 4, 2 / 4])
    # levels a, b and NA, real then synthetic, shares over every cell
    np.testing.assert_allclose(bar_heights(c_ax), [3 / 5, 1 / 5, 1 / 5, 1 / 4, 3 / 4, 0])
    assert [t.get_text() for t in c_ax.get_xticklabels()] == ["a", "b", "NA"]
    assert x_ax.get_title() == "x\nNA 20.0% / 0.0%"


def test_table_correlations_show_both_matrices_and_their_difference_on_a_diverging_scale():
    from npflow.tables import Table, TableEncoder

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 60, 3))
    a[:, 1] += a[:, 0]
    b[:, 2] -= b[:, 0]
    a[3, 2] = np.nan  # pairs are taken over the rows where both are present

    def table(v):
        return Table(("p", "q", "r"), np.array([[None if np.isnan(x) else repr(float(x))
                                                 for x in row] for row in v], dtype=object))

    real, synthetic = table(a), table(b)
    fig = viz.table_correlations(real, synthetic, TableEncoder().fit(real))
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 3 and len(fig.axes) == 5  # three matrices, two colour bars
    r_real = np.array([[np.corrcoef(*a[~np.isnan(a[:, [i, j]]).any(axis=1)][:, [i, j]].T)[0, 1]
                        for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(images[0].get_array(), r_real, atol=1e-12)
    np.testing.assert_allclose(images[1].get_array(), np.corrcoef(b.T), atol=1e-12)
    diff = r_real - np.corrcoef(b.T)
    np.testing.assert_allclose(images[2].get_array(), diff, atol=1e-12)
    for image, scale in zip(images, (1.0, 1.0, np.abs(diff).max())):
        assert image.get_cmap().name == viz.DIVERGING_CMAP
        assert image.get_clim() == pytest.approx((-scale, scale))
    one = real.cells[:, :1]
    with pytest.raises(ValueError, match="at least two numeric"):
        viz.table_correlations(Table(("p",), one), Table(("p",), one),
                               TableEncoder().fit(Table(("p",), one)))


def test_table_pairplot_colours_each_level_and_shares_limits_between_real_and_synthetic():
    real, synthetic, encoder = small_tables()
    fig = viz.table_pairplot(real, synthetic, encoder, "c", labels=("R", "S"))
    real_fig, syn_fig = fig.subfigs
    assert [f._suptitle.get_text() for f in fig.subfigs] == ["R", "S"]
    real_axes = np.array(real_fig.axes).reshape(2, 2)
    syn_axes = np.array(syn_fig.axes).reshape(2, 2)
    # panel (0, 1): k across, x up, level a then b; rows with a gap in x or c are left out
    a, b = real_axes[0, 1].collections
    np.testing.assert_allclose(a.get_offsets(), [[1, 0.5], [2, 3.0]])
    np.testing.assert_allclose(b.get_offsets(), [[2, 1.5]])
    assert not np.allclose(a.get_facecolor()[0][:3], b.get_facecolor()[0][:3])
    np.testing.assert_allclose(syn_axes[0, 1].collections[1].get_offsets(),
                               [[3, 1.0], [3, 2.0], [2, 3.5]])
    for r in range(2):
        for c in range(2):
            assert real_axes[r, c].get_xlim() == syn_axes[r, c].get_xlim()
    with pytest.raises(ValueError, match="hue must name a categorical column"):
        viz.table_pairplot(real, synthetic, encoder, "x")
    with pytest.raises(ValueError, match="columns must name numeric"):
        viz.table_pairplot(real, synthetic, encoder, "c", columns=["c"])


def test_table_imputations_put_each_draw_above_its_true_value():
    from npflow.tables import Table

    real, synthetic, encoder = small_tables()
    hidden = np.zeros((5, 3), dtype=bool)
    hidden[[0, 3], 0] = hidden[1, 2] = True  # two cells of x, one of c (not drawn)
    draws = []
    for shift in ("9", "7"):
        cells = real.cells.copy()
        cells[[0, 3], 0] = [shift, "1.0"]
        draws.append(Table(real.names, cells))
    fig = viz.table_imputations(real, draws, hidden, encoder, fills=[2.0, 0.0, None])
    (ax,) = [a for a in fig.axes if a.get_visible()]
    points = ax.collections[0].get_offsets()
    np.testing.assert_allclose(points, [[0.5, 9], [2.5, 1], [0.5, 7], [2.5, 1]])
    assert ax.lines[-1].get_ydata()[0] == 2.0  # the mean imputation's line
    assert ax.get_title() == "x (2 cells)"
    with pytest.raises(ValueError, match="no numeric or integer column has a hidden cell"):
        viz.table_imputations(real, draws, hidden & False, encoder)
    with pytest.raises(ValueError, match="no numeric or integer column has a hidden cell"):
        viz.table_imputations(real, draws, hidden, encoder, columns=["k"])
