"""Comparing two recipes over seeds (purenn.experiments.comparison): the tests' numbers are SciPy's
and the textbook formulas', power agrees with the standard tables, the bootstrap depends only on
the data, a known difference is detected and equal recipes are flagged at the 5% rate, and no NaN
ever reaches the data or the sentence."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from purenn.errors import ArgumentError, ArgumentTypeError
from purenn.experiments import comparison as cmp
from purenn.experiments import record
from purenn.experiments.comparison import (
    ALPHA,
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    MAX_ABS_VALUE,
    MAX_SEEDS_NEEDED,
    NO_SPREAD,
    compare,
    power,
    seeds_for_power,
)
from purenn.experiments.seeds import MAX_SEEDS

NO_STATS = 'the `stats` extra is not installed: pip install "purenn[stats]"'
st = pytest.importorskip("scipy.stats", reason=NO_STATS)
scipy_optimize = pytest.importorskip("scipy.optimize", reason=NO_STATS)

X = np.array([0.9712, 0.9735, 0.9701, 0.9758, 0.9722])
Y = np.array([0.9741, 0.9748, 0.9739, 0.9779, 0.9730])
Y7 = np.array([0.9751, 0.9702, 0.9779, 0.9760, 0.9733, 0.9790, 0.9744])


def side(values, metric="test_accuracy", first_seed=0):
    return {first_seed + i: {metric: float(v)} for i, v in enumerate(values)}


def one(a, b, metric="test_accuracy", **kw):
    return compare(a, b, **kw)[metric]


# ---------------------------------------------------------------- the numbers are SciPy's and the formulas'


def test_paired_t_equals_ttest_rel_and_t_interval():
    m = one(side(X), side(Y))
    d = Y - X
    reference = st.ttest_rel(Y, X)
    sem = d.std(ddof=1) / math.sqrt(len(d))
    assert m.test == "paired t" and "same 5 seeds" in m.test_reason
    assert m.p_value == pytest.approx(reference.pvalue, rel=1e-12, abs=0)
    assert m.p_value == pytest.approx(2 * st.t.sf(abs(d.mean() / sem), len(d) - 1), rel=1e-12)
    assert m.statistic == pytest.approx(d.mean() / sem, rel=1e-12) and m.df == len(d) - 1
    assert m.t_interval == pytest.approx(st.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=sem), rel=1e-12)
    assert m.difference == pytest.approx(d.mean(), rel=1e-12)


def test_welch_t_equals_ttest_ind_unequal_variances_and_t_interval():
    m = one(side(X), side(Y7, first_seed=5))
    reference = st.ttest_ind(Y7, X, equal_var=False)
    va, vb = X.var(ddof=1) / len(X), Y7.var(ddof=1) / len(Y7)
    df = (va + vb) ** 2 / (va**2 / (len(X) - 1) + vb**2 / (len(Y7) - 1))  # Welch-Satterthwaite
    diff = Y7.mean() - X.mean()
    assert m.test == "Welch's t" and "different seeds" in m.test_reason and "0-4" in m.test_reason
    assert m.p_value == pytest.approx(reference.pvalue, rel=1e-12, abs=0)
    assert m.p_value == pytest.approx(2 * st.t.sf(abs(diff / math.sqrt(va + vb)), df), rel=1e-12)
    assert m.df == pytest.approx(df, rel=1e-12) and (m.n_a, m.n_b) == (5, 7)
    expected = st.t.interval(0.95, df, loc=diff, scale=math.sqrt(va + vb))
    assert m.t_interval == pytest.approx(expected, rel=1e-12)


def test_one_seed_more_on_one_side_is_no_longer_paired():
    b = side(Y)
    b[5] = {"test_accuracy": 0.975}
    assert one(side(X), b).test == "Welch's t"


def test_each_sides_mean_interval_is_the_t_interval():
    m = one(side(X), side(Y7, first_seed=5))
    for values, mean, interval in ((X, m.mean_a, m.interval_a), (Y7, m.mean_b, m.interval_b)):
        sem = values.std(ddof=1) / math.sqrt(len(values))
        assert mean == pytest.approx(values.mean(), rel=1e-15)
        assert interval == pytest.approx(st.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=sem),
                                         rel=1e-12)


def test_the_order_of_the_mappings_does_not_matter():
    a, b = side(X), side(Y)
    reversed_a = dict(reversed(list(a.items())))
    assert compare(reversed_a, b).to_data() == compare(a, b).to_data()


# ---------------------------------------------------------------- power


@pytest.mark.parametrize("effect, paired, n", [
    # G*Power / Cohen (1988): two-sided, alpha 0.05, power 0.8
    (0.5, True, 34), (0.5, False, 64), (0.2, True, 199), (0.2, False, 394), (0.8, True, 15), (0.8, False, 26),
])
def test_seeds_for_power_agree_with_the_tables(effect, paired, n):
    assert seeds_for_power(effect, paired=paired) == n
    assert seeds_for_power(-effect, paired=paired) == n
    assert power(effect, n - 1, paired=paired) < 0.8 <= power(effect, n, paired=paired)


@pytest.mark.parametrize("paired", [True, False])
def test_the_search_finds_the_first_n_reaching_the_power(paired):
    for effect in (0.35, 0.7, 1.1, 1.9, 3.0, 7.0, 40.0, 1e6):
        n = 2
        while power(effect, n, paired=paired) < 0.8:
            n += 1
        assert seeds_for_power(effect, paired=paired) == n, effect


@pytest.mark.parametrize("paired", [True, False])
def test_power_is_the_rejection_rate_of_simulated_t_tests(paired):
    rng = np.random.default_rng(5)
    n, effect, trials = 12, 0.9, 4000
    if paired:
        p = st.ttest_1samp(rng.normal(effect, 1, (trials, n)), 0, axis=1).pvalue
    else:
        p = st.ttest_ind(rng.normal(effect, 1, (trials, n)), rng.normal(0, 1, (trials, n)), axis=1).pvalue
    expected = power(effect, n, paired=paired)
    assert abs(np.mean(p < 0.05) - expected) < 4 * math.sqrt(expected * (1 - expected) / trials)


@pytest.mark.parametrize("paired", [True, False])
def test_seeds_needed_stops_at_its_cap(paired):
    # the effect needing exactly MAX_SEEDS_NEEDED seeds: just larger still gets a number, just smaller none
    at_cap = scipy_optimize.brentq(lambda d: power(d, MAX_SEEDS_NEEDED, paired=paired) - 0.8, 1e-3, 1.0,
                                   xtol=1e-15)
    assert seeds_for_power(at_cap * (1 + 1e-9), paired=paired) == MAX_SEEDS_NEEDED
    assert seeds_for_power(at_cap * (1 - 1e-6), paired=paired) is None


@pytest.mark.parametrize("paired", [True, False])
def test_power_is_finite_and_grows_with_seeds_and_effect(paired):
    # 10 / sqrt(501): 501 pairs put the noncentrality at 10 with df 500, where SciPy's nct.cdf
    # far in the lower tail is NaN
    effects = [0.0, 0.01, 0.1, 10 / math.sqrt(501), 1.0, 3.0, 10.0, 1e3, 1e6]
    seeds = [2, 3, 5, 10, 34, 100, 501, 1000, 5000, MAX_SEEDS_NEEDED]
    table = np.array([[power(d, n, paired=paired) for n in seeds] for d in effects])
    assert np.all(np.isfinite(table)) and np.all(table <= 1)
    assert table[0] == pytest.approx(ALPHA, rel=1e-9)
    assert np.all(np.diff(table, axis=0) >= -1e-12) and np.all(np.diff(table, axis=1) >= -1e-12)


def test_a_zero_effect_needs_no_number_of_seeds():
    assert seeds_for_power(0.0, paired=True) is None and seeds_for_power(0.0, paired=False) is None
    assert power(0.0, 10, paired=True) == pytest.approx(ALPHA, rel=1e-9)


def test_huge_effects_need_two_seeds_and_no_nan():
    for effect in (1e3, 1e8, 1e30):
        assert power(effect, 2, paired=True) == 1.0
        assert seeds_for_power(effect, paired=False) == 2


@pytest.mark.parametrize("call, message", [
    (lambda: power(0.5, 1, paired=True), "`n` must be an integer >= 2, got 1"),
    (lambda: power(float("nan"), 5, paired=True), "`effect_size` must be a real number"),
    (lambda: seeds_for_power(float("inf"), paired=True), "`effect_size` must be a real number"),
])
def test_power_arguments_are_checked(call, message):
    with pytest.raises(ArgumentError, match=message):
        call()


# ---------------------------------------------------------------- the bootstrap


def test_the_bootstrap_is_the_documented_percentile_interval():
    d = Y - X
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = d[rng.integers(0, 5, size=(BOOTSTRAP_RESAMPLES, 5))].mean(axis=1)
    assert one(side(X), side(Y)).bootstrap_interval == tuple(np.quantile(means, [0.025, 0.975]))
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    mx = X[rng.integers(0, 5, size=(BOOTSTRAP_RESAMPLES, 5))].mean(axis=1)
    my = Y7[rng.integers(0, 7, size=(BOOTSTRAP_RESAMPLES, 7))].mean(axis=1)
    expected = tuple(np.quantile(my - mx, [0.025, 0.975]))
    assert one(side(X), side(Y7, first_seed=5)).bootstrap_interval == expected


@pytest.mark.parametrize("paired", [True, False])
def test_the_bootstrap_is_close_to_the_t_interval_on_large_normal_samples(paired):
    rng = np.random.default_rng(9)
    x = rng.normal(0, 1, 400)  # several blocks of resamples
    y = (x if paired else rng.normal(0, 1, 400)) + rng.normal(0.3, 1, 400)
    m = one(side(x, "loss"), side(y, "loss", 0 if paired else 1000), "loss")
    width = m.t_interval[1] - m.t_interval[0]
    assert m.bootstrap_interval == pytest.approx(m.t_interval, abs=0.05 * width)


def test_the_bootstrap_is_byte_identical_across_reruns_and_processes():
    a, b = side(X), side(Y7, first_seed=3)
    here = json.dumps(compare(a, b).to_data(), sort_keys=True)
    assert json.dumps(compare(a, b).to_data(), sort_keys=True) == here
    script = textwrap.dedent(f"""
        import json, numpy as np
        np.random.seed(123)  # the global generator must not matter
        from purenn.experiments.comparison import compare
        print(json.dumps(compare({a!r}, {b!r}).to_data(), sort_keys=True))
    """)
    outputs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONHASHSEED": str(h)}, check=True).stdout.strip()
               for h in (1, 2)]
    assert outputs == [here, here]


# ---------------------------------------------------------------- probability that B beats A


def test_probability_of_superiority_counts_ties_half_and_follows_the_direction():
    a = {0: {"test_accuracy": 0.1, "loss": 1.0}, 1: {"test_accuracy": 0.2, "loss": 2.0},
         2: {"test_accuracy": 0.3, "loss": 3.0}}
    b = {5: {"test_accuracy": 0.2, "loss": 2.0}, 6: {"test_accuracy": 0.3, "loss": 3.0},
         7: {"test_accuracy": 0.4, "loss": 4.0}}
    c = compare(a, b)
    assert c["test_accuracy"].probability_b_better == 7 / 9  # higher is better: 1.5 + 2.5 + 3 of 9
    assert c["loss"].probability_b_better == 2 / 9  # lower is better: 1.5 + 0.5 + 0 of 9


def test_probability_of_superiority_over_all_pairs():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 6, 13).astype(float), rng.integers(0, 6, 9).astype(float)
    diff = np.subtract.outer(y, x)
    expected = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
    assert one(side(x), side(y, first_seed=20)).probability_b_better == expected
    assert one(side(x, "loss"), side(y, "loss", 20), "loss").probability_b_better == 1 - expected


# ---------------------------------------------------------------- detection and the sentence


def _recipes(rng, seeds, shift):
    """Two recipes' runs: each seed moves both alike (its initialisation and data order), B's
    accuracy is higher and its loss lower by ``shift``, and each run has noise of its own."""
    seed_effect = rng.normal(0, 0.003, len(seeds))

    def runs(extra):
        return {s: {"test_accuracy": 0.975 + e + extra + rng.normal(0, 0.0005),
                    "loss": 0.08 - e - extra + rng.normal(0, 0.0005),
                    "train_seconds": 11 + rng.normal(0, 0.3)}
                for s, e in zip(seeds, seed_effect)}

    return runs(0.0), runs(shift)


def test_a_known_difference_is_detected_and_reported_as_better():
    a, b = _recipes(np.random.default_rng(11), range(5), 0.002)
    c = compare(a, b, labels=("baseline", "wider"))
    acc, loss = c["test_accuracy"], c["loss"]
    assert acc.significant and acc.t_interval[0] > 0 and acc.bootstrap_interval[0] > 0
    assert re.fullmatch(r"wider is better than baseline in test accuracy: wider - baseline = \+0\.00[12]\d* "
                        r"\(95% interval \+0\.00\d+ to \+0\.00\d+\), p = 0\.0\d+ \(paired t, 5 seeds\)\.",
                        acc.conclusion), acc.conclusion
    low, high = acc.t_interval
    assert f"= {acc.difference:+.4g} (95% interval {low:+.4g} to {high:+.4g})" in acc.conclusion
    assert loss.significant and loss.difference < 0 and loss.conclusion.startswith("wider is better")
    assert c.conclusion.startswith(acc.conclusion + " " + loss.conclusion)


def test_a_significantly_worse_recipe_is_called_worse():
    a, b = _recipes(np.random.default_rng(11), range(5), 0.002)
    acc, loss = one(b, a), one(b, a, "loss")
    assert acc.significant and acc.conclusion.startswith("B is worse than A in test accuracy: B - A = -0.00")
    assert loss.significant and loss.conclusion.startswith("B is worse than A in final loss: B - A = +0.00")


def test_no_difference_is_not_detected_and_no_seed_count_is_claimed():
    # the differences +1, -1, +1, -1, 0 average exactly zero
    m = one(side([1.0, 2.0, 3.0, 4.0, 5.0]), side([2.0, 1.0, 4.0, 3.0, 5.0]))
    assert m.state == "tested" and m.p_value == 1.0 and not m.significant
    assert m.effect_size == 0 and m.seeds_needed is None
    assert m.conclusion == ("No difference in test accuracy detectable with 5 seeds (B - A = +0, p = 1, "
                            "paired t); the observed difference is zero, so no number of seeds would detect "
                            "it.")


def test_a_small_undetected_difference_says_how_many_seeds_would_detect_it():
    m = one(side(X), side(X + np.array([0.001, -0.0008, 0.0012, -0.0011, 0.0002])))
    assert not m.significant and m.seeds_needed == seeds_for_power(m.effect_size, paired=True) > 5
    assert m.conclusion.startswith("No difference in test accuracy detectable with 5 seeds (B - A = +")
    assert m.conclusion.endswith(f"; about {m.seeds_needed:,} seeds per recipe would detect one of this "
                                 "size.")


def test_a_tiny_difference_says_more_seeds_than_the_cap():
    noise = np.array([1.0, -1.0, 1.0, -1.0, 0.0]) * 1e-3
    m = one(side(X), side(X + noise + 1e-6))
    assert m.seeds_needed is None and m.effect_size != 0
    assert m.conclusion.endswith(f"more than {MAX_SEEDS_NEEDED:,} seeds per recipe would be needed to "
                                 "detect one of this size.")
    assert m.seeds_needed_text == f"more than {MAX_SEEDS_NEEDED:,}"


def _flagged(draws, paired):
    b_seed = 0 if paired else 5
    return sum(one(side(x, "loss"), side(y, "loss", b_seed), "loss").significant for x, y in draws)


def test_equal_recipes_on_the_same_seeds_are_flagged_at_the_five_percent_rate():
    draws = np.random.default_rng(2024).normal(0, 1, (2000, 2, 5))
    assert 0.04 <= _flagged(draws, paired=True) / 2000 <= 0.06


def test_equal_recipes_on_different_seeds_are_flagged_at_welchs_rate():
    # Welch's test is a little conservative with 5 runs a side: its rate is below 5%, about 4.4%
    # (measured here with SciPy on 200,000 draws); 2000 draws through compare must come within
    # 2.5 binomial standard deviations of it
    reference_draws = np.random.default_rng(1).normal(0, 1, (200_000, 2, 5))
    reference = st.ttest_ind(reference_draws[:, 1], reference_draws[:, 0], axis=1, equal_var=False)
    rate = np.mean(reference.pvalue < 0.05)
    assert 0.04 < rate < 0.05
    draws = np.random.default_rng(2024).normal(0, 1, (2000, 2, 5))
    assert abs(_flagged(draws, paired=False) / 2000 - rate) <= 2.5 * math.sqrt(rate * (1 - rate) / 2000)


# ---------------------------------------------------------------- identical, no spread: never NaN


def _json(comparison):
    return json.dumps(comparison.to_data(), allow_nan=False)  # raises on NaN or infinity


def test_an_experiment_against_its_own_reproduction_is_identical():
    a, _ = _recipes(np.random.default_rng(1), range(5), 0.0)
    c = compare(a, dict(a), labels=("run", "reproduction"))
    for m in c.metrics:
        assert m.state == "identical" and m.p_value is None and m.statistic is None and m.effect_size is None
        assert m.difference == 0 and m.t_interval == (0, 0) and m.bootstrap_interval == (0, 0)
        assert m.probability_b_better == 0.5 and not m.significant
        assert m.seeds_needed_text == "not applicable (identical)"
    assert c["loss"].conclusion == "run and reproduction give identical final loss results (5 seeds)."
    assert "nan" not in _json(c).lower() and "nan" not in c.to_text().lower()


def test_a_constant_paired_difference_has_no_spread_and_no_test():
    x = np.array([0.1, 0.2, 0.3, 0.7])
    m = one(side(x), side(x + 0.1))  # differences 0.1 up to float rounding
    assert m.state == "no spread" and m.p_value is None and m.effect_size is None
    assert m.t_interval == (m.difference, m.difference) and m.difference == pytest.approx(0.1)
    assert m.conclusion == ("B - A = +0.1 in test accuracy on every seed (4 seeds, no spread, so no test "
                            "applies).")


def test_constant_sides_with_different_seeds():
    m = one(side([0.5] * 3), side([0.6] * 4, first_seed=10))
    assert m.state == "no spread" and m.interval_a == (0.5, 0.5) and "in every run" in m.conclusion
    m = one(side([0.5] * 3), side([0.5] * 4, first_seed=10))
    assert m.state == "identical"


def test_one_constant_side_is_still_tested_without_warnings():
    m = one(side([0.5] * 5), side(Y7, first_seed=5))
    assert m.state == "tested" and m.p_value == pytest.approx(st.ttest_1samp(Y7, 0.5).pvalue, rel=1e-12)


def test_no_spread_below_its_limit_and_spread_above():
    base = np.array([0.2, 0.4, 0.6, 0.8, 0.5])
    wiggle = np.array([1.0, -1.0, 1.0, -1.0, 0.0]) / np.std([1.0, -1.0, 1.0, -1.0, 0.0], ddof=1)
    below = one(side(base), side(base + 1.0 + 0.5 * NO_SPREAD * wiggle))
    above = one(side(base), side(base + 1.0 + 4 * NO_SPREAD * wiggle))
    assert below.state == "no spread" and above.state == "tested" and above.p_value is not None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=hs.lists(hs.lists(hs.sampled_from([0.0, 0.5, 1.0, 0.97, 0.971, 1e-9, 1e12, -3.0]), min_size=2,
                                max_size=6), min_size=2, max_size=2),
       paired=hs.booleans())
def test_no_input_gives_nan_and_every_number_is_in_range(values, paired):
    x, y = values
    if paired:
        y = (y * 6)[: len(x)]
    c = compare(side(x, "loss"), side(y, "loss", 0 if paired else 100))
    _json(c)
    m = c["loss"]
    assert 0 <= m.probability_b_better <= 1 and m.t_interval[0] <= m.t_interval[1]
    assert m.bootstrap_interval[0] <= m.bootstrap_interval[1] and m.interval_a[0] <= m.interval_a[1]
    assert m.p_value is None or 0 <= m.p_value <= 1
    assert m.conclusion.endswith(".") and "nan" not in c.to_text().lower()


# ---------------------------------------------------------------- the result as data and text


def test_to_data_is_json_with_the_settings_and_every_field():
    data = json.loads(_json(compare(side(X), side(Y))))
    assert data["settings"] == {"confidence": 0.95, "alpha": 0.05, "power": 0.8,
                                "bootstrap_seed": BOOTSTRAP_SEED, "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
                                "max_seeds_needed": MAX_SEEDS_NEEDED}
    m = data["metrics"]["test_accuracy"]
    assert m["test"] == "paired t" and m["better"] == "higher" and m["significant"] is True
    assert isinstance(m["t_interval"], list) and m["seeds_needed_text"] == f"{m['seeds_needed']:,}"
    assert data["seeds"] == {"a": [0, 1, 2, 3, 4], "b": [0, 1, 2, 3, 4]}


def test_to_text_has_every_number_and_the_sentence():
    c = compare(side(X), side(Y7, first_seed=5), labels=("base", "new"))
    text = c.to_text()
    m = c["test_accuracy"]
    assert text.splitlines()[0] == "A = base (seeds 0-4), B = new (seeds 5-11)"
    for piece in ("test accuracy (higher is better)", "Welch's t: t = ", f"p = {m.p_value:.2g}",
                  "P(a run of B beats a run of A) = ", "seeds per recipe for power 0.8 at 5%: ",
                  m.conclusion):
        assert piece in text


def test_metric_names_are_the_experiment_records():
    assert tuple(cmp.METRICS) == record.METRICS


def test_failed_runs_and_other_keys_are_skipped():
    a = {**side(X), 9: {"test_accuracy": None, "status": "failed"}}
    b = {s: {**r, "status": "ok", "history": []} for s, r in side(Y).items()}
    c = compare(a, b)
    assert [m.metric for m in c.metrics] == ["test_accuracy"]  # the only metric both have
    assert c["test_accuracy"].test == "paired t" and c.seeds_a == (0, 1, 2, 3, 4, 9)
    with pytest.raises(KeyError, match="'loss' was not compared"):
        c["loss"]


# ---------------------------------------------------------------- bad input


TWO = {0: {"loss": 1.0}, 1: {"loss": 2.0}}


@pytest.mark.parametrize("a, kwargs, error, message", [
    ([0.9, 0.8], {}, ArgumentTypeError, "side 'A' must be a mapping seed -> metric values, got list"),
    ({}, {}, ArgumentError, "side 'A' must hold 1 to 100000 runs, got 0"),
    ({-1: {"loss": 1.0}}, {}, ArgumentError, "`seed of side 'A'` must be a non-negative integer, got -1"),
    ({True: {"loss": 1.0}}, {}, ArgumentTypeError, "must be a non-negative integer, got True"),
    ({0: 0.5}, {}, ArgumentTypeError, "seed 0: the run must be a mapping metric -> value, got float"),
    ({0: {"loss": float("nan")}}, {}, ArgumentError, "side 'A', seed 0: `loss` must be a real number in"),
    ({0: {"loss": float("inf")}}, {}, ArgumentError, "side 'A', seed 0: `loss` must be a real number in"),
    ({0: {"loss": "1"}, 1: {"loss": 1.0}}, {}, ArgumentTypeError, "seed 0: `loss` must be a real number"),
    ({0: {"loss": 1.0}}, {}, ArgumentError, "side 'A' has 1 run.s. with a value of `loss`; comparing needs"),
    ({0: {"test_accuracy": 1.0}, 1: {"test_accuracy": 1.0}}, {}, ArgumentError, "no metric of .* in common"),
    (TWO, {"metrics": ["accuracy"]}, ArgumentError, "`metrics` must be a non-empty list of names from"),
    (TWO, {"metrics": "loss"}, ArgumentError, "`metrics` must be a non-empty"),
    (TWO, {"metrics": [["loss"]]}, ArgumentError, "`metrics` must be a non-empty"),
    (TWO, {"labels": ("A", "")}, ArgumentError, "`labels` must be a pair"),
    (TWO, {"labels": "AB"}, ArgumentError, "`labels` must be a pair"),
])
def test_bad_input_says_what_is_wrong(a, kwargs, error, message):
    with pytest.raises(error, match=message):
        compare(a, {0: {"loss": 1.0}, 1: {"loss": 1.5}}, **kwargs)


def test_metric_values_at_the_limit_are_accepted_and_beyond_it_refused():
    b = side([1.0, 2.0], "loss")
    one(side([MAX_ABS_VALUE, -MAX_ABS_VALUE], "loss"), b, "loss")
    with pytest.raises(ArgumentError, match=r"`loss` must be a real number in \[-1e\+12, 1e\+12\]"):
        compare(side([np.nextafter(MAX_ABS_VALUE, np.inf), 0.0], "loss"), b)


def test_a_side_of_max_seeds_runs_is_accepted_and_one_more_refused():
    b = side([1.0, 2.0, 3.0], "loss")
    big = {s: {"loss": None} for s in range(MAX_SEEDS)}  # failed runs: only three have values
    big.update(side([1.5, 2.5, 2.0], "loss"))
    assert one(big, b, "loss").n_a == 3
    big[MAX_SEEDS] = {"loss": None}
    with pytest.raises(ArgumentError, match=f"side 'A' must hold 1 to {MAX_SEEDS} runs, got {MAX_SEEDS + 1}"):
        compare(big, b)


def test_without_scipy_the_error_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    with pytest.raises(ArgumentError, match=r'needs SciPy .*pip install "purenn\[stats\]"'):
        compare(side(X), side(Y))
    with pytest.raises(ArgumentError, match=r'pip install "purenn\[stats\]"'):
        power(0.5, 10, paired=True)
