"""Comparing two recipes over seeds: does B differ from A, by how much, and how sure can we be?

:func:`compare` takes each side's runs as plain data, ``{seed: {"test_accuracy": 0.981, "loss":
0.05, "train_seconds": 11.2}, ...}`` (an experiment record's ``runs`` entries keyed by seed fit as
they are: other keys are ignored, a failed run's ``None`` is skipped), and gives, for each metric
of :data:`METRICS`, a :class:`MetricComparison`:

- each side's mean with its 95% confidence interval (Student's t);
- the difference B - A of the means, with a 95% interval from the t distribution and one from a
  seeded bootstrap (the percentile interval of :data:`BOOTSTRAP_RESAMPLES` resampled mean
  differences, drawn by ``numpy.random.default_rng(BOOTSTRAP_SEED)``: it depends only on the
  data, never on the run, the machine's other work or a process pool);
- the test: the *paired t* test when both sides ran exactly the same seeds (a seed's two runs
  share its initialisation and data order, so their difference cancels what the seed does), else
  *Welch's t* test (unequal variances allowed), with its p-value; significant when p < ALPHA;
- the probability that a run of B is better than a run of A, over all pairs of runs, ties half;
- the observed effect size (paired: mean of the differences / their standard deviation; else
  Cohen's d, the difference of the means / the pooled standard deviation) and the seeds per side
  a two-sided t test needs to detect an effect of that size with power :data:`POWER` at level
  :data:`ALPHA` (:func:`seeds_for_power`, from the noncentral t);
- one sentence that claims no more than these numbers.

Two cases need no test, and have no p-value, statistic or effect size (None, never NaN):
*identical* (paired and equal on every seed, e.g. an experiment against its own reproduction;
or unpaired, without spread, and made of the same values) and *no spread* (the paired
differences, or both sides, do not vary, so a t statistic would divide by zero: the difference is
the same in every run). A sample has no spread when its standard deviation is at most
``NO_SPREAD * max(1, max |value|)``.

The t distribution, the tests and the power come from :mod:`scipy.stats` (the ``stats`` extra:
``pip install "purenn[stats]"``); without SciPy, :func:`compare` raises an
:class:`~purenn.errors.ArgumentError` saying so.

The statistics live in :mod:`~purenn.experiments.compare_stats`, the words (metric names,
the report's lines, the sentence) in :mod:`~purenn.experiments.compare_text`; every public name
is importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError
from purenn.experiments.compare_stats import (
    ALPHA,
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    MAX_SEEDS_NEEDED,
    NO_SPREAD,
    POWER,
    bootstrap_interval,
    mean_interval,
    observed_effect_size,
    power,
    probability_better,
    scipy_stats,
    seeds_for_power,
    state_of,
    t_interval,
    t_test,
)
from purenn.experiments.compare_text import METRICS, metric_lines, seed_text, sentence
from purenn.experiments.seeds import MAX_SEEDS
from purenn.validation import check, integer, real

__all__ = ["ALPHA", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "CONFIDENCE", "MAX_ABS_VALUE",
           "MAX_SEEDS_NEEDED", "METRICS", "NO_SPREAD", "POWER", "Comparison", "MetricComparison",
           "compare", "mean_interval", "power", "seeds_for_power"]

#: The largest magnitude of a metric value accepted: accuracies, losses and seconds are far
#: below it, and sums and squares of up to MAX_SEEDS such values stay far from overflow.
MAX_ABS_VALUE = 1e12

_value_rule = real(-MAX_ABS_VALUE, MAX_ABS_VALUE, high_open=False)


# --- the result ---------------------------------------------------------------------------------


@attrs.frozen
class MetricComparison:
    """The comparison of one metric between A and B (see the module's docstring).

    ``better`` is ``"higher"`` or ``"lower"``; ``difference`` is mean B - mean A (paired: also
    the mean of the differences), ``t_interval`` and ``bootstrap_interval`` its 95% intervals;
    ``state`` is ``"tested"``, ``"identical"`` or ``"no spread"`` (then ``statistic``, ``df``,
    ``p_value`` and ``effect_size`` are None and the intervals degenerate to the difference);
    ``test`` is ``"paired t"`` or ``"Welch's t"`` and ``test_reason`` why; ``probability_b_better``
    the chance a run of B beats a run of A; ``effect_size`` signed as B - A; ``seeds_needed`` per
    side for power :data:`POWER` (None: see :attr:`seeds_needed_text`); ``conclusion`` the sentence.
    """

    metric: str
    better: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    interval_a: tuple[float, float]
    interval_b: tuple[float, float]
    difference: float
    t_interval: tuple[float, float]
    bootstrap_interval: tuple[float, float]
    state: str
    test: str
    test_reason: str
    statistic: float | None
    df: float | None
    p_value: float | None
    probability_b_better: float
    effect_size: float | None
    seeds_needed: int | None
    conclusion: str

    @property
    def significant(self) -> bool:
        """Tested, with p < :data:`ALPHA`."""
        return self.p_value is not None and self.p_value < ALPHA

    @property
    def seeds_needed_text(self) -> str:
        """:attr:`seeds_needed` in words, saying why when there is no number."""
        if self.seeds_needed is not None:
            return f"{self.seeds_needed:,}"
        if self.effect_size is None:
            return f"not applicable ({self.state})"
        if self.effect_size == 0:
            return "none (the observed difference is zero)"
        return f"more than {MAX_SEEDS_NEEDED:,}"

    def to_data(self) -> dict[str, Any]:
        """The fields as JSON data (lists for pairs), with ``significant`` and ``seeds_needed_text``."""
        data = {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.asdict(self).items()}
        data.update(significant=self.significant, seeds_needed_text=self.seeds_needed_text)
        return data


# --- both sides ---------------------------------------------------------------------------------


@attrs.frozen
class Comparison:
    """:func:`compare`'s result: the labels, each side's seeds (sorted) and one
    :class:`MetricComparison` per metric compared, in :data:`METRICS`' order."""

    label_a: str
    label_b: str
    seeds_a: tuple[int, ...]
    seeds_b: tuple[int, ...]
    metrics: tuple[MetricComparison, ...]

    def __getitem__(self, metric: str) -> MetricComparison:
        for m in self.metrics:
            if m.metric == metric:
                return m
        raise KeyError(f"{metric!r} was not compared; compared: {[m.metric for m in self.metrics]}")

    @property
    def conclusion(self) -> str:
        """The sentences of every metric compared, the first metric's first."""
        return " ".join(m.conclusion for m in self.metrics)

    def to_data(self) -> dict[str, Any]:
        """Everything as JSON data (no NaN or infinity anywhere), with the settings used."""
        return {
            "labels": {"a": self.label_a, "b": self.label_b},
            "seeds": {"a": list(self.seeds_a), "b": list(self.seeds_b)},
            "settings": {"confidence": CONFIDENCE, "alpha": ALPHA, "power": POWER,
                         "bootstrap_seed": BOOTSTRAP_SEED, "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
                         "max_seeds_needed": MAX_SEEDS_NEEDED},
            "metrics": {m.metric: m.to_data() for m in self.metrics},
            "conclusion": self.conclusion,
        }

    def to_text(self) -> str:
        """A plain-text report: a few lines per metric, each ending with its sentence."""
        header = (f"A = {self.label_a} (seeds {seed_text(self.seeds_a)}), "
                  f"B = {self.label_b} (seeds {seed_text(self.seeds_b)})")
        lines = [header]
        for m in self.metrics:
            lines += ["", *metric_lines(m)]
        return "\n".join(lines)



# --- comparing ----------------------------------------------------------------------------------


def _compare_metric(metric: str, a: dict[int, float], b: dict[int, float],
                    labels: tuple[str, str]) -> MetricComparison:
    x, y = np.array(list(a.values())), np.array(list(b.values()))
    paired = list(a) == list(b)
    state = state_of(x, y, paired)
    difference = float(y.mean() - x.mean())
    statistic = df = p = effect = None
    interval = (difference, difference)
    if state == "tested":
        statistic, df, p, interval = t_test(x, y, paired)
        effect = observed_effect_size(x, y, paired)
    if paired:
        reason = f"both ran the same {len(x)} seeds ({seed_text(a)})"
    else:
        reason = (f"different seeds ({labels[0]}: {seed_text(a)}; {labels[1]}: {seed_text(b)}), "
                  "so runs cannot be paired")
    better = METRICS[metric][1]
    result = MetricComparison(
        metric=metric, better=better, n_a=len(x), n_b=len(y), mean_a=float(x.mean()), mean_b=float(y.mean()),
        interval_a=t_interval(x), interval_b=t_interval(y), difference=difference, t_interval=interval,
        bootstrap_interval=bootstrap_interval(x, y, paired), state=state, test="paired t" if paired else "Welch's t",
        test_reason=reason, statistic=statistic, df=df, p_value=p,
        probability_b_better=probability_better(x, y, better), effect_size=effect,
        seeds_needed=None if effect is None else seeds_for_power(effect, paired=paired), conclusion="")
    return attrs.evolve(result, conclusion=sentence(result, labels))


# --- input --------------------------------------------------------------------------------------


def _check_side(side: Any, label: str) -> None:
    if not isinstance(side, Mapping):
        raise ArgumentTypeError(f"side {label!r} must be a mapping seed -> metric values, got "
                                f"{type(side).__name__}")
    if not 1 <= len(side) <= MAX_SEEDS:
        raise ArgumentError(f"side {label!r} must hold 1 to {MAX_SEEDS} runs, got {len(side)}")
    for seed, run in side.items():
        check(f"seed of side {label!r}", seed, integer(0))
        if not isinstance(run, Mapping):
            raise ArgumentTypeError(f"side {label!r}, seed {seed}: the run must be a mapping metric -> "
                                    f"value, got {type(run).__name__}")


def _values(side: Mapping[Any, Mapping[str, Any]], label: str, metric: str) -> dict[int, float]:
    """The runs of ``side`` that have a value of ``metric``, by seed in increasing order."""
    out = {}
    for seed in sorted(side):
        value = side[seed].get(metric)
        if value is None:
            continue
        try:
            _value_rule.check(metric, value)
        except ArgumentError as e:
            raise type(e)(f"side {label!r}, seed {seed}: {e}") from None
        out[int(seed)] = float(value)
    return out


def _metrics(a: Mapping[Any, Any], b: Mapping[Any, Any], metrics: Sequence[str] | None) -> list[str]:
    if metrics is None:
        found = [m for m in METRICS if any(r.get(m) is not None for r in a.values())
                 and any(r.get(m) is not None for r in b.values())]
        if not found:
            raise ArgumentError(f"the two sides have no metric of {tuple(METRICS)} in common to compare")
        return found
    if (isinstance(metrics, str) or not isinstance(metrics, Sequence) or not metrics
            or any(not isinstance(m, str) or m not in METRICS for m in metrics)):
        raise ArgumentError(
            f"`metrics` must be a non-empty list of names from {tuple(METRICS)}, got {metrics!r:.80}")
    return [m for m in METRICS if m in metrics]


def compare(a: Mapping[int, Mapping[str, Any]], b: Mapping[int, Mapping[str, Any]], *,
            labels: tuple[str, str] = ("A", "B"), metrics: Sequence[str] | None = None) -> Comparison:
    """Compare recipe B with recipe A over seeds (see the module's docstring for every number).

    ``a`` and ``b`` map each seed (a non-negative int) to its run's metric values (finite, at most
    :data:`MAX_ABS_VALUE` in size, or None for a run without it); other keys are ignored.
    ``metrics`` names the metrics to compare (default: every metric of :data:`METRICS` both sides
    have); each needs values from at least 2 runs per side. The order of the mappings does not
    matter. Raises :class:`~purenn.errors.ArgumentError` for bad input or without SciPy.
    """
    if (not isinstance(labels, tuple) or len(labels) != 2
            or not all(isinstance(s, str) and s.strip() for s in labels)):
        raise ArgumentError(f"`labels` must be a pair of non-empty strings, got {labels!r:.80}")
    _check_side(a, labels[0])
    _check_side(b, labels[1])
    names = _metrics(a, b, metrics)
    scipy_stats()
    results = []
    for metric in names:
        va, vb = _values(a, labels[0], metric), _values(b, labels[1], metric)
        for label, values in ((labels[0], va), (labels[1], vb)):
            if len(values) < 2:
                raise ArgumentError(
                    f"side {label!r} has {len(values)} run(s) with a value of `{metric}`; comparing "
                    "needs at least 2 per side (an interval needs a spread): run more seeds")
        results.append(_compare_metric(metric, va, vb, labels))
    return Comparison(labels[0], labels[1], tuple(sorted(int(s) for s in a)),
                      tuple(sorted(int(s) for s in b)), tuple(results))
