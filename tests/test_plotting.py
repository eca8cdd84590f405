"""LivePlot (chapter 9): what it draws, and that watching stays within its budget.

No kernel is needed: ``IPython.display.display`` is replaced by a recorder and
the plot's clock by a fake one, so the time budget is tested exactly.
"""

import matplotlib

matplotlib.use("Agg")

import IPython.display
import matplotlib.pyplot as plt
import numpy as np
import pytest

from ppo_helpers import plotting

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def screen(monkeypatch):
    """Fake clock and display; each frame shown costs ``screen.draw_cost`` s."""

    class Screen:
        clock = FakeClock()
        draw_cost = 0.0
        frames: list = []
        handles = 0

    class Handle:
        def update(self, image):
            Screen.clock.now += Screen.draw_cost
            Screen.frames.append(image)

    def display(image, display_id=False):
        assert display_id, "LivePlot must update one output in place"
        Screen.handles += 1
        Screen.clock.now += Screen.draw_cost
        Screen.frames.append(image)
        return Handle()

    monkeypatch.setattr(plotting, "_clock", Screen.clock)
    monkeypatch.setattr(IPython.display, "display", display)
    return Screen


def skip_rendering(plot):
    """Budget tests need frames, not pixels: render a stub PNG."""
    plot.fig.savefig = lambda buffer, format: buffer.write(PNG_MAGIC)


def feed(plot, clock, updates, seconds_per_update, rng=None):
    """``updates`` fake PPO updates of 2048 steps, each taking some seconds."""
    rng = rng or np.random.default_rng(0)
    returns = []
    for u in range(1, updates + 1):
        clock.now += seconds_per_update
        steps = 2048 * u
        new = [
            (
                steps,
                clock.now,
                float(rng.normal(-100 + u, 50)),
                int(rng.integers(60, 1000)),
            )
            for _ in range(int(rng.integers(0, 6)))
        ]
        returns += [e[2] for e in new]
        plot.update(
            {
                "env_steps": steps,
                "approx_kl": 0.01,
                "clip_fraction": 0.1,
                "entropy": 1.2,
            },
            new,
        )
    return returns


def test_moving_average_is_the_mean_of_the_last_window_values():
    x = np.arange(10.0) ** 2
    want = [x[max(0, i - 2) : i + 1].mean() for i in range(10)]
    np.testing.assert_allclose(plotting.moving_average(x, 3), want)
    np.testing.assert_allclose(plotting.moving_average(x, 1), x)
    running_mean = np.cumsum(x) / np.arange(1, 11)
    np.testing.assert_allclose(plotting.moving_average(x, 100), running_mean)


def test_thousands_labels_env_steps():
    assert [plotting.thousands(x) for x in (0, 50_000, 12_500, 299_008)] == [
        "0",
        "50k",
        "12.5k",
        "299k",
    ]


def test_drawing_costs_at_most_max_overhead_of_the_time_plus_one_frame(screen):
    screen.draw_cost = 0.3  # seconds per frame, slower than a real one
    plot = plotting.LivePlot(300_000, notebook=True, max_overhead=0.05)
    skip_rendering(plot)
    feed(plot, screen.clock, updates=146, seconds_per_update=0.7)
    elapsed = screen.clock.now
    assert plot.redraw_s == pytest.approx(plot.redraws * screen.draw_cost)
    assert plot.redraw_s <= 0.05 * elapsed + screen.draw_cost
    assert plot.redraws >= 0.05 * elapsed / screen.draw_cost - 1  # budget used
    assert screen.handles == 1, "every frame after the first replaces it in place"


def test_redraws_at_most_once_per_min_interval(screen):
    plot = plotting.LivePlot(
        100_000, notebook=True, min_interval_s=1.0, max_overhead=1.0
    )
    skip_rendering(plot)
    feed(plot, screen.clock, updates=40, seconds_per_update=0.25)  # 10 s
    assert plot.redraws == 10  # at 0.25 s, then every 1 s up to 9.25 s


def test_final_frame_holds_every_episode_and_diagnostic(screen):
    plot = plotting.LivePlot(100_000, notebook=True, window=20, min_interval_s=1e9)
    returns = feed(plot, screen.clock, updates=40, seconds_per_update=0.1)
    plot.close()
    assert plot.redraws == 2  # the first update and the final frame
    assert screen.frames[-1].data.startswith(PNG_MAGIC)
    np.testing.assert_allclose(plot.lines["return"].get_ydata(), returns)
    np.testing.assert_allclose(
        plot.lines["return_mean"].get_ydata(), plotting.moving_average(returns, 20)
    )
    assert len(plot.lines["entropy"].get_xdata()) == 40
    assert plot.recent_mean() == pytest.approx(np.mean(returns[-20:]))
    assert plot.axes[0].get_ylim()[1] > 200, "the solved line stays in view"


def test_missing_diagnostics_are_left_out(screen):
    plot = plotting.LivePlot(10_000, notebook=True)
    skip_rendering(plot)
    plot.update({"env_steps": 2048, "kl": 0.01}, [(2048, 0.1, -120.0, 90)])
    plot.close()
    assert np.isnan(plot.lines["approx_kl"].get_ydata()).all()


def test_without_diagnostics_two_panels_show_episodes_only(screen):
    plot = plotting.LivePlot(10_000, notebook=True, diagnostics=False)
    plot.update({"env_steps": 2048}, [(2048, 0.1, -120.0, 90), (2048, 0.1, -80.0, 70)])
    plot.close()
    assert len(plot.fig.axes) == 2 and "approx_kl" not in plot.lines
    np.testing.assert_allclose(plot.lines["length"].get_ydata(), [90, 70])
    assert screen.frames[-1].data.startswith(PNG_MAGIC)


def test_the_figure_is_not_left_open_in_pyplot(screen):
    before = plt.get_fignums()
    plotting.LivePlot(10_000, notebook=True)
    assert plt.get_fignums() == before  # so a notebook does not show it twice


def test_in_a_terminal_it_is_a_progress_line(screen):
    plot = plotting.LivePlot(4096, notebook=False)
    plot.update({"env_steps": 2048}, [(2048, 0.1, -50.0, 80)])
    plot.update({"env_steps": 6144}, [(6144, 0.2, -30.0, 90)])
    assert plot.progress.bar.n == 4096  # capped at total_steps
    assert plot.recent_mean() == pytest.approx(-40.0)
    plot.close()
    assert plot.redraws == 0 and not screen.frames
