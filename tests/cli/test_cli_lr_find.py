"""`purenn lr-find`: a range test of a preset on (tiny) MNIST files, its chart and suggestion in
the terminal, its picture in a real PNG file; mistakes end in messages before any training."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from purenn_cli.main import app
from purenn_cli.progress import line_chart

runner = CliRunner()


def _text(result) -> str:
    return " ".join(result.output.split())


def test_it_prints_a_chart_and_a_suggestion_and_writes_a_png(tiny_mnist, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "lr.png"
    result = runner.invoke(app, ["lr-find", "--preset", "mlp", "--limit", "256", "--steps", "60",
                                 "--start", "1e-5", "--end", "100", "--data-dir", str(tiny_mnist), "-o", str(png)])
    assert result.exit_code == 0, result.output
    text = _text(result)
    assert "smoothed training loss against the learning rate (mlp preset" in text
    assert "│" in result.output and "▲" in result.output
    assert "suggested lr" in text and "purenn mnist --preset mlp --lr" in text
    assert f"wrote {png}" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_without_matplotlib_it_says_which_extra(tiny_mnist, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = runner.invoke(app, ["lr-find", "--preset", "seed", "--limit", "50", "--steps", "10",
                                 "--data-dir", str(tiny_mnist), "-o", str(tmp_path / "lr.png")])
    assert result.exit_code == 2 and 'pip install "purenn[plot]"' in result.output
    assert not (tmp_path / "lr.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--preset", "nope"], "unknown preset 'nope'; choose one of: seed"),
    (["--start", "1", "--end", "0.1"], "--end (0.1) must be above --start (1)"),
    (["-o", "/nonexistent/dir/lr.png"], "--output: cannot write"),
    (["--dataset", "cifar"], "unknown dataset 'cifar'"),
])
def test_mistakes_are_refused_before_training(tiny_mnist, args, message):
    result = runner.invoke(app, ["lr-find", "--data-dir", str(tiny_mnist), *args])
    assert result.exit_code == 2 and message in _text(result) and "suggested" not in result.output


def test_the_chart_puts_values_in_their_rows_and_points_at_the_mark():
    lines = line_chart([1e-3, 1e-2, 1e-1, 1.0], [2.0, 1.0, 0.0, 100.0], width=4, height=3, mark=1e-1)
    # the top is 4 (twice the fall from 2 to 0): 2 and 1 round to the middle row, 100 is off the top
    assert lines[0].endswith("│   ^") and lines[1].endswith("│••  ") and lines[2].endswith("│  • ")
    assert lines[0].startswith("4 ") and lines[2].startswith("0 ")
    assert lines[4].index("▲") == lines[0].index("│") + 3  # the third column
    assert "1.0e-03" in lines[5] and "1.0e+00" in lines[5]
    assert line_chart([1.0], [1.0]) == []
