"""Elo ratings on cases whose answer is known: even scores, symmetric puzzle sets, a brute-force maximum, the edges."""

import math

import pytest

from gemma_helpers import rating
from gemma_helpers.rating import LR_DROP, expected_score, fit_rating, format_estimate, log_likelihood


def even(anchor, games):
    """Half the games won, half lost against one anchor."""
    return [(anchor, 1.0), (anchor, 0.0)] * (games // 2)


def test_expected_score_is_symmetric_half_at_equal_ratings_and_about_076_at_plus_200():
    assert expected_score(1500, 1500) == 0.5
    for a, b in [(1500, 1700), (800, -122.3), (2850, 1350)]:
        assert expected_score(a, b) + expected_score(b, a) == pytest.approx(1.0)
    assert expected_score(1700, 1500) == pytest.approx(0.7597, abs=1e-4)
    assert expected_score(0, 1e6) == pytest.approx(0.0) and expected_score(1e6, 0) == 1.0  # no overflow


def test_scoring_half_against_one_anchor_gives_the_anchors_rating():
    est = rating.match_rating(even(1500, 20))
    assert est.rating == pytest.approx(1500, abs=1)
    assert (est.n, est.wins, est.draws, est.losses, est.note) == (20, 10, 0, 10, "")


def test_draws_count_as_half_a_win():
    est = fit_rating([(1500, 0.5)] * 10)
    assert est.rating == pytest.approx(1500, abs=1) and est.draws == 10
    assert math.isfinite(est.low) and math.isfinite(est.high)


def test_the_interval_contains_the_estimate_and_narrows_with_more_games():
    few, many = fit_rating(even(1500, 10)), fit_rating(even(1500, 100))
    for est in (few, many):
        assert est.low < est.rating < est.high
    assert many.high - many.low < (few.high - few.low) / 2  # ~1/sqrt(n): 10x the games, about a third the width


def test_the_interval_bounds_are_where_the_likelihood_has_fallen_by_192():
    results = [(1400, 1.0), (1500, 0.5), (1600, 0.0), (1700, 1.0), (1300, 0.0), (1550, 1.0)]
    est = fit_rating(results)
    top = log_likelihood(est.rating, results)
    for bound in (est.low, est.high):
        assert log_likelihood(bound, results) == pytest.approx(top - LR_DROP, abs=1e-6)


def test_the_estimate_for_mixed_opponents_is_the_brute_force_maximum():
    results = [(1200, 1.0), (1350, 1.0), (1500, 0.5), (1650, 0.0), (1800, 1.0), (2000, 0.0), (1450, 0.0)]
    grid = [x / 10 for x in range(5000, 30000)]  # 500.0 to 2999.9 in steps of 0.1
    brute = max(grid, key=lambda r: log_likelihood(r, results))
    assert fit_rating(results).rating == pytest.approx(brute, abs=0.1)


def test_every_game_won_has_no_upper_bound_and_says_so():
    est = fit_rating([(1500, 1.0)] * 10)
    assert est.rating == math.inf and est.high == math.inf
    assert 1500 < est.low < math.inf
    assert log_likelihood(est.low, [(1500, 1.0)] * 10) == pytest.approx(-LR_DROP, abs=1e-6)
    assert est.note.startswith("every game won: no finite upper bound; the lower bound is ")
    assert format_estimate(est).startswith(f"above {est.low:.0f} (95% lower bound; every game won")


def test_every_game_lost_has_no_lower_bound_and_says_so():
    est = fit_rating([(1500, 0.0)] * 3)
    assert est.rating == -math.inf and est.low == -math.inf and est.high < 1500
    assert est.note.startswith("every game lost: no finite lower bound; the upper bound is ")
    assert format_estimate(est).startswith(f"below {est.high:.0f} (95% upper bound")


def test_no_results_or_a_bad_score_say_what_to_pass():
    with pytest.raises(ValueError, match="pass at least one"):
        fit_rating([])
    with pytest.raises(ValueError, match=r"score each game 1 \(won\), 0.5 \(drawn\) or 0 \(lost\)"):
        fit_rating([(1500, 0.7)])


def test_puzzle_rating_on_a_symmetric_set_is_its_centre():
    puzzles = [(1400, True), (1600, False)] * 15  # E(r, 1400) + E(r, 1600) = 1 exactly at r = 1500
    est = rating.puzzle_rating(puzzles)
    assert est.rating == pytest.approx(1500, abs=1)
    assert (est.wins, est.losses) == (15, 15)
    with pytest.raises(ValueError, match="solved must be True or False"):
        rating.puzzle_rating([(1500, "yes")])


def test_format_estimate_reads_as_one_line():
    est = fit_rating(even(1500, 40))
    assert format_estimate(est) == f"1500 (95% interval {est.low:.0f}-{est.high:.0f}, n=40)"
    weak = fit_rating(even(-122.3, 4))
    assert " to " in format_estimate(weak)  # a negative bound is not written as "-400--" something
    assert str(est) == format_estimate(est)


def test_anchors_name_their_rating_scale_and_source():
    random_mover = rating.ANCHORS["random mover"]
    assert "llm_chess" in random_mover.source and "chess.com" in random_mover.scale
    assert rating.ANCHORS["stockfish UCI_Elo"].rating is None  # the level the engine is set to


def test_the_interval_drop_is_half_the_95_percent_point_of_chi_square_with_one_degree():
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.975)  # 1.95996...; chi-square(1) is the square of a standard normal
    assert LR_DROP == pytest.approx(z * z / 2, abs=0.001)  # 3.8415 / 2 = 1.9207


