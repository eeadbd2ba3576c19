"""Pick the winner (issue 18): ratings and votes in the run folder, the ranking's arithmetic, pair
selection, `load_run`, the grid's ratings and the blind A/B widget, and the CLI's rate/report."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import fluxwidget
from fluxwidget import RatingError, RunFolderBusy, load_run
from fluxwidget.cli import main
from fluxwidget.emulator import Emulator
from fluxwidget.store.ratings import RATINGS, Rating, Ratings, Vote, image_key, read_ratings
from fluxwidget.store.runs import Run
from fluxwidget.sweeps import SweepRunner, plan_sweep
from fluxwidget.sweeps.ranking import (
    MIN_VOTES,
    REFERENCE,
    bradley_terry,
    comparisons,
    next_pair,
    rank_images,
    wilson_interval,
    win_rates,
)

from .clients import client_for

BASE = {"prompt": "a fox", "image_size": "square", "num_inference_steps": 4}


async def make_sweep(emu: Emulator, folder: Path) -> Path:
    """A finished 2 x 2 sweep (guidance_scale x seed) in `folder`, made on the emulator."""
    plan = plan_sweep(BASE, "guidance_scale=2,5", "seed=1,2")
    async with client_for(emu) as client:
        runner = SweepRunner(client, plan, out=folder)
        await runner.run_all()
    assert all(record.state == "done" for record in runner.records.values())
    return folder


@pytest.fixture
async def swept(emu: Emulator, tmp_path: Path) -> Path:
    return await make_sweep(emu, tmp_path / "fox")


# --- storage ----------------------------------------------------------------------------------


async def test_ratings_and_votes_survive_a_restart(swept: Path) -> None:
    run = load_run(swept)
    assert len(run) == 4
    assert run.axes == ["guidance_scale", "seed"]
    first, second, third = (image.job_id for image in run.images[:3])
    run.rate(first, stars=4, note="sharp")
    run.rate(second, verdict="reject")
    run.rate(third, stars=2)
    run.rate(third)  # cleared
    run.vote(first, second, "a")
    run.vote(second, third, "tie")
    lines = (swept / RATINGS).read_text().splitlines()
    assert len(lines) == 6
    assert all(json.loads(line)["event"] in ("rate", "vote") for line in lines)

    again = load_run(swept)  # a new process would read exactly this
    assert again[first].stars == 4
    assert again[first].note == "sharp"
    assert again[second].verdict == "reject"
    assert again[third].rating is None
    assert [(v.a, v.b, v.winner) for v in again.votes] == [
        (image_key(first), image_key(second), "a"),
        (image_key(second), image_key(third), "tie"),
    ]
    state = read_ratings(swept)
    assert set(state.ratings) == {image_key(first), image_key(second)}


async def test_a_torn_last_line_is_skipped_and_never_appended_onto(swept: Path) -> None:
    run = load_run(swept)
    job = run.images[0].job_id
    run.rate(job, stars=3)
    with (swept / RATINGS).open("a") as torn:
        torn.write('{"event": "rate", "job_id": "')  # a crash mid-line
    assert load_run(swept)[job].stars == 3
    load_run(swept).rate(job, stars=5)
    assert load_run(swept)[job].stars == 5


async def test_bad_ratings_are_typed_errors(swept: Path) -> None:
    run = load_run(swept)
    job = run.images[0].job_id
    with pytest.raises(RatingError):
        run.rate(job, stars=6)
    with pytest.raises(RatingError):
        run.rate(job, verdict="maybe")  # type: ignore[arg-type]
    with pytest.raises(RatingError):
        run.store.vote(image_key(job), image_key("nope"), "a")
    with pytest.raises(RatingError):
        run.vote(job, run.images[1].job_id, "both")  # type: ignore[arg-type]
    assert isinstance(RatingError("x"), fluxwidget.FluxwidgetError)


def test_a_writer_in_another_process_refuses_ratings_with_run_folder_busy(
    emu: Emulator, tmp_path: Path
) -> None:
    swept = asyncio.run(make_sweep(emu, tmp_path / "fox"))
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time; from fluxwidget.store.runs import Run;"
         f"run = Run.open({str(swept)!r}, claim=True); print('held', flush=True);"
         "time.sleep(60)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"held"
        run = load_run(swept)
        with pytest.raises(RunFolderBusy) as busy:
            run.rate(run.images[0].job_id, stars=5)
        assert busy.value.owner["pid"] == holder.pid
        with pytest.raises(RunFolderBusy):
            run.vote(run.images[0].job_id, run.images[1].job_id, "a")
        assert not (swept / RATINGS).exists()  # nothing written
        assert main(["report", str(swept)]) == 2  # the report is not rewritten under it either
        assert main(["rate", str(swept)]) == 0  # reading needs no lock
    finally:
        holder.kill()
        holder.wait(timeout=30)
    run = load_run(swept)
    run.rate(run.images[0].job_id, stars=5)  # the lock went with its process
    assert load_run(swept)[run.images[0].job_id].stars == 5


async def test_a_writer_in_this_process_is_reused_not_refused(swept: Path) -> None:
    writer = Run.open(swept, claim=True)  # a sweep of this notebook writing the folder
    try:
        ratings = Ratings(swept)
        ratings.rate(next(iter(writer.jobs)), stars=4)
        assert writer.lock.held  # still the sweep's
        with pytest.raises(RunFolderBusy):  # and a second writer of runs is still refused
            Run.open(swept, claim=True)
    finally:
        writer.release()
    assert Ratings(swept).rating(next(iter(writer.jobs))) is not None


# --- the ranking's arithmetic -----------------------------------------------------------------


def test_bradley_terry_three_wins_to_one_is_three_to_one() -> None:
    votes = [Vote("A", "B", "a")] * 3 + [Vote("A", "B", "b")]
    strength = bradley_terry(["A", "B"], comparisons({}, votes), prior=0)
    assert strength["A"] / strength["B"] == pytest.approx(3.0)
    assert strength["A"] * strength["B"] == pytest.approx(1.0)  # geometric mean 1


def test_a_clear_winner_ranks_first_and_ties_stay_level() -> None:
    votes = [Vote("A", "B", "a"), Vote("A", "C", "a"), Vote("B", "C", "tie")]
    ranking = rank_images(["C", "B", "A"], {}, votes)
    assert [entry.key for entry in ranking] == ["A", "C", "B"]  # B and C level: keys order
    by_key = {entry.key: entry for entry in ranking}
    assert by_key["B"].strength == pytest.approx(by_key["C"].strength)
    assert (by_key["A"].wins, by_key["A"].losses, by_key["B"].ties) == (2, 0, 1)
    # the prior keeps an unbeaten image finite; with one vote each way: symmetric strengths
    one = rank_images(["A", "B"], {}, [Vote("A", "B", "a")])
    assert one[0].strength * one[1].strength == pytest.approx(1.0)
    assert 1 < one[0].strength < 10


def test_ratings_become_pairwise_preferences() -> None:
    ratings = {
        "A": Rating("A", 0, stars=2),
        "B": Rating("B", 0, stars=4),
        "C": Rating("C", 0, stars=4),
        "D": Rating("D", 0, stars=1, verdict="pick"),  # a pick beats any stars
        "E": Rating("E", 0, stars=5, verdict="reject"),  # a reject loses to any
    }
    games = comparisons(ratings, [])
    pairs = [g for g in games if REFERENCE not in (g.winner, g.loser)]
    assert len(pairs) == 10  # every pair of rated images, weight 0.5
    assert all(game.weight == 0.5 for game in games)
    against_average = {(g.winner, g.loser, g.tie) for g in games if g not in pairs}
    assert ("B", REFERENCE, False) in against_average  # 4 stars beat the average
    assert (REFERENCE, "A", False) in against_average  # 2 stars lose to it
    ranking = [entry.key for entry in rank_images(list("ABCDE"), ratings, [])]
    assert ranking[0] == "D"
    assert ranking[-1] == "E"
    assert ranking.index("B") < ranking.index("A")
    assert ranking.index("C") < ranking.index("A")


def test_win_rates_count_votes_between_different_values_with_a_wilson_interval() -> None:
    axes = {"A": {"g": 2.0, "s": 1}, "B": {"g": 3.5, "s": 1}, "C": {"g": 3.5, "s": 2}}
    votes = [Vote("B", "A", "a")] * 6 + [Vote("A", "B", "a")] * 2 + [Vote("B", "C", "tie")] * 3
    rates = win_rates(votes, axes)
    g = {row.value: row for row in rates["g"]}
    assert (g["3.5"].wins, g["3.5"].votes) == (6, 8)  # B-C votes say nothing about g
    assert g["3.5"].rate == pytest.approx(0.75)
    low, high = wilson_interval(6, 8)
    assert (g["3.5"].low, g["3.5"].high) == (pytest.approx(low), pytest.approx(high))
    assert low == pytest.approx(0.4093, abs=1e-3)
    assert high == pytest.approx(0.9285, abs=1e-3)
    assert g["3.5"].describe() == "g 3.5 wins 75 % ± 26 % (8 votes)"
    s = {row.value: row for row in rates["s"]}
    assert (s["1"].wins, s["1"].votes) == (1.5, 3)  # ties: half a win each
    assert s["1"].describe() == f"s 1: not enough votes yet (3 of {MIN_VOTES})"
    assert win_rates([], axes)["g"][0].describe().endswith("not enough votes yet (0 of 5)")


def test_pairs_cover_every_image_early_and_never_repeat() -> None:
    keys = [f"c{n}:0" for n in range(7)]
    rng = random.Random(4)
    votes: list[Vote] = []
    seen: set[frozenset[str]] = set()
    while (pair := next_pair(keys, votes, rng=rng)) is not None:
        assert frozenset(pair) not in seen
        seen.add(frozenset(pair))
        votes.append(Vote(pair[0], pair[1], "a"))
        if len(votes) == 4:  # ceil(7 / 2): every image shown once already
            assert {k for v in votes for k in (v.a, v.b)} == set(keys)
    assert len(seen) == 7 * 6 // 2


def test_pairs_are_near_neighbours_in_the_ranking() -> None:
    keys = ["a", "b", "c", "d"]
    votes = [Vote("a", "b", "a"), Vote("c", "d", "a")]
    order = ["a", "c", "b", "d"]  # the current ranking
    pair = next_pair(keys, votes, order, rng=random.Random(1))
    assert pair is not None
    assert set(pair) in ({"a", "c"}, {"c", "b"}, {"b", "d"})


# --- load_run ---------------------------------------------------------------------------------


async def test_load_run_filters_sorts_ranks_and_exports(swept: Path, tmp_path: Path) -> None:
    run = load_run(swept)
    assert {image.value("guidance_scale") for image in run} == {2.0, 5.0}
    strong = run.filter(guidance_scale=5)
    assert len(strong) == 2
    assert all(i.input["guidance_scale"] == 5 for i in strong)
    assert len(run.filter(guidance_scale="5", seed=2)) == 1
    assert len(run.filter(endpoint="nope")) == 0
    assert len(run.filter(since="2000-01-01", until="2999-01-01")) == 4
    a, b, c, d = (image.job_id for image in run)
    run.rate(a, stars=2)
    run.rate(b, stars=5)
    run.rate(c, verdict="pick")
    run.rate(d, verdict="reject", stars=5)
    run.vote(c, b, "a")
    assert [i.job_id for i in run.sort("stars")][:2] == [b, d]
    assert next(i.job_id for i in run.sort("seed")) in (a, b)
    assert next(entry.key for entry in run.ranking()) == image_key(c)
    assert run.winner() is not None
    assert run.winner().job_id == c
    assert [i.job_id for i in run.favourites()] == [c, b]
    assert len(run.filter(min_stars=4)) == 2
    assert len(run.filter(verdict="pick")) == 1
    assert set(run.win_rates()) == {"guidance_scale", "seed"}

    zipped = run.favourites().export(tmp_path / "picked.zip")
    with zipfile.ZipFile(zipped) as archive:
        names = set(archive.namelist())
        rows = list(csv.DictReader(io.StringIO(archive.read("parameters.csv").decode())))
        listing = json.loads(archive.read("parameters.json"))
    assert names == {run[c].path.name, run[b].path.name, "parameters.csv", "parameters.json"}
    assert [row["job_id"] for row in rows] == [c, b]
    assert rows[0]["verdict"] == "pick"
    assert listing[1]["stars"] == 5
    folder = run.export(tmp_path / "all", run.filter(guidance_scale=2))
    assert len(list(folder.glob("*.png")) + list(folder.glob("*.jpg"))) == 2
    assert (folder / "parameters.csv").is_file()

    records = run.to_records()
    assert {row["rank"] for row in records} == {1, 2, 3, 4}
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            run.to_pandas()
    else:
        assert len(run.to_pandas()) == 4


# --- widgets ----------------------------------------------------------------------------------


async def test_rating_a_cell_in_the_grid_stores_it(emu: Emulator, tmp_path: Path) -> None:
    from fluxwidget import sweep

    async with client_for(emu) as client:
        run = sweep(
            BASE, "guidance_scale=2,5", "seed=1,2", client=client, out=tmp_path / "g", export=False
        )
        run.view()
        view = run._view
        assert view is not None
        await run
    grid = view.grid
    cell = run.plan.cells[0].id
    grid._received(grid, {"kind": "rate", "id": cell, "stars": 4, "note": "nice"}, [])
    assert grid.entry(cell)["stars"] == 4
    assert grid.entry(cell)["note"] == "nice"
    assert load_run(run.folder)[cell].stars == 4  # on disk, not only in the widget
    grid._received(grid, {"kind": "rate", "id": cell, "stars": 4, "verdict": "pick"}, [])
    assert load_run(run.folder)[cell].verdict == "pick"
    assert "Winner so far" in view.wins.value
    assert cell in view.wins.value
    opened: list[dict[str, object]] = []
    view._opener = opened.append
    view.open_winner()
    assert opened
    assert opened[0]["guidance_scale"] == 2
    ab = view.compare()
    assert view.compare_area.children == (ab,)
    # a view made again (a restarted kernel) shows the stored rating
    from fluxwidget.ui.sweep_view import SweepView

    again = SweepView(run)
    assert again.grid.entry(cell)["verdict"] == "pick"


async def test_a_blind_vote_is_stored_and_reveals_parameters_only_after(swept: Path) -> None:
    ab = fluxwidget.blind_ab(swept, seed=3)
    assert ab.phase == "vote"
    assert ab.left
    assert ab.right
    assert ab.revealed == {}  # nothing in the synced state tells the images apart
    state = json.dumps({k: v for k, v in ab.get_state().items() if k not in ("left", "right")})
    assert "guidance_scale" not in state
    assert "seed" not in state
    assert ab.pair is not None
    left, right = ab.pair
    ab._received(ab, {"kind": "vote", "side": "right", "round": ab.round - 1}, [])  # stale
    assert ab.phase == "vote"
    ab._received(ab, {"kind": "vote", "side": "right", "round": ab.round}, [])
    assert ab.phase == "revealed"
    assert ab.revealed["winner"] == "right"
    assert ab.revealed["left"]["image"] == left.key
    assert "guidance_scale" in ab.revealed["right"]
    votes = load_run(swept).votes
    assert [(v.a, v.b, v.winner) for v in votes] == [(left.key, right.key, "b")]
    rounds = 1
    while ab.phase != "done":
        ab._received(ab, {"kind": "next"}, [])
        if ab.phase == "vote":
            ab.vote("tie")
            rounds += 1
    assert rounds == 6  # every pair of 4 images once
    assert len(load_run(swept).votes) == 6


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_rate_and_report(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    swept = asyncio.run(make_sweep(emu, tmp_path / "fox"))  # main() runs its own loop
    assert main(["rate", str(swept)]) == 0
    assert "nothing rated" in capsys.readouterr().out
    run = load_run(swept)
    a, b, c, _d = (image.job_id for image in run)
    for _ in range(3):
        run.vote(b, a, "a")
        run.vote(b, c, "a")
    run.rate(b, stars=5, note="the one")
    assert main(["rate", str(swept)]) == 0
    out = capsys.readouterr().out
    assert "  1. " + image_key(b) in out
    assert "guidance_scale 5 wins 100 %" in out  # 6 votes between 5 and 2, all won by 5
    assert "seed 1: not enough votes yet (3 of 5)" in out  # only b-c differ in seed
    assert main(["report", str(swept)]) == 0
    written = capsys.readouterr().out
    assert "report.html" in written
    assert "grid.jpg" in written
    report = (swept / "report.html").read_text()
    assert "Ranking" in report
    assert "Win rates per axis" in report
    assert "the one" in report


def test_many_ratings_stay_linear_and_still_order_by_score() -> None:
    keys = [f"c{n:03d}:0" for n in range(300)]
    ratings = {k: Rating(k[:-2], 0, stars=1 + n % 5) for n, k in enumerate(keys)}
    games = comparisons(ratings, [])
    assert len(games) <= 300 * 3 * 5 + 300  # not 300 * 299 / 2
    ranking = rank_images(keys, ratings, [])
    scores = [entry.score for entry in ranking]
    assert scores == sorted(scores, reverse=True)
    # one rating alone counts: against the average image nobody rated
    alone = rank_images(["a:0", "b:0", "c:0"], {"c:0": Rating("c", 0, stars=5)}, [])
    assert alone[0].key == "c:0"
    assert alone[0].strength > 1


async def test_a_rated_4x4_sweep_and_20_blind_votes_survive_a_new_kernel(
    emu: Emulator, tmp_path: Path
) -> None:
    """The issue's "done when": rate a 4×4 sweep, run 20 blind comparisons, then a fresh read
    (as a new kernel does) shows the same ratings, the per-axis win rates and the winner, which
    restores into a panel."""
    from fluxwidget import FluxPanel

    plan = plan_sweep(BASE, "guidance_scale=2,3,4,5", "seed=1-4")
    async with client_for(emu) as client:
        runner = SweepRunner(client, plan, out=tmp_path / "grid")
        await runner.run_all()
    first = load_run(runner.run.path)
    assert len(first.images) == 16
    for image in first.images:  # higher guidance rated higher
        first.rate(image.job_id, image.index, stars=min(5, int(image.axes["guidance_scale"])))
    for _ in range(20):
        pair = first.next_pair()
        assert pair is not None
        a, b = pair
        ga, gb = a.axes["guidance_scale"], b.axes["guidance_scale"]
        first.vote(a.key, b.key, "tie" if ga == gb else ("a" if ga > gb else "b"))
    again = load_run(runner.run.path)  # a new kernel reads the folder
    assert {i.key: i.stars for i in again.images} == {i.key: i.stars for i in first.images}
    assert len(again.votes) == 20
    rates = again.win_rates()
    assert "guidance_scale" in rates
    best = again.winner()
    assert best is not None
    assert best.axes["guidance_scale"] == 5
    panel = FluxPanel(client=client_for(emu))
    panel.restore_input(best.input)
    assert panel.params.guidance_scale == 5
    assert panel.params.seed == best.seed
    panel.close()
