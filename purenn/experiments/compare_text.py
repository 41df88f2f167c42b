"""The words of :mod:`purenn.experiments.comparison`: what each metric is called and which way is
better (:data:`METRICS`), seeds written as ranges, one metric's lines of the plain-text report and
the one sentence that claims no more than its numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from purenn.experiments.compare_stats import ALPHA, MAX_SEEDS_NEEDED, POWER

if TYPE_CHECKING:
    from purenn.experiments.comparison import MetricComparison

__all__ = ["METRICS", "metric_lines", "seed_text", "sentence"]

#: The metrics compared, in order: the words for them, which way is better, their unit.
METRICS: dict[str, tuple[str, str, str]] = {
    "test_accuracy": ("test accuracy", "higher", ""),
    "loss": ("final loss", "lower", ""),
    "train_seconds": ("training time", "lower", " s"),
}


def seed_text(seeds: Sequence[int] | Mapping[int, Any]) -> str:
    """Sorted seeds as ranges: 0-4,7,9-10."""
    parts: list[str] = []
    ordered = list(seeds)
    start = 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or ordered[i] != ordered[i - 1] + 1:
            low, high = ordered[start], ordered[i - 1]
            parts.append(str(low) if low == high else f"{low}-{high}")
            start = i
    return ",".join(parts)


def _g(value: float, unit: str = "", sign: bool = False) -> str:
    return f"{value:{'+' if sign else ''}.4g}{unit}"


def _p_text(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.2g}"


def sentence(m: MetricComparison, labels: tuple[str, str]) -> str:
    """One sentence that claims no more than the numbers of ``m``."""
    (a, b), (words, _, unit) = labels, METRICS[m.metric]
    seeds = f"{m.n_a} seeds" if m.n_a == m.n_b else f"{m.n_a} and {m.n_b} seeds"
    if m.state == "identical":
        return f"{a} and {b} give identical {words} results ({seeds})."
    if m.state == "no spread":
        where = "on every seed" if m.test == "paired t" else "in every run"
        return (f"{b} - {a} = {_g(m.difference, unit, True)} in {words} {where} ({seeds}, no spread, "
                "so no test applies).")
    lo, hi = m.t_interval
    if m.significant:
        verdict = "better" if (m.difference > 0) == (m.better == "higher") else "worse"
        return (f"{b} is {verdict} than {a} in {words}: {b} - {a} = {_g(m.difference, unit, True)} "
                f"(95% interval {_g(lo, unit, True)} to {_g(hi, unit, True)}), "
                f"{_p_text(m.p_value or 0.0)} ({m.test}, {seeds}).")
    start = (f"No difference in {words} detectable with {seeds} ({b} - {a} = "
             f"{_g(m.difference, unit, True)}, {_p_text(m.p_value or 0.0)}, {m.test})")
    if m.seeds_needed is not None:
        return f"{start}; about {m.seeds_needed:,} seeds per recipe would detect one of this size."
    if m.effect_size == 0:
        return f"{start}; the observed difference is zero, so no number of seeds would detect it."
    return (f"{start}; more than {MAX_SEEDS_NEEDED:,} seeds per recipe would be needed to detect one of "
            "this size.")


def metric_lines(m: MetricComparison) -> list[str]:
    """The report's lines of one metric: each side's mean and interval, the difference with its
    intervals, the test, the probability of beating, the seeds needed and the sentence."""
    words, better, unit = METRICS[m.metric]

    def span(pair: tuple[float, float], sign: bool = False) -> str:
        return f"{_g(pair[0], unit, sign)} to {_g(pair[1], unit, sign)}"

    if m.statistic is not None and m.df is not None and m.p_value is not None:
        test = f"{m.test}: t = {m.statistic:.3g}, df = {m.df:.3g}, {_p_text(m.p_value)}"
    else:
        test = f"{m.test}: no test ({m.state})"
    return [
        f"{words} ({better} is better)",
        f"  A  mean {_g(m.mean_a, unit)}  95% CI {span(m.interval_a)}  (n = {m.n_a})",
        f"  B  mean {_g(m.mean_b, unit)}  95% CI {span(m.interval_b)}  (n = {m.n_b})",
        (f"  B - A  {_g(m.difference, unit, True)}  95% interval: t {span(m.t_interval, True)}, "
         f"bootstrap {span(m.bootstrap_interval, True)}"),
        f"  {test}; {m.test_reason}",
        f"  P(a run of B beats a run of A) = {m.probability_b_better:.2f}",
        f"  seeds per recipe for power {POWER:g} at {ALPHA:.0%}: {m.seeds_needed_text}",
        f"  {m.conclusion}",
    ]