def closed_form(anchor, share):
    """Against one anchor, the likelihood depends on the rating only through E, so its maximum is where E equals
    the share of points won: E = 1 / (1 + 10 ** ((anchor - r) / 400)) solved for r."""
    return anchor + 400 * math.log10(share / (1 - share))


def interval_by_hand(anchor, wins, losses):
    """The 95% bounds worked without the module: in p = E the log-likelihood is w log p + l log(1-p); find where it
    is 1.92 below its maximum by bisection in p (on each side of p = w / n), then turn p into a rating."""
    def ll(p):
        return wins * math.log(p) + losses * math.log(1 - p)
    top, best = ll(wins / (wins + losses)), wins / (wins + losses)

    def cross(lo, hi):  # ll - (top - 1.92) changes sign between lo and hi
        for _ in range(200):
            mid = (lo + hi) / 2
            if (ll(mid) - top + 1.92 > 0) == (ll(lo) - top + 1.92 > 0):
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2
    return closed_form(anchor, cross(1e-12, best)), closed_form(anchor, cross(1 - 1e-12, best))


def test_three_wins_in_four_against_one_anchor_match_the_closed_form():
    # 3 of 4 won against 1500: E = 3/4, so r = 1500 + 400 log10(3) = 1690.85 (worked by hand)
    est = fit_rating([(1500, 1.0)] * 3 + [(1500, 0.0)])
    assert est.rating == pytest.approx(1690.85, abs=0.01)
    low, high = interval_by_hand(1500, 3, 1)
    assert (est.low, est.high) == (pytest.approx(low, abs=0.5), pytest.approx(high, abs=0.5))
    assert est.low < 1500 < est.high  # 4 games cannot tell this player from the anchor


def test_an_expected_puzzle_rating_matches_the_closed_form():
    # a player solving each of 10 puzzles rated 1500 with probability 0.2: E = 0.2, r = 1500 + 400 log10(1/4)
    est = rating.expected_puzzle_rating([(1500, 0.2)] * 10)
    assert est.rating == pytest.approx(1500 - 400 * math.log10(4), abs=0.01)  # 1259.18
    assert est.low < est.rating < est.high
    with pytest.raises(ValueError, match="results are not"):
        rating.expected_puzzle_rating([(1500, 1.2)])


def test_compare_says_which_rating_is_above_only_when_the_intervals_are_apart():
    strong = fit_rating([(1500, 1.0)] * 30 + [(1500, 0.0)] * 3)
    weak = fit_rating([(1500, 0.0)] * 30 + [(1500, 1.0)] * 3)
    assert rating.compare(strong, weak, "A", "B").startswith("A rates above B")
    assert rating.compare(weak, strong, "B", "A").startswith("B rates below A")
    assert "cannot be told apart" in rating.compare(fit_rating(even(1500, 4)), fit_rating(even(1550, 4)), "A", "B")


def test_a_tiny_expected_score_has_an_open_lower_bound_and_says_so():
    # 2 puzzles at 1500, each solved with probability 0.001: the maximum sits where E = 0.001, at
    # 1500 + 400 log10(0.001 / 0.999) = 300.2; the log-likelihood falls by only 0.002 * ln(10) / 400 per point below
    # it, so 1.92 is reached some 170,000 points down, beyond any rating: no finite lower bound
    est = rating.expected_puzzle_rating([(1500, 0.001)] * 2)
    assert est.rating == pytest.approx(1500 + 400 * math.log10(0.001 / 0.999), abs=0.01)
    assert est.low == -math.inf and math.isfinite(est.high) and "open" in est.note
    assert format_estimate(est) == f"300 (95% interval: below {est.high:.0f}, no finite lower bound, n=2)"
