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
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError
from purenn.experiments.seeds import MAX_SEEDS
from purenn.validation import boolean, check, integer, real

__all__ = ["ALPHA", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "CONFIDENCE", "MAX_ABS_VALUE",
           "MAX_SEEDS_NEEDED", "METRICS", "NO_SPREAD", "POWER", "Comparison", "MetricComparison",
           "compare", "mean_interval", "power", "seeds_for_power"]

#: The metrics compared, in order: the words for them, which way is better, their unit.
METRICS: dict[str, tuple[str, str, str]] = {
    "test_accuracy": ("test accuracy", "higher", ""),
    "loss": ("final loss", "lower", ""),
    "train_seconds": ("training time", "lower", " s"),
}
ALPHA = 0.05  #: the tests' two-sided level
CONFIDENCE = 1 - ALPHA  #: of every interval (0.95)
POWER = 0.8  #: the power :func:`seeds_for_power` aims at
#: The bootstrap generator's seed (any fixed number would do; fixed so the interval is a function
#: of the data alone, byte for byte).
BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 10_000  #: resampled mean differences per bootstrap interval
#: The most seeds per side :func:`seeds_for_power` answers (beyond it: None, "more than 10,000"),
#: so a tiny effect ends the search instead of looping; 10,000 seeds is already no experiment's size.
MAX_SEEDS_NEEDED = 10_000
#: The largest magnitude of a metric value accepted: accuracies, losses and seconds are far
#: below it, and sums and squares of up to MAX_SEEDS such values stay far from overflow.
MAX_ABS_VALUE = 1e12
#: Relative standard deviation below which a sample has no spread: float rounding (0.9812 - 0.977
#: and 0.985 - 0.9808 differ in their last bits), not variation between seeds.
NO_SPREAD = 1e-12
_BOOTSTRAP_BLOCK = 2**20  # resampled indices drawn at once (8 MiB), whatever the sample sizes
# Power is 1.0 in doubles at noncentrality 1e3 for every df up to 2 * MAX_SEEDS_NEEDED; far
# beyond it SciPy's noncentral t stops converging (NaN, warnings), so larger ones are clipped to it.
_MAX_NONCENTRALITY = 1e3

_value_rule = real(-MAX_ABS_VALUE, MAX_ABS_VALUE, high_open=False)


def _scipy_stats() -> Any:
    try:
        from scipy import stats
    except ImportError:
        raise ArgumentError(
            "comparing experiments needs SciPy (its t distribution, t tests and noncentral t): "
            "pip install \"purenn[stats]\"") from None
    return stats


# --- power --------------------------------------------------------------------------------------


def power(effect_size: float, n: int, *, paired: bool) -> float:
    """The probability that a two-sided t test at level :data:`ALPHA` detects a true difference of
    ``effect_size`` standard deviations with ``n`` seeds per side (``paired``: ``n`` pairs,
    df = n - 1, noncentrality d * sqrt(n); else two groups of ``n``, df = 2n - 2, noncentrality
    d * sqrt(n / 2)): P(|T| > t_crit) for T noncentral t. The lower tail P(T < -t_crit) is
    computed as P(T' > t_crit) for T' of noncentrality -d, where SciPy stays accurate (its cdf
    far in the lower tail gives NaN, e.g. df = 500, noncentrality 10)."""
    d = check("effect_size", effect_size, real())
    check("n", n, integer(2))
    check("paired", paired, boolean)
    st = _scipy_stats()
    df = n - 1 if paired else 2 * n - 2
    nc = min(abs(d) * math.sqrt(n if paired else n / 2), _MAX_NONCENTRALITY)
    crit = st.t.ppf(1 - ALPHA / 2, df)
    return float(st.nct.sf(crit, df, nc) + st.nct.sf(crit, df, -nc))


