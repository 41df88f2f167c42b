"""The statistics of :mod:`purenn.experiments.comparison`: Student's t intervals of a mean, the
paired and Welch's t tests, a seeded bootstrap interval of a difference, the probability that a
run of one side beats a run of the other, effect sizes, and the power of a t test with the seeds
it needs. Functions of arrays of numbers (``x`` side A's values, ``y`` side B's), checked by their
caller; the distributions are SciPy's (the ``stats`` extra), never written by hand.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from purenn.errors import ArgumentError
from purenn.validation import boolean, check, integer, real

__all__ = ["ALPHA", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "CONFIDENCE", "MAX_SEEDS_NEEDED", "NO_SPREAD",
           "POWER", "bootstrap_interval", "mean_interval", "no_spread", "observed_effect_size", "power",
           "probability_better", "scipy_stats", "seeds_for_power", "state_of", "t_interval", "t_test"]

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
#: Relative standard deviation below which a sample has no spread: float rounding (0.9812 - 0.977
#: and 0.985 - 0.9808 differ in their last bits), not variation between seeds.
NO_SPREAD = 1e-12
_BOOTSTRAP_BLOCK = 2**20  # resampled indices drawn at once (8 MiB), whatever the sample sizes
# Power is 1.0 in doubles at noncentrality 1e3 for every df up to 2 * MAX_SEEDS_NEEDED; far
# beyond it SciPy's noncentral t stops converging (NaN, warnings), so larger ones are clipped to it.
_MAX_NONCENTRALITY = 1e3


def scipy_stats() -> Any:
    """:mod:`scipy.stats`, or an :class:`~purenn.errors.ArgumentError` naming the extra to install."""
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
    st = scipy_stats()
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
    st = scipy_stats()
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




# --- intervals, tests, sizes ----------------------------------------------------------------------


def _pair(values: Any) -> tuple[float, float]:
    return float(values[0]), float(values[1])


def no_spread(v: np.ndarray) -> bool:
    """Whether ``v`` does not vary: its standard deviation is at most
    ``NO_SPREAD * max(1, max |value|)`` (float rounding, not variation between seeds)."""
    return bool(np.std(v, ddof=1) <= NO_SPREAD * max(1.0, float(np.max(np.abs(v)))))


def state_of(x: np.ndarray, y: np.ndarray, paired: bool) -> str:
    """``"identical"`` (paired: equal on every seed; unpaired: no spread and the same values),
    ``"no spread"`` (the paired differences, or both sides, do not vary) or ``"tested"``."""
    if paired:
        d = y - x
        return "identical" if not d.any() else "no spread" if no_spread(d) else "tested"
    if no_spread(x) and no_spread(y):
        return "identical" if np.array_equal(np.unique(x), np.unique(y)) else "no spread"
    return "tested"


def t_interval(v: np.ndarray) -> tuple[float, float]:
    """The t confidence interval of the mean of ``v`` (the mean itself when there is no spread)."""
    mean = float(v.mean())
    if no_spread(v):
        return mean, mean
    scale = float(np.std(v, ddof=1)) / math.sqrt(len(v))
    return _pair(scipy_stats().t.interval(CONFIDENCE, len(v) - 1, loc=mean, scale=scale))


def mean_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """The :data:`CONFIDENCE` (95%) confidence interval of the mean of ``values`` from Student's t
    (``scipy.stats.t.interval``; the mean itself when they do not spread), or None for fewer than
    two values (an interval needs a spread). An :class:`~purenn.errors.ArgumentError` without SciPy."""
    scipy_stats()
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    if len(v) < 2:
        return None
    return t_interval(v)


def bootstrap_interval(x: np.ndarray, y: np.ndarray, paired: bool) -> tuple[float, float]:
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


def probability_better(x: np.ndarray, y: np.ndarray, better: str) -> float:
    """P(a run of B beats a run of A) over all len(x) * len(y) pairs, ties counting half."""
    if better == "lower":
        x, y = -x, -y
    s = np.sort(x)
    below, upto = np.searchsorted(s, y, "left"), np.searchsorted(s, y, "right")
    return float((below.sum() + 0.5 * (upto - below).sum()) / (len(x) * len(y)))


def observed_effect_size(x: np.ndarray, y: np.ndarray, paired: bool) -> float:
    """Paired: the mean of the differences y - x over their standard deviation; else Cohen's d,
    the difference of the means over the pooled standard deviation (signed as B - A)."""
    if paired:
        d = y - x
        return float(d.mean() / np.std(d, ddof=1))
    nx, ny = len(x), len(y)
    pooled = math.sqrt(((nx - 1) * np.var(x, ddof=1) + (ny - 1) * np.var(y, ddof=1)) / (nx + ny - 2))
    return float((y.mean() - x.mean()) / pooled)


def t_test(x: np.ndarray, y: np.ndarray, paired: bool) -> tuple[float, float, float, tuple[float, float]]:
    """(statistic, df, p-value, t interval of B - A) from SciPy's paired or Welch's t test."""
    st = scipy_stats()
    with warnings.catch_warnings():
        # a side of Welch's test may have no spread (then its variance is 0, harmlessly); SciPy
        # warns of "precision loss" when it computes that variance
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        result = st.ttest_rel(y, x) if paired else st.ttest_ind(y, x, equal_var=False)
        interval = _pair(result.confidence_interval(CONFIDENCE))
    return float(result.statistic), float(result.df), float(result.pvalue), interval


