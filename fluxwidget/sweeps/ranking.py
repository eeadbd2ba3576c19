"""Pick the winner: a ranking of a run's images from ratings and blind votes, per-axis win rates,
and the next pair to show in a blind A/B test. Pure: plain data in, plain data out.

**Comparisons.** A blind vote "a beats b" is one comparison of weight 1; a tie is half a win
for each. Ratings become comparisons too, of weight `RATING_WEIGHT` (0.5: a vote, made side by
side, counts twice a rating). A rating's score is its stars (1–5); a "pick" counts 6 (above any
stars) and a "reject" 0 (below any), whatever the stars. Two rated images make one comparison,
won by the higher score (equal scores: half a win each) — every pair up to 12 rated images;
beyond, each image against `RATING_SAMPLE` images of every score (the rest follows by
transitivity, and the fit stays fast). Each rated image also meets the average image
(`REFERENCE`, strength 1): above 3 it wins, below it loses, at 3 it ties — so a single rating
counts too, against the images nobody rated.

**Ranking.** A Bradley–Terry model, P(i beats j) = p_i / (p_i + p_j), fitted by Hunter's MM
iterations: p_i ← W_i / Σ_j n_ij / (p_i + p_j), with W_i the weight of i's wins and n_ij the
weight of comparisons between i and j. A prior of `PRIOR` win and `PRIOR` loss against the
reference image keeps an unbeaten image finite and a never-compared one at 1 (the average);
with ``prior=0`` and no ratings the strengths are the plain maximum-likelihood ones (scaled to
a geometric mean of 1).

**Win rates.** For each swept axis, each value's share of wins in the votes between two images
that differ on that axis (a vote between two images with the same value says nothing about
it), ties half a win, with a 95 % Wilson interval; below `MIN_VOTES` such votes it is "not
enough votes yet". Ratings count in the ranking, not in win rates.

**Pairs.** `next_pair` shows the least-compared image first (so every image is seen early),
against the image nearest to it in the current ranking that it has not met yet (close calls
teach the model most), never the same pair twice; left and right are drawn at random.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .ranges import format_value

__all__ = [
    "MIN_VOTES",
    "PRIOR",
    "RATING_WEIGHT",
    "REFERENCE",
    "Comparison",
    "RankedImage",
    "WinRate",
    "bradley_terry",
    "comparisons",
    "describe_win_rates",
    "next_pair",
    "rank_images",
    "rating_score",
    "wilson_interval",
    "win_rates",
]

RATING_WEIGHT = 0.5
AVERAGE_SCORE = 3.0
"""A rating of 3 stars is an average image: more wins against it, fewer lose."""
REFERENCE = "(average)"
"""The reference image of strength 1 in comparisons: the prior's and the ratings' opponent."""
ALL_PAIRS_UP_TO = 12
"""Up to this many rated images, every pair of them is a comparison."""
RATING_SAMPLE = 3
"""Beyond, each rated image is compared with this many images of every score (its own included,
as ties): the fit stays linear in the number of images."""
PRIOR = 0.5
MIN_VOTES = 5
Z_95 = 1.959963984540054
NOT_ENOUGH = "not enough votes yet"


class RatingLike(Protocol):
    """What the ranking reads of a rating (`fluxwidget.store.ratings.Rating`)."""

    @property
    def stars(self) -> int | None: ...
    @property
    def verdict(self) -> str | None: ...


class VoteLike(Protocol):
    """What the ranking reads of a vote (`fluxwidget.store.ratings.Vote`)."""

    @property
    def a(self) -> str: ...
    @property
    def b(self) -> str: ...
    @property
    def winner(self) -> str: ...


def rating_score(rating: RatingLike | None) -> float | None:
    """A rating as a number: pick 6, reject 0, else its stars; None when it has neither."""
    if rating is None:
        return None
    if rating.verdict == "pick":
        return 6.0
    if rating.verdict == "reject":
        return 0.0
    return float(rating.stars) if rating.stars is not None else None


@dataclass(frozen=True)
class Comparison:
    """One (weighted) comparison: `winner` beat `loser`; a tie is half a win for each."""

    winner: str
    loser: str
    weight: float = 1.0
    tie: bool = False


def _rating_pairs(scored: Mapping[str, float]) -> list[tuple[str, str]]:
    """The pairs of rated images to compare: all of them up to `ALL_PAIRS_UP_TO` images; beyond,
    each image with `RATING_SAMPLE` images of every other score (and of its own, as ties)."""
    keys = list(scored)
    if len(keys) <= ALL_PAIRS_UP_TO:
        return [(a, b) for n, a in enumerate(keys) for b in keys[n + 1 :]]
    groups: dict[float, list[str]] = {}
    for key in keys:
        groups.setdefault(scored[key], []).append(key)
    seen: set[frozenset[str]] = set()
    pairs = []
    for members in groups.values():
        for position, first in enumerate(members):
            for others in groups.values():
                for step in range(RATING_SAMPLE):
                    second = others[(position + step + (others is members)) % len(others)]
                    pair = frozenset((first, second))
                    if second != first and pair not in seen:
                        seen.add(pair)
                        pairs.append((first, second))
    return pairs


def comparisons(
    ratings: Mapping[str, RatingLike],
    votes: Iterable[VoteLike],
    *,
    rating_weight: float = RATING_WEIGHT,
) -> list[Comparison]:
    """The votes, then the pairs of rated images, as comparisons (see the module's text)."""
    result = []
    for vote in votes:
        if vote.winner == "tie":
            result.append(Comparison(vote.a, vote.b, 1.0, tie=True))
        elif vote.winner == "a":
            result.append(Comparison(vote.a, vote.b))
        elif vote.winner == "b":
            result.append(Comparison(vote.b, vote.a))
    if rating_weight > 0:
        scored = {
            key: score
            for key, rating in sorted(ratings.items())
            if (score := rating_score(rating)) is not None
        }
        for key, score in scored.items():  # against the average image (3 stars, strength 1)
            if score == AVERAGE_SCORE:
                result.append(Comparison(key, REFERENCE, rating_weight, tie=True))
            elif score > AVERAGE_SCORE:
                result.append(Comparison(key, REFERENCE, rating_weight))
            else:
                result.append(Comparison(REFERENCE, key, rating_weight))
        for first, second in _rating_pairs(scored):
            one, other = scored[first], scored[second]
            if one == other:
                result.append(Comparison(first, second, rating_weight, tie=True))
            elif one > other:
                result.append(Comparison(first, second, rating_weight))
            else:
                result.append(Comparison(second, first, rating_weight))
    return result


def bradley_terry(
    items: Sequence[str],
    games: Iterable[Comparison],
    *,
    prior: float = PRIOR,
    iterations: int = 1000,
    tolerance: float = 1e-8,
) -> dict[str, float]:
    """Bradley–Terry strengths of `items` by MM iterations (see the module's text)."""
    keys = list(dict.fromkeys(items))
    wins = dict.fromkeys(keys, 0.0)
    pairs: dict[str, dict[str, float]] = {key: {} for key in keys}
    anchor_won = dict.fromkeys(keys, prior)  # against the reference image, of strength 1
    anchor_games = dict.fromkeys(keys, 2 * prior)
    for game in games:
        if REFERENCE in (game.winner, game.loser):
            other = game.loser if game.winner == REFERENCE else game.winner
            if other in anchor_games:
                anchor_games[other] += game.weight
                if game.tie:
                    anchor_won[other] += game.weight / 2
                elif game.winner == other:
                    anchor_won[other] += game.weight
            continue
        if game.winner not in wins or game.loser not in wins or game.winner == game.loser:
            continue
        if game.tie:
            wins[game.winner] += game.weight / 2
            wins[game.loser] += game.weight / 2
        else:
            wins[game.winner] += game.weight
        for one, other in ((game.winner, game.loser), (game.loser, game.winner)):
            pairs[one][other] = pairs[one].get(other, 0.0) + game.weight
    strength = dict.fromkeys(keys, 1.0)
    for _ in range(iterations):
        new = dict(strength)  # updated in place (Gauss–Seidel): converges in fewer rounds
        for key in keys:
            p = new[key]
            denominator = sum(n / (p + new[o]) for o, n in pairs[key].items())
            denominator += anchor_games[key] / (p + 1.0)
            won = wins[key] + anchor_won[key]
            new[key] = won / denominator if denominator > 0 else p
        if not any(anchor_games.values()):  # no anchor: scale to a geometric mean of 1
            positive = [v for v in new.values() if v > 0]
            if positive:
                mean = math.exp(sum(math.log(v) for v in positive) / len(positive))
                new = {k: v / mean for k, v in new.items()}
        change = max((abs(new[k] - strength[k]) / (strength[k] or 1.0) for k in keys), default=0.0)
        strength = new
        if change < tolerance:
            break
    return strength


@dataclass(frozen=True)
class RankedImage:
    """One image in the ranking: its place (1 = best), strength and record of comparisons."""

    key: str
    rank: int
    strength: float
    wins: float
    losses: float
    ties: int
    votes: int
    score: float | None = None
    """Its rating as a number (`rating_score`), when rated."""

    @property
    def compared(self) -> bool:
        """Whether anything (a vote or a rating) ranks it."""
        return self.votes > 0 or self.score is not None


def rank_images(
    keys: Sequence[str],
    ratings: Mapping[str, RatingLike],
    votes: Sequence[VoteLike],
    *,
    prior: float = PRIOR,
    rating_weight: float = RATING_WEIGHT,
) -> list[RankedImage]:
    """Every image in `keys`, best first (equal strengths in `keys` order)."""
    keys = list(dict.fromkeys(keys))
    games = comparisons(
        {k: r for k, r in ratings.items() if k in set(keys)}, votes, rating_weight=rating_weight
    )
    strength = bradley_terry(keys, games, prior=prior)
    wins = dict.fromkeys(keys, 0.0)
    losses = dict.fromkeys(keys, 0.0)
    ties = dict.fromkeys(keys, 0)
    count = dict.fromkeys(keys, 0)
    for vote in votes:
        if vote.a not in count or vote.b not in count:
            continue
        count[vote.a] += 1
        count[vote.b] += 1
        if vote.winner == "tie":
            ties[vote.a] += 1
            ties[vote.b] += 1
        else:
            won, lost = (vote.a, vote.b) if vote.winner == "a" else (vote.b, vote.a)
            wins[won] += 1
            losses[lost] += 1
    order = {key: n for n, key in enumerate(keys)}
    ranked = sorted(keys, key=lambda k: (-round(strength[k], 6), order[k]))
    return [
        RankedImage(
            key,
            n + 1,
            strength[key],
            wins[key],
            losses[key],
            ties[key],
            count[key],
            rating_score(ratings.get(key)),
        )
        for n, key in enumerate(ranked)
    ]


def wilson_interval(wins: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion `wins`/`n` (ties may make `wins` a half)."""
    if n <= 0:
        return (0.0, 1.0)
    rate = wins / n
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class WinRate:
    """How often images with `value` on `axis` won the votes that set it against another."""

    axis: str
    value: str
    wins: float
    votes: int
    low: float
    high: float
    min_votes: int = MIN_VOTES

    @property
    def rate(self) -> float | None:
        """Wins / votes (None without votes)."""
        return self.wins / self.votes if self.votes else None

    @property
    def enough(self) -> bool:
        """Whether there are enough votes to say anything."""
        return self.votes >= self.min_votes

    @property
    def margin(self) -> float:
        """Half the width of the interval (the "± 9 %")."""
        return (self.high - self.low) / 2

    def describe(self) -> str:
        """``guidance_scale 3.5 wins 68 % ± 9 % (25 votes)`` or ``... not enough votes yet``."""
        if not self.enough or self.rate is None:
            return f"{self.axis} {self.value}: {NOT_ENOUGH} ({self.votes} of {self.min_votes})"
        return (
            f"{self.axis} {self.value} wins {100 * self.rate:.0f} % ± {100 * self.margin:.0f} % "
            f"({self.votes} votes)"
        )


def win_rates(
    votes: Sequence[VoteLike],
    axes_of: Mapping[str, Mapping[str, Any]],
    *,
    min_votes: int = MIN_VOTES,
) -> dict[str, list[WinRate]]:
    """Per axis, per value (in the order the images list them), its win rate in the votes
    between images that differ on that axis. `axes_of` maps image key → {axis: value}."""
    axes: dict[str, dict[str, None]] = {}
    for values in axes_of.values():
        for axis, value in values.items():
            axes.setdefault(axis, {})[format_value(value)] = None
    tally = {axis: {value: [0.0, 0] for value in values} for axis, values in axes.items()}
    for vote in votes:
        first, second = axes_of.get(vote.a), axes_of.get(vote.b)
        if first is None or second is None:
            continue
        for axis in axes:
            if axis not in first or axis not in second:
                continue
            one, other = format_value(first[axis]), format_value(second[axis])
            if one == other:
                continue
            share = {"a": (1.0, 0.0), "b": (0.0, 1.0)}.get(vote.winner, (0.5, 0.5))
            for value, won in ((one, share[0]), (other, share[1])):
                tally[axis][value][0] += won
                tally[axis][value][1] += 1
    result: dict[str, list[WinRate]] = {}
    for axis, values in tally.items():
        rows = []
        for value, (won, n) in values.items():
            low, high = wilson_interval(won, n)
            rows.append(WinRate(axis, value, won, int(n), low, high, min_votes))
        result[axis] = rows
    return result


def describe_win_rates(rates: Mapping[str, Sequence[WinRate]]) -> list[str]:
    """One line per axis value (`WinRate.describe`), best rate first within each axis."""
    lines: list[str] = []
    for rows in rates.values():
        ordered = sorted(rows, key=lambda r: (not r.enough, -(r.rate or 0.0)))
        lines.extend(row.describe() for row in ordered)
    return lines


def next_pair(
    keys: Sequence[str],
    votes: Sequence[VoteLike],
    order: Sequence[str] | None = None,
    *,
    rng: random.Random | None = None,
) -> tuple[str, str] | None:
    """The next two images to compare blind (left, right), or None when every pair has met.

    `order` is the current ranking (best first; default `keys`)."""
    rng = rng or random.Random()
    keys = list(dict.fromkeys(keys))
    if len(keys) < 2:
        return None
    met = {frozenset((v.a, v.b)) for v in votes}
    count = dict.fromkeys(keys, 0)
    for vote in votes:
        for key in (vote.a, vote.b):
            if key in count:
                count[key] += 1
    ranked = [k for k in (order or keys) if k in count]
    ranked += [k for k in keys if k not in set(ranked)]
    place = {key: n for n, key in enumerate(ranked)}
    noise = {key: rng.random() for key in keys}
    for first in sorted(keys, key=lambda k: (count[k], noise[k])):
        partners = [k for k in keys if k != first and frozenset((first, k)) not in met]
        if not partners:
            continue
        second = min(partners, key=lambda k: (abs(place[k] - place[first]), count[k], noise[k]))
        return (first, second) if rng.random() < 0.5 else (second, first)
    return None