def seeds_for_power(effect_size: float, *, paired: bool) -> int | None:
    """The fewest seeds per side (``paired``: pairs; at least 2) whose :func:`power` reaches
    :data:`POWER`, or None when no number up to :data:`MAX_SEEDS_NEEDED` does (a zero effect is
    never detected: its power stays ALPHA). Tables agree: d = 0.5 needs 34 pairs, or 64 per group.

    The search starts from the normal approximation ((z_{1-ALPHA/2} + z_POWER) / d)^2 (times 2
    for two groups), which the t test needs a few more than, and steps one seed at a time from
    there: power grows with n, so the first n reaching POWER is the answer."""
    d = check("effect_size", effect_size, real())
    if d == 0:
        return None
    st = _scipy_stats()
    guess = ((st.norm.ppf(1 - ALPHA / 2) + st.norm.ppf(POWER)) / abs(d)) ** 2 * (1 if paired else 2)
    n = max(2, math.ceil(min(guess, MAX_SEEDS_NEEDED)))
    if power(d, n, paired=paired) >= POWER:
        while n > 2 and power(d, n - 1, paired=paired) >= POWER:
            n -= 1
        return n
    while n < MAX_SEEDS_NEEDED:
        n += 1
        if power(d, n, paired=paired) >= POWER:
            return n
    return None


# --- one metric ---------------------------------------------------------------------------------


def _pair(values: Any) -> tuple[float, float]:
    return float(values[0]), float(values[1])


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
        data = attrs.asdict(self)
        data.update(significant=self.significant, seeds_needed_text=self.seeds_needed_text)
        return data


def _no_spread(v: np.ndarray) -> bool:
    return bool(np.std(v, ddof=1) <= NO_SPREAD * max(1.0, float(np.max(np.abs(v)))))


def _state(x: np.ndarray, y: np.ndarray, paired: bool) -> str:
    if paired:
        d = y - x
        return "identical" if not d.any() else "no spread" if _no_spread(d) else "tested"
    if _no_spread(x) and _no_spread(y):
        return "identical" if np.array_equal(np.unique(x), np.unique(y)) else "no spread"
    return "tested"


def _interval(v: np.ndarray) -> tuple[float, float]:
    """The t confidence interval of the mean of ``v`` (the mean itself when there is no spread)."""
    mean = float(v.mean())
    if _no_spread(v):
        return mean, mean
    scale = float(np.std(v, ddof=1)) / math.sqrt(len(v))
    return _pair(_scipy_stats().t.interval(CONFIDENCE, len(v) - 1, loc=mean, scale=scale))


def mean_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """The :data:`CONFIDENCE` (95%) confidence interval of the mean of ``values`` from Student's t
    (``scipy.stats.t.interval``; the mean itself when they do not spread), or None for fewer than
    two values (an interval needs a spread). An :class:`~purenn.errors.ArgumentError` without SciPy."""
    _scipy_stats()
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    if len(v) < 2:
        return None
    return _interval(v)


