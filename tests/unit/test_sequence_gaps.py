"""Gap bookkeeping of sequence numbers (cityos.ingest.gaps.advance): ranges in, gaps out."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityos.ingest.gaps import advance


def _missing(received: set[int]) -> list[tuple[int, int]]:
    """The maximal ranges of 1..max(received) that are not in ``received`` (the reference)."""
    gaps, start = [], None
    for n in range(1, max(received, default=0) + 1):
        if n not in received and start is None:
            start = n
        if n in received and start is not None:
            gaps.append((start, n - 1))
            start = None
    return gaps


def _feed(batches: list[list[int]]):
    highest, gaps = 0, []
    for batch in batches:
        state = advance(highest, gaps, batch)
        highest, gaps = state.highest, state.gaps
    return highest, gaps


arrivals = st.lists(st.lists(st.integers(1, 200), max_size=30), max_size=12)
SHARED_CORES = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # no timing verdicts


@SHARED_CORES
@given(arrivals)
def test_gaps_are_the_numbers_below_the_highest_that_never_arrived_whatever_the_order_and_batching(batches):
    received = {n for batch in batches for n in batch}
    assert _feed(batches) == (max(received, default=0), _missing(received))


@SHARED_CORES
@given(arrivals, st.randoms())
def test_the_result_does_not_depend_on_the_order_numbers_arrive_in(batches, rnd):
    shuffled = [n for batch in batches for n in batch]
    rnd.shuffle(shuffled)
    assert _feed(batches) == _feed([shuffled[i:i + 7] for i in range(0, len(shuffled), 7)])


@SHARED_CORES
@given(arrivals, st.lists(st.integers(1, 200), max_size=30))
def test_duplicates_open_nothing_close_nothing_and_are_counted(batches, again):
    highest, gaps = _feed(batches)
    seen = {n for batch in batches for n in batch}
    repeats = [n for n in again if n in seen]
    state = advance(highest, gaps, repeats)
    assert (state.highest, state.gaps, state.opened, state.closed) == (highest, gaps, [], [])
    assert state.duplicates == len(repeats)


@SHARED_CORES
@given(arrivals, st.lists(st.integers(1, 200), min_size=1, max_size=30))
def test_opened_and_closed_are_exactly_the_changed_gaps(batches, late):
    highest, gaps = _feed(batches)
    state = advance(highest, gaps, late)
    assert set(state.closed) == set(gaps) - set(state.gaps)
    assert set(state.opened) == set(state.gaps) - set(gaps)
    fresh = {n for n in late if n > highest or any(a <= n <= b for a, b in gaps)}
    assert state.duplicates == len(late) - len(fresh)


def test_a_late_number_splits_its_gap_and_the_first_number_of_a_stream_opens_one_below_it():
    state = advance(0, [], [5])
    assert (state.highest, state.gaps, state.opened) == (5, [(1, 4)], [(1, 4)])
    state = advance(10, [(3, 8)], [5])
    assert (state.gaps, state.opened, state.closed) == ([(3, 4), (6, 8)], [(3, 4), (6, 8)], [(3, 8)])
