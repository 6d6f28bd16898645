"""oracles.llm.diversity: distinct-n within a set of texts and across portfolio members."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oracles.llm import distinct_n, member_distinct_n

words = st.lists(st.sampled_from(["a", "b", "c", "d", "x"]), max_size=12).map(" ".join)


# -- diversity ---------------------------------------------------------------------------


def test_distinct_n_values():
    assert distinct_n(["a b c", "d e"], 1) == 1.0
    assert distinct_n(["a a a a"], 1) == 0.25
    assert distinct_n(["a b a b", "a b c"], 2) == pytest.approx(3 / 5)
    assert math.isnan(distinct_n(["", "a"], 2))
    with pytest.raises(TypeError):
        distinct_n("a b", 1)
    with pytest.raises(ValueError):
        distinct_n(["a"], 0)


@given(st.lists(words, min_size=1, max_size=6), st.integers(1, 3))
def test_distinct_n_in_unit_interval(texts, n):
    v = distinct_n(texts, n)
    assert math.isnan(v) or 0.0 < v <= 1.0


def test_member_distinct_n():
    same = [["a b", "c d"]] * 4
    assert member_distinct_n(same, 1) == pytest.approx(1 / 4)
    assert member_distinct_n([["a", "b"], ["c", "d"]], 1) == 1.0
    assert member_distinct_n([[["a", "a"]], [["b"]]], 1) == pytest.approx(2 / 3)  # samples pooled per member
    with pytest.raises(ValueError):
        member_distinct_n([["a"], ["a", "b"]])
