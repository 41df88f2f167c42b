"""Seed lists: ranges and lists, and clear errors."""

import pytest

from purenn.errors import ArgumentError
from purenn.experiments.seeds import parse_seeds


@pytest.mark.parametrize("text, seeds", [
    ("0-9", tuple(range(10))), ("1,4,7", (1, 4, 7)), ("0-2, 10, 20-21", (0, 1, 2, 10, 20, 21)),
    ("5", (5,)), ("3-3", (3,)), ("2,1,2", (2, 1)),
])
def test_seed_lists(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, message", [
    ("", "'' is not a seed or a range"), ("a-b", "is not a seed or a range"),
    ("9-0", "runs backwards; write 0-9"), ("-1", "must be non-negative"),
    ("1,,2", "'' is not a seed"), ("0-1000000", "more than 100000 seeds"), ("1.5", "not a seed"),
])
def test_bad_seed_lists_say_what_is_wrong(text, message):
    with pytest.raises(ArgumentError, match=message):
        parse_seeds(text)
