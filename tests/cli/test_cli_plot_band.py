"""`purenn plot --band std|ci|minmax`: the band around an experiment's mean over seeds, per epoch,
is the sample standard deviation's, Student's t 95% interval of the mean, or the min to max; the
figure says which."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import purenn_cli.plot as plot_module
from purenn.errors import ArgumentError
from purenn.experiments.record import make_experiment, pending_entry, write_experiment
from purenn_cli.main import app
from purenn_cli.plot import BANDS, band

st = pytest.importorskip("scipy.stats", reason='the `stats` extra is not installed: pip install "purenn[stats]"')
runner = CliRunner()
VALUES = [0.9712, 0.9735, 0.9701, 0.9758, 0.9722]
# per run (seed), per epoch: (loss, val_accuracy)
CURVES = [[(0.9, 0.50), (0.5, 0.71), (0.3, 0.80)],
          [(1.1, 0.46), (0.4, 0.75), (0.2, 0.86)],
          [(0.7, 0.55), (0.6, 0.69), (0.25, 0.83)],
          [(1.0, 0.40), (0.45, 0.77), (0.28, 0.81)]]


def reference(values, kind):
    """The band computed here, from NumPy and SciPy directly."""
    v = np.array(values)
    mean, std = v.mean(), v.std(ddof=1)
    if kind == "std":
        return mean - std, mean + std
    if kind == "ci":
        return st.t.interval(0.95, len(v) - 1, loc=mean, scale=std / math.sqrt(len(v)))
    return v.min(), v.max()


@pytest.mark.parametrize("kind", list(BANDS))
def test_band_is_the_numpy_and_scipy_one(kind):
    low, high = band(VALUES, kind)
    assert (low, high) == pytest.approx(reference(VALUES, kind), rel=1e-12)
    assert low < np.mean(VALUES) < high


def test_the_bands_differ_as_they_should():
    (s_low, s_high), (c_low, c_high), (m_low, m_high) = (band(VALUES, k) for k in ("std", "ci", "minmax"))
    # five seeds: the 95% interval of the mean is t_{0.975, 4} / sqrt(5) = 1.24 times as wide as ±1 std
    assert (c_high - c_low) / (s_high - s_low) == pytest.approx(st.t.ppf(0.975, 4) / math.sqrt(5), rel=1e-12)
    assert (m_low, m_high) == (min(VALUES), max(VALUES))


@pytest.mark.parametrize("kind", list(BANDS))
def test_one_run_has_a_band_of_its_value(kind):
    assert band([0.5], kind) == (0.5, 0.5)


def test_an_unknown_band_is_refused():
    with pytest.raises(ArgumentError, match="`kind` must be one of"):
        band(VALUES, "iqr")


def write_experiment_with_curves(path):
    runs = [{**pending_entry(0, seed), "status": "ok", "attempts": 1, "seconds": 1.0,
             "metrics": {"loss": curve[-1][0]},
             "history": [{"epoch": i + 1, "loss": loss, "val_accuracy": acc} for i, (loss, acc) in enumerate(curve)]}
            for seed, curve in enumerate(CURVES)]
    write_experiment(path, make_experiment(kind="function", function="mymodule:train", settings={}, grid={},
                                           seeds=list(range(len(CURVES))), runs=runs, jobs=1, scheduler=None))


def drawn_band(figure, panel):
    """(lows, highs) per epoch of the band (fill_between's polygon) in ``panel`` of ``figure``."""
    [collection] = figure.axes[panel].collections
    vertices = collection.get_paths()[0].vertices
    lows, highs = {}, {}
    for x, y in vertices:
        lows[x] = min(lows.get(x, y), y)
        highs[x] = max(highs.get(x, y), y)
    return [lows[e] for e in (1, 2, 3)], [highs[e] for e in (1, 2, 3)]


@pytest.mark.parametrize("kind", list(BANDS))
def test_the_cli_draws_the_band_it_is_asked_for_and_says_which(kind, tmp_path, monkeypatch):
    record, picture = tmp_path / "exp.json", tmp_path / "curves.png"
    write_experiment_with_curves(record)
    figures = []
    make_figure = plot_module.make_figure
    monkeypatch.setattr(plot_module, "make_figure", lambda *a: figures.append(make_figure(*a)) or figures[-1])
    result = runner.invoke(app, ["plot", str(record), "--band", kind, "-o", str(picture)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert BANDS[kind] in result.output and picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    [figure] = figures
    assert figure.get_supxlabel() == BANDS[kind]
    for panel, column in ((0, 0), (1, 1)):
        per_epoch = [[curve[e][column] for curve in CURVES] for e in range(3)]
        lows, highs = drawn_band(figure, panel)
        expected = [reference(v, kind) for v in per_epoch]
        assert lows == pytest.approx([e[0] for e in expected], rel=1e-9)
        assert highs == pytest.approx([e[1] for e in expected], rel=1e-9)


def test_the_default_band_is_std(tmp_path, monkeypatch):
    record = tmp_path / "exp.json"
    write_experiment_with_curves(record)
    result = runner.invoke(app, ["plot", str(record), "-o", str(tmp_path / "c.png")], env={"COLUMNS": "300"})
    assert result.exit_code == 0 and BANDS["std"] in result.output


def test_a_bad_band_and_ci_without_scipy_are_refused(tmp_path, monkeypatch):
    record = tmp_path / "exp.json"
    write_experiment_with_curves(record)
    args = ["plot", str(record), "-o", str(tmp_path / "c.png")]
    bad = runner.invoke(app, [*args, "--band", "sem"], env={"COLUMNS": "300"})
    assert bad.exit_code == 2 and "--band must be one of std, ci, minmax, got 'sem'" in bad.output
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    no_scipy = runner.invoke(app, [*args, "--band", "ci"], env={"COLUMNS": "300"})
    assert no_scipy.exit_code == 2 and 'pip install "purenn[stats]"' in no_scipy.output
    assert not (tmp_path / "c.png").exists()
    assert runner.invoke(app, [*args, "--band", "minmax"]).exit_code == 0  # minmax needs no SciPy


def test_the_accuracy_panel_names_the_set_it_was_measured_on(tiny_mnist, tmp_path, monkeypatch):
    """Per-epoch accuracy is the validation set's with --validation, the test set's without; a
    figure of both says "held-out" and labels each curve with its set."""
    common = ["mnist", "--preset", "seed", "--epochs", "2", "--limit", "200", "--threads", "1",
              "--data-dir", str(tiny_mnist)]
    held, plain = tmp_path / "held.json", tmp_path / "plain.json"
    for extra, path in ((["--validation", "0.2"], held), ([], plain)):
        result = runner.invoke(app, [*common, *extra, "--record", str(path)])
        assert result.exit_code == 0, result.output
    figures = []
    make_figure = plot_module.make_figure
    monkeypatch.setattr(plot_module, "make_figure", lambda *a: figures.append(make_figure(*a)) or figures[-1])
    for files in ([held], [plain], [held, plain]):
        result = runner.invoke(app, ["plot", *map(str, files), "-o", str(tmp_path / "c.png")],
                               env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.output
    titles = [f.axes[1].get_title() for f in figures]
    assert titles == ["validation accuracy per epoch", "test accuracy per epoch",
                      "held-out accuracy per epoch"]
    labels = [line.get_label() for line in figures[-1].axes[1].get_lines()]
    assert labels == ["held [validation]", "plain [test]"]


def test_a_study_of_your_own_function_plots_its_validation_accuracy(tmp_path, monkeypatch):
    record = tmp_path / "exp.json"
    write_experiment_with_curves(record)  # kind "function": fit(validation=...) measured it
    figures = []
    make_figure = plot_module.make_figure
    monkeypatch.setattr(plot_module, "make_figure", lambda *a: figures.append(make_figure(*a)) or figures[-1])
    result = runner.invoke(app, ["plot", str(record), "-o", str(tmp_path / "c.png")], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert figures[0].axes[1].get_title() == "validation accuracy per epoch"


@pytest.mark.parametrize("scale", [1.0, 1e155, 1e290])
def test_the_ci_band_of_large_values_is_finite_and_scipys(scale):
    """Values plot accepts (up to MAX_DRAWN) give the t interval, finite, without a warning
    (a standard deviation computed by squaring would overflow above about 1e154)."""
    values = [1.0 * scale, 3.0 * scale, 2.0 * scale]
    low, high = band(values, "ci")
    half = st.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (low, high) == pytest.approx((2.0 * scale - half * scale, 2.0 * scale + half * scale), rel=1e-12)
