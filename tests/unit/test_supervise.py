"""The local runtime's supervisor: how long it waits before starting a crashed service again."""

import itertools

from cityos.deploy.runtime.supervise import BACKOFF_FIRST_S, BACKOFF_MAX_S, backoff_s


def test_the_delay_doubles_while_a_service_keeps_failing_and_is_capped():
    delays = [backoff_s(n) for n in range(1, 10)]
    assert delays[0] == BACKOFF_FIRST_S
    assert all(b == min(2 * a, BACKOFF_MAX_S) for a, b in itertools.pairwise(delays))
    assert delays[-1] == BACKOFF_MAX_S
