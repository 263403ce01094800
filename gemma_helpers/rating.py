"""Playing strength as an Elo rating with a 95% interval, from games against rated opponents or from rated puzzles.

Under the Elo model a player rated R scores, on average, ``1 / (1 + 10 ** ((R_opp - R) / 400))`` against an opponent
rated R_opp. Given games against opponents whose ratings are known (the anchors), :func:`fit_rating` finds the
rating that makes the observed results most likely, and the 95% interval of ratings the results do not rule out.
:func:`match_rating` does this for games against anchors, :func:`puzzle_rating` for rated puzzles (each one a game
against its rating: solved is a win, missed a loss), :func:`expected_puzzle_rating` for a player known only by its
chance of solving each puzzle (the random legal mover). :func:`format_estimate` writes the result as one line, and
:func:`compare` says in one sentence whether two ratings' intervals tell them apart.

**The numbers are only as good as the anchors.** A rating is on the scale of the anchors it was measured against:
Stockfish's ``UCI_Elo`` is calibrated against engines of the CCRL list, the random mover's rating in
:data:`ANCHORS` is on chess.com's scale (through Komodo Dragon's levels), Lichess puzzle ratings are on Lichess's
puzzle scale. These scales differ by hundreds of points; fit games against one scale at a time, and report which.

Self-contained: copy this file alone into another project (standard library only).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

ELO_SCALE = 400.0  # 400 points of difference: 10 to 1 odds
LR_DROP = 1.92  # the 95% likelihood-ratio interval: half of 3.841, the 95% point of chi-square with 1 degree of freedom
_REACH = 1e5  # no search goes further than this from the anchors (far beyond any real rating)
_SCORES = {1.0: "win", 0.5: "draw", 0.0: "loss"}


@dataclass(frozen=True)
class Anchor:
    """An opponent whose rating is taken as known, the scale that rating is on, and where it comes from."""

    name: str
    rating: float | None  # None: the rating is the engine's setting (see the source)
    scale: str
    source: str


# Facts with their sources (checked when this table was written; re-check before relying on them):
# * maxim-saplin/llm_chess (LLM Chess, the NeurIPS FoRLM 2025 paper in its docs/ folder, section 2.1 and appendix
#   C.5; data_processing/get_refined_csv.py's docstring; docs/notes.md, 9 Sep 2025) anchors its Elo on Komodo
#   Dragon 1 skill levels, level L taken as 125 * (L + 1) on chess.com's scale (level 1 = 250), and rates its
#   random player (uniform over legal moves) at -122.3, measured from 1,000 games against each of Dragon levels 1-4.
#   It adds 35 points for the side that always plays Black; our matches alternate colours instead.
# * Stockfish's UCI_Elo (with UCI_LimitStrength=true) is calibrated against engines rated on CCRL. Up to 15.1: games
#   at 60 s + 0.6 s, anchored to goldfish 1.13 (CCRL 40/4 ~2000) (official-stockfish/Stockfish PR #2225, issue #3101);
#   Debian's stockfish 15.1-4 advertises "UCI_Elo type spin default 1350 min 1350 max 2850" (its `uci` output).
#   From 16: re-fitted against Stash versions (PR #4341, commit a08b8d4, "Update UCI_Elo parameterization"),
#   calibrated at 120 s + 1 s and anchored within +-100 to CCRL Blitz (issue #5781), range 1320-3190.
#   At a much shorter time per move the engine plays weaker than the number it is set to.
ANCHORS: dict[str, Anchor] = {a.name: a for a in (
    Anchor("random mover", -122.3, "chess.com (via Komodo Dragon 1 levels)",
           "maxim-saplin/llm_chess: random player vs Dragon levels 1-4, 1,000 games each (paper, appendix C.5)"),
    Anchor("stockfish UCI_Elo", None, "CCRL (engine rating lists, at Stockfish's calibration time control)",
           "Stockfish's UCI_Elo setting: PR #2225 (to 15.1, minimum 1350), PR #4341 (from 16, minimum 1320)"),
)}


@dataclass(frozen=True)
class RatingEstimate:
    """A maximum-likelihood rating with its 95% interval, the games behind it, and a note on anything unusual.

    ``rating``, ``low`` and ``high`` are infinite where the results allow no finite value (every game won: no upper
    bound; every game lost: no lower bound); ``note`` then says so and gives the bound that does exist.
    """

    rating: float
    low: float
    high: float
    n: int
    wins: int
    draws: int
    losses: int
    note: str = ""

    def __str__(self) -> str:
        return format_estimate(self)


def expected_score(rating: float, opponent: float) -> float:
    """The Elo model's expected score of a player rated ``rating`` against one rated ``opponent`` (0.5 when equal)."""
    x = (opponent - rating) / ELO_SCALE * math.log(10)
    if x >= 0:  # written so that neither branch overflows for any difference
        e = math.exp(-x)
        return e / (1 + e)
    return 1 / (1 + math.exp(x))


