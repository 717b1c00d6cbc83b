"""API key arithmetic (services/runtime/auth.py) and the token bucket (services/runtime/ratelimit.py)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.runtime.auth import bearer_token, new_key, parse_key, verify
from services.runtime.problems import RateLimited, Unauthenticated
from services.runtime.ratelimit import RateLimiter

# --- keys -------------------------------------------------------------------------------------


def test_new_key_round_trips_through_parse_and_verify():
    key, key_id, salt, digest = new_key()
    assert key.startswith(f"sck_{key_id}_")
    parsed = parse_key(key)
    assert parsed is not None and parsed[0] == key_id
    assert verify(parsed[1], salt, digest) is True


def test_keys_not_shaped_like_ours_never_reach_the_store():
    assert parse_key("sck_ab\x00cd_secret") is None
    assert parse_key("sck_ab cd_secret") is None
    assert parse_key("sck_\u00e9\u00e9_secret") is None
    assert parse_key("sck_a1b2c3_secret") == ("a1b2c3", "secret")


def test_keys_are_unique_and_the_hash_is_not_the_secret():
    keys = [new_key() for _ in range(20)]
    assert len({k[0] for k in keys}) == len({k[1] for k in keys}) == len({k[2] for k in keys}) == 20
    for key, _, _, digest in keys:
        secret = parse_key(key)[1]
        assert secret.encode() not in digest and len(digest) == 32


def test_a_wrong_secret_or_salt_fails():
    key, _, salt, digest = new_key()
    _, secret = parse_key(key)
    assert verify(secret + "x", salt, digest) is False
    assert verify(secret[:-1], salt, digest) is False
    assert verify(secret, bytes(16), digest) is False
    other_key, _, other_salt, other_digest = new_key()
    assert verify(parse_key(other_key)[1], salt, digest) is False
    assert verify(secret, other_salt, other_digest) is False


def test_secret_may_contain_underscores():
    assert parse_key("sck_abc123_se_cr_et") == ("abc123", "se_cr_et")


@pytest.mark.parametrize(
    "key", ["", "sck", "sck_", "sck__secret", "sck_id_", "xyz_id_secret", "SCK_id_secret", "sck-id-secret", "id_secret"]
)
def test_badly_shaped_keys_are_not_parsed(key):
    assert parse_key(key) is None


@given(
    st.text(alphabet="0123456789abcdef", min_size=1, max_size=12),
    st.text(alphabet="ABCxyz019-_", min_size=1, max_size=40),
)
def test_parse_key_inverts_formatting(key_id, secret):
    assert parse_key(f"sck_{key_id}_{secret}") == (key_id, secret)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer   abc  ", "abc"),
        ("Bearer sck_a_b c", "sck_a_b c"),
    ],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Bearer    ", "Basic abc", "Token abc", "abc"])
def test_bad_authorization_is_401_with_a_challenge(header):
    with pytest.raises(Unauthenticated) as exc:
        bearer_token(header)
    assert exc.value.status == 401
    assert exc.value.headers["WWW-Authenticate"].startswith("Bearer")


# --- rate limiting --------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def retry_after(limiter: RateLimiter, key: str) -> int:
    with pytest.raises(RateLimited) as exc:
        limiter.acquire(key)
    assert exc.value.status == 429 and exc.value.retriable
    return int(exc.value.headers["Retry-After"])


def test_burst_is_available_at_once_then_limited():
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=5, clock=clock)
    for _ in range(5):
        limiter.acquire("k")
    assert retry_after(limiter, "k") == 1


def test_refill_at_the_rate():
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        limiter.acquire("k")
    clock.now += 0.5  # one token
    limiter.acquire("k")
    retry_after(limiter, "k")
    clock.now += 1.0  # two tokens
    limiter.acquire("k")
    limiter.acquire("k")
    retry_after(limiter, "k")


def test_tokens_never_exceed_the_burst():
    clock = Clock()
    limiter = RateLimiter(rate=10.0, burst=2, clock=clock)
    limiter.acquire("k")
    clock.now += 3600
    limiter.acquire("k")
    limiter.acquire("k")
    retry_after(limiter, "k")


def test_keys_are_independent():
    limiter = RateLimiter(rate=1.0, burst=1, clock=Clock())
    limiter.acquire("a")
    retry_after(limiter, "a")
    limiter.acquire("b")


def test_retry_after_is_whole_seconds_rounded_up():
    clock = Clock()
    limiter = RateLimiter(rate=0.25, burst=1, clock=clock)
    limiter.acquire("k")
    assert retry_after(limiter, "k") == 4
    clock.now += 1.5  # 0.375 tokens: 2.5 s missing
    assert retry_after(limiter, "k") == 3


def test_a_refused_request_costs_nothing():
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    limiter.acquire("k")
    for _ in range(10):
        retry_after(limiter, "k")
    clock.now += 1.0
    limiter.acquire("k")


@settings(max_examples=200, deadline=None)
@given(
    rate=st.sampled_from([0.5, 1.0, 2.0, 4.0, 10.0, 100.0]),
    burst=st.integers(1, 10),
    steps=st.lists(st.sampled_from([0.0, 0.125, 0.25, 0.5, 1.0, 2.0]), max_size=30),
)
def test_retry_after_is_at_least_one_and_honouring_it_succeeds(rate, burst, steps):
    """With binary-exact rates and waits: whenever a request is refused, Retry-After ≥ 1, and
    a retry after that many seconds is accepted."""
    clock = Clock()
    limiter = RateLimiter(rate=rate, burst=burst, clock=clock)
    for wait in steps:
        clock.now += wait
        try:
            limiter.acquire("k")
        except RateLimited as exc:
            seconds = int(exc.headers["Retry-After"])
            assert seconds >= 1
            clock.now += seconds
            limiter.acquire("k")


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.5, 50),
    burst=st.integers(1, 20),
    gaps=st.lists(st.floats(0, 5), max_size=40),
)
def test_never_more_than_burst_plus_rate_times_elapsed(rate, burst, gaps):
    clock = Clock()
    limiter = RateLimiter(rate=rate, burst=burst, clock=clock)
    accepted = 0
    for gap in gaps:
        clock.now += gap
        try:
            limiter.acquire("k")
            accepted += 1
        except RateLimited:
            pass
    assert accepted <= burst + rate * (clock.now - 1000.0) + 1e-6


def test_honouring_retry_after_succeeds_with_a_non_binary_rate():
    clock = Clock(0.0)
    limiter = RateLimiter(rate=0.3, burst=1, clock=clock)
    limiter.acquire("k")
    clock.now = 1 / 3
    seconds = retry_after(limiter, "k")
    clock.now += seconds
    limiter.acquire("k")
