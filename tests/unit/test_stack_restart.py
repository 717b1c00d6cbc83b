"""The dev-stack supervisor's restart rule: waits of the one retry policy, doubling from
0.5 s to 30 s while a service keeps failing, and starting again from the first wait once it
has run healthily for a minute - so a service that crashes once a day is restarted at once."""

import pytest

from infra.stack import HEALTHY_AFTER_S, next_restart


def test_waits_double_while_a_service_keeps_failing_and_are_capped() -> None:
    streak, waits = 0, []
    for _ in range(9):
        streak, wait = next_restart(streak, ran_s=2.0)
        waits.append(wait)
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert streak == 9


@pytest.mark.parametrize("streak", [0, 1, 6, 40])
def test_a_healthy_run_starts_the_streak_again(streak: int) -> None:
    assert next_restart(streak, ran_s=HEALTHY_AFTER_S) == (1, 0.5)
    assert next_restart(streak, ran_s=HEALTHY_AFTER_S - 1) == (streak + 1, next_restart(streak, 0.0)[1])


def test_the_wait_named_is_the_wait_before_this_restart() -> None:
    """The first restart waits the first wait (not the second one, as the log once said)."""
    assert next_restart(0, ran_s=0.1) == (1, 0.5)
    assert next_restart(1, ran_s=0.1) == (2, 1.0)