def _softplus(x: float) -> float:
    """log(1 + e^x) without overflow."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def log_likelihood(rating: float, results: Iterable[tuple[float, float]]) -> float:
    """The log-likelihood of (opponent_rating, score) results for a player of this rating; a draw counts as half a
    win and half a loss: score * log(E) + (1 - score) * log(1 - E)."""
    total = 0.0
    for opponent, score in results:
        d = (rating - opponent) / ELO_SCALE * math.log(10)
        total -= score * _softplus(-d) + (1 - score) * _softplus(d)
    return total


def _crossing(f, start: float, direction: int) -> float:
    """Where f changes sign beyond ``start`` going in ``direction`` (+1 or -1): steps that double, then bisection."""
    positive = f(start) > 0
    step = 50.0
    while (f(start + direction * step) > 0) == positive:
        step *= 2
        if step > _REACH:
            raise ArithmeticError(f"no sign change within {_REACH:.0f} points of {start:.0f}: check the results")
    inside, outside = start, start + direction * step
    for _ in range(100):  # 100 halvings of at most 1e5 points: far below 0.001 of a point
        middle = (inside + outside) / 2
        if (f(middle) > 0) == positive:
            inside = middle
        else:
            outside = middle
    return (inside + outside) / 2


def _checked(results: Iterable[tuple[float, float]], fractional: bool = False) -> list[tuple[float, float]]:
    """The results as (float, float) pairs, or ValueError saying what to pass (``fractional``: any score in [0, 1])."""
    pairs = [(float(opponent), float(score)) for opponent, score in results]
    if not pairs:
        raise ValueError("no results: pass at least one (opponent_rating, score) pair, score 1 for a win, 0.5 for a "
                         "draw, 0 for a loss")
    bad = [p for p in pairs if not math.isfinite(p[0])
           or not (0.0 <= p[1] <= 1.0 if fractional else p[1] in _SCORES)]
    if bad:
        raise ValueError(f"{len(bad)} results are not (finite rating, score in {{0, 0.5, 1}}), e.g. {bad[0]}: "
                         f"score each game 1 (won), 0.5 (drawn) or 0 (lost)")
    return pairs


def fit_rating(results: Iterable[tuple[float, float]], fractional: bool = False) -> RatingEstimate:
    """The maximum-likelihood Elo rating from (opponent_rating, score) results, with its 95% interval.

    The rating solves sum(score - expected_score) = 0 (by bisection); the interval holds the ratings whose
    log-likelihood is within 1.92 of the maximum (the likelihood-ratio interval, asymmetric where the results are
    lopsided, unlike +-1.96 standard errors). A draw counts as half a win and half a loss, the usual treatment
    (BayesElo's separate draw parameter is not modelled). Every game won or every game lost has no finite maximum:
    the rating and the open bound are infinite and ``note`` says so. ``fractional`` accepts any score in [0, 1]
    (an expected score: the same likelihood, each result weighted by its probability).
    """
    pairs = _checked(results, fractional)
    counts = {name: sum(_SCORES.get(s) == name for _, s in pairs) for name in _SCORES.values()}
    total = sum(s for _, s in pairs)
    if 0 < total < len(pairs):
        best, low, high = _two_sided(pairs, total)
        note = "" if math.isfinite(low) and math.isfinite(high) else (
            f"the results rule out no rating {'below' if low == -math.inf else 'above'} the estimate within "
            f"{_REACH:.0f} points: the interval is open on that side")
    else:
        best, low, high, note = _one_sided(pairs, won=total == len(pairs))
    return RatingEstimate(best, low, high, len(pairs), counts["win"], counts["draw"], counts["loss"], note)


def _two_sided(pairs: list[tuple[float, float]], total: float) -> tuple[float, float, float]:
    """The maximum-likelihood rating and its interval, for results with some points and some points lost."""
    centre = sum(o for o, _ in pairs) / len(pairs)

    def residual(r: float) -> float:  # observed minus expected score: falls as r rises, zero at the maximum
        return total - sum(expected_score(r, o) for o, _ in pairs)

    best = _crossing(residual, centre, 1 if residual(centre) > 0 else -1)
    floor = log_likelihood(best, pairs) - LR_DROP

    def within(r: float) -> float:
        return log_likelihood(r, pairs) - floor

    return best, _bound(within, best, -1), _bound(within, best, 1)


def _bound(f, start: float, direction: int) -> float:
    """:func:`_crossing`, or an infinite bound where the likelihood never falls far enough (an expected score of a
    few thousandths: its lower bound lies further than any real rating)."""
    try:
        return _crossing(f, start, direction)
    except ArithmeticError:
        return direction * math.inf


def _one_sided(pairs: list[tuple[float, float]], won: bool) -> tuple[float, float, float, str]:
    """Every game won (or lost): the likelihood rises towards +inf (-inf) with supremum 0, so only one bound exists."""
    centre = sum(o for o, _ in pairs) / len(pairs)

    def within(r: float) -> float:  # rises with r when all were won, falls when all were lost
        return log_likelihood(r, pairs) + LR_DROP

    bound = _crossing(within, centre, 1 if (within(centre) > 0) != won else -1)
    side, other = ("upper", "lower") if won else ("lower", "upper")
    note = f"every game {'won' if won else 'lost'}: no finite {side} bound; the {other} bound is {bound:.0f}"
    return (math.inf, bound, math.inf, note) if won else (-math.inf, -math.inf, bound, note)


def match_rating(games: Iterable[tuple[float, float]]) -> RatingEstimate:
    """A player's rating from games against anchors: (anchor_rating, score) with score 1, 0.5 or 0 for the player.

    The anchors' ratings are taken as exact (their own uncertainty is not in the interval). Games against anchors of
    different scales (see :data:`ANCHORS`) do not belong in one fit.
    """
    return fit_rating(games)


def puzzle_rating(puzzles: Iterable[tuple[float, bool]]) -> RatingEstimate:
    """A rating from rated puzzles: (puzzle_rating, solved) pairs, each puzzle a game against its rating.

    This is how puzzle benchmarks such as PastaPastaPasta/lichess-bench rate a model (that one updates a rating
    puzzle by puzzle with the Elo formula; here the maximum-likelihood rating of the same model is fitted once, so the
    order of the puzzles does not matter). A Lichess puzzle rating is on Lichess's puzzle scale, not a game rating.
    """
    pairs = []
    for rating, solved in puzzles:
        if solved not in (True, False):
            raise ValueError(f"solved must be True or False, not {solved!r}: pass (puzzle_rating, solved) pairs")
        pairs.append((rating, 1.0 if solved else 0.0))
    return fit_rating(pairs)


def expected_puzzle_rating(puzzles: Iterable[tuple[float, float]]) -> RatingEstimate:
    """The rating of a player known by its probability of solving each rated puzzle: (puzzle_rating, probability).

    The fit of :func:`puzzle_rating` with each puzzle's expected score in place of a 0/1 result: the rating of a
    player who scores exactly its expectation on these puzzles, with the interval such a player's n results would
    give. This is how chance gets a rating on the same puzzles as a model (the random legal mover's probability of
    solving each puzzle is exact).
    """
    return fit_rating(puzzles, fractional=True)


def compare(first: RatingEstimate, second: RatingEstimate, first_name: str, second_name: str) -> str:
    """One sentence: whether the 95% intervals put ``first`` above, below, or not apart from ``second``."""
    if first.low > second.high:
        return (f"{first_name} rates above {second_name}: {format_estimate(first)} against "
                f"{format_estimate(second)}, intervals apart.")
    if first.high < second.low:
        return (f"{first_name} rates below {second_name}: {format_estimate(first)} against "
                f"{format_estimate(second)}, intervals apart.")
    return (f"{first_name} cannot be told apart from {second_name} by rating: {format_estimate(first)} against "
            f"{format_estimate(second)}, intervals overlap.")


def _span(low: float, high: float) -> str:
    """'1100-1350', or '-150 to 300' where a hyphen would read as a minus sign."""
    joint = " to " if low < 0 or high < 0 else "-"
    return f"{low:.0f}{joint}{high:.0f}"


def format_estimate(est: RatingEstimate) -> str:
    """One line: '1234 (95% interval 1100-1350, n=40)', or the bound that exists when every game was won or lost."""
    if est.high == math.inf and est.rating == math.inf:
        return f"above {est.low:.0f} (95% lower bound; every game won, so no upper bound; n={est.n})"
    if est.low == -math.inf and est.rating == -math.inf:
        return f"below {est.high:.0f} (95% upper bound; every game lost, so no lower bound; n={est.n})"
    if est.low == -math.inf:
        return f"{est.rating:.0f} (95% interval: below {est.high:.0f}, no finite lower bound, n={est.n})"
    if est.high == math.inf:
        return f"{est.rating:.0f} (95% interval: above {est.low:.0f}, no finite upper bound, n={est.n})"
    return f"{est.rating:.0f} (95% interval {_span(est.low, est.high)}, n={est.n})"
