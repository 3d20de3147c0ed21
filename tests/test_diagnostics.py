"""The zero-variance fraction: groups of one datapoint's answers in one step, counted once, here."""

from loong_env.runs.diagnostics import has_zero_variance, reward_groups, zero_variance_fraction


def test_groups_whose_answers_all_scored_the_same_are_counted_and_singletons_are_not():
    pairs = [("a", 1.0), ("a", 1.0), ("b", 0.0), ("b", 1.0), ("c", 0.0), ("c", 0.0), ("d", 1.0)]
    groups = reward_groups(pairs)
    assert groups == {"a": [1.0, 1.0], "b": [0.0, 1.0], "c": [0.0, 0.0], "d": [1.0]}
    assert zero_variance_fraction(groups) == 2 / 3  # a and c; d has one answer and is no group


def test_no_group_of_two_means_no_fraction_rather_than_zero():
    assert zero_variance_fraction(reward_groups([("a", 1.0), ("b", 0.0)])) is None
    assert not has_zero_variance([0.5]) and has_zero_variance([0.5, 0.5 + 1e-12])
    assert not has_zero_variance([0.5, 0.6])