def _bootstrap(x: np.ndarray, y: np.ndarray, paired: bool) -> tuple[float, float]:
    """The percentile interval of BOOTSTRAP_RESAMPLES resampled mean differences: paired, the
    mean of the differences y - x resampled with replacement; else mean(y*) - mean(x*), each side
    resampled on its own. Drawn by ``default_rng(BOOTSTRAP_SEED)`` in blocks of resamples, each
    block's indices ``integers(0, n, size=(rows, n))`` (x's, then y's when unpaired), rows fixed
    by the sizes alone; quantiles by NumPy's default (linear) method."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    rows = max(1, _BOOTSTRAP_BLOCK // max(len(x), len(y)))
    means, d = [], (y - x if paired else None)
    for start in range(0, BOOTSTRAP_RESAMPLES, rows):
        k = min(rows, BOOTSTRAP_RESAMPLES - start)
        if d is not None:
            means.append(d[rng.integers(0, len(d), size=(k, len(d)))].mean(axis=1))
        else:
            mx = x[rng.integers(0, len(x), size=(k, len(x)))].mean(axis=1)
            means.append(y[rng.integers(0, len(y), size=(k, len(y)))].mean(axis=1) - mx)
    return _pair(np.quantile(np.concatenate(means), [ALPHA / 2, 1 - ALPHA / 2]))


def _probability_better(x: np.ndarray, y: np.ndarray, better: str) -> float:
    """P(a run of B beats a run of A) over all len(x) * len(y) pairs, ties counting half."""
    if better == "lower":
        x, y = -x, -y
    s = np.sort(x)
    below, upto = np.searchsorted(s, y, "left"), np.searchsorted(s, y, "right")
    return float((below.sum() + 0.5 * (upto - below).sum()) / (len(x) * len(y)))


def _effect_size(x: np.ndarray, y: np.ndarray, paired: bool) -> float:
    if paired:
        d = y - x
        return float(d.mean() / np.std(d, ddof=1))
    nx, ny = len(x), len(y)
    pooled = math.sqrt(((nx - 1) * np.var(x, ddof=1) + (ny - 1) * np.var(y, ddof=1)) / (nx + ny - 2))
    return float((y.mean() - x.mean()) / pooled)


def _t_test(x: np.ndarray, y: np.ndarray, paired: bool) -> tuple[float, float, float, tuple[float, float]]:
    """(statistic, df, p-value, t interval of B - A) from SciPy's paired or Welch's t test."""
    st = _scipy_stats()
    with warnings.catch_warnings():
        # a side of Welch's test may have no spread (then its variance is 0, harmlessly); SciPy
        # warns of "precision loss" when it computes that variance
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        result = st.ttest_rel(y, x) if paired else st.ttest_ind(y, x, equal_var=False)
        interval = _pair(result.confidence_interval(CONFIDENCE))
    return float(result.statistic), float(result.df), float(result.pvalue), interval


def _compare_metric(metric: str, a: dict[int, float], b: dict[int, float],
                    labels: tuple[str, str]) -> MetricComparison:
    x, y = np.array(list(a.values())), np.array(list(b.values()))
    paired = list(a) == list(b)
    state = _state(x, y, paired)
    difference = float(y.mean() - x.mean())
    statistic = df = p = effect = None
    t_interval = (difference, difference)
    if state == "tested":
        statistic, df, p, t_interval = _t_test(x, y, paired)
        effect = _effect_size(x, y, paired)
    if paired:
        reason = f"both ran the same {len(x)} seeds ({_seed_text(a)})"
    else:
        reason = (f"different seeds ({labels[0]}: {_seed_text(a)}; {labels[1]}: {_seed_text(b)}), "
                  "so runs cannot be paired")
    better = METRICS[metric][1]
    result = MetricComparison(
        metric=metric, better=better, n_a=len(x), n_b=len(y), mean_a=float(x.mean()), mean_b=float(y.mean()),
        interval_a=_interval(x), interval_b=_interval(y), difference=difference, t_interval=t_interval,
        bootstrap_interval=_bootstrap(x, y, paired), state=state, test="paired t" if paired else "Welch's t",
        test_reason=reason, statistic=statistic, df=df, p_value=p,
        probability_b_better=_probability_better(x, y, better), effect_size=effect,
        seeds_needed=None if effect is None else seeds_for_power(effect, paired=paired), conclusion="")
    return attrs.evolve(result, conclusion=_sentence(result, labels))


def _seed_text(seeds: Sequence[int] | Mapping[int, Any]) -> str:
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


def _sentence(m: MetricComparison, labels: tuple[str, str]) -> str:
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
        header = (f"A = {self.label_a} (seeds {_seed_text(self.seeds_a)}), "
                  f"B = {self.label_b} (seeds {_seed_text(self.seeds_b)})")
        lines = [header]
        for m in self.metrics:
            lines += ["", *_metric_lines(m)]
        return "\n".join(lines)


def _metric_lines(m: MetricComparison) -> list[str]:
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
    _scipy_stats()
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
