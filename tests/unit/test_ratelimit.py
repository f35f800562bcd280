"""The fixed-window rate limiter (pure)."""

from cityos.platform.ratelimit import Limits, RateLimiter


def test_requests_beyond_the_minute_rate_wait_for_the_next_minute():
    limiter = RateLimiter()
    limits = Limits(per_minute=3, per_day=100)
    assert [limiter.check("a", limits, now=120.0) for _ in range(3)] == [None, None, None]
    assert limiter.check("a", limits, now=150.0) == 31
    assert limiter.check("a", limits, now=180.0) is None


def test_daily_quota_holds_across_minutes():
    limiter = RateLimiter()
    limits = Limits(per_minute=10, per_day=2)
    assert limiter.check("a", limits, now=0.0) is None
    assert limiter.check("a", limits, now=100.0) is None
    assert limiter.check("a", limits, now=200.0) == 86_400 - 200 + 1


def test_callers_are_counted_separately():
    limiter = RateLimiter()
    limits = Limits(per_minute=1, per_day=10)
    assert limiter.check("a", limits, now=0.0) is None
    assert limiter.check("b", limits, now=0.0) is None


def test_a_cheaper_request_counts_its_weight():
    limiter = RateLimiter()
    limits = Limits(per_minute=2, per_day=100)
    assert [limiter.check("a", limits, now=0.0, cost=0.1) for _ in range(20)] == [None] * 20
    assert limiter.check("a", limits, now=0.0, cost=0.1) is not None


def test_live_connections_are_capped_per_caller_and_in_total():
    from cityos.platform.ratelimit import ConnectionCap

    cap = ConnectionCap(per_caller=2, total=3)
    assert [cap.acquire("a"), cap.acquire("a")] == [None, None]
    assert "per address" in cap.acquire("a")
    assert cap.acquire("b") is None
    assert "capacity" in cap.acquire("c")
    cap.release("a")
    assert cap.acquire("c") is None
