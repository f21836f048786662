"""The supervisor of `airwater run`, on real (tiny) processes with short delays."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airwater.supervisor import (
    Component,
    ComponentFailed,
    Supervisor,
    describe_exit,
    restart_delay,
)

SLEEPS = [sys.executable, "-c", "import time; time.sleep(60)"]
FAILS = [sys.executable, "-c", "import sys; sys.exit(1)"]
# exits 1 the first time (no marker yet), then stays up
FAILS_ONCE = """
import pathlib, sys, time
marker = pathlib.Path(sys.argv[1])
if not marker.exists():
    marker.touch()
    sys.exit(1)
time.sleep(60)
"""


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    supervisor = Supervisor(
        first_delay_s=0.05, max_delay_s=0.4, max_exits=3, exit_window_s=10, stop_timeout_s=5
    )
    try:
        yield supervisor
    finally:
        supervisor.stop()


def step_until(supervisor: Supervisor, done: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the supervisor did not get there in time"
        supervisor.step()
        time.sleep(0.02)


def step_for(supervisor: Supervisor, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        supervisor.step()
        time.sleep(0.02)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "airwater.supervisor" and r.levelno == logging.WARNING
    ]


def test_backoff_doubles_from_the_first_delay_up_to_the_cap():
    assert [restart_delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert [restart_delay(n, first_s=0.5, max_s=3) for n in (1, 2, 3, 4)] == [0.5, 1, 2, 3]
    assert restart_delay(100) == 30  # no overflow after a long outage


def test_an_exit_is_described_by_its_code_or_its_signal():
    assert describe_exit(0) == "exit code 0"
    assert describe_exit(1) == "exit code 1"
    assert describe_exit(-signal.SIGKILL) == "signal SIGKILL"


def test_a_component_that_exits_once_is_restarted_and_stays_up(supervisor, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="airwater.supervisor")
    marker = tmp_path / "started-once"
    first_pid = supervisor.start(
        Component("flaky", [sys.executable, "-c", FAILS_ONCE, str(marker)])
    )
    step_until(supervisor, lambda: supervisor.restarts("flaky") == 1)
    second_pid = supervisor.pid("flaky")
    assert second_pid is not None and second_pid != first_pid
    assert marker.exists()
    step_for(supervisor, 1)  # it stays up: no further restart
    assert supervisor.pid("flaky") == second_pid
    assert supervisor.restarts("flaky") == 1
    [exited] = warnings_of(caplog)
    assert exited.startswith("flaky exited with exit code 1 after ")
    assert exited.endswith("; restart 1 in 0.05 s")
    messages = [r.getMessage() for r in caplog.records]
    assert f"started flaky (pid {first_pid})" in messages
    assert f"restarted flaky (pid {second_pid}, restart 1)" in messages


def test_a_component_that_keeps_exiting_stops_the_supervision(supervisor, caplog):
    caplog.set_level(logging.INFO, logger="airwater.supervisor")
    supervisor.start(Component("broken", FAILS))
    supervisor.start(Component("steady", SLEEPS))
    with pytest.raises(ComponentFailed) as failed:
        step_for(supervisor, 10)
    assert failed.value.name == "broken"
    assert failed.value.exits == ("exit code 1",) * 3
    assert 0.05 + 0.1 <= failed.value.span_s < 5  # the two backoff delays between the exits
    message = str(failed.value)
    assert message.startswith("broken exited 3 times in ")
    assert "(exit code 1, exit code 1, exit code 1)" in message
    assert "3 exits within 10 s is the limit" in message
    assert "its own log lines and traceback above" in message
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [message]
    # restarted twice (after the first and the second exit), not after the third
    assert [w.rsplit(";", 1)[1] for w in warnings_of(caplog)] == [
        " restart 1 in 0.05 s",
        " restart 2 in 0.1 s",
    ]
    assert supervisor.pid("broken") is None
    assert supervisor.pid("steady") is not None  # the others run until stop()


def test_a_killed_component_is_restarted_and_the_others_keep_their_process(supervisor, caplog):
    caplog.set_level(logging.INFO, logger="airwater.supervisor")
    victim_pid = supervisor.start(Component("victim", SLEEPS))
    bystander_pid = supervisor.start(Component("bystander", SLEEPS))
    os.kill(victim_pid, signal.SIGKILL)
    step_until(supervisor, lambda: supervisor.pid("victim") not in (None, victim_pid))
    assert supervisor.restarts("victim") == 1
    assert supervisor.pid("bystander") == bystander_pid
    assert supervisor.restarts("bystander") == 0
    [exited] = warnings_of(caplog)
    assert exited.startswith("victim exited with signal SIGKILL after ")


def test_backoff_grows_with_quick_exits_and_restarts_after_a_long_run(caplog):
    caplog.set_level(logging.INFO, logger="airwater.supervisor")

    def delays(command: list[str], stable_after_s: float) -> list[str]:
        caplog.clear()
        supervisor = Supervisor(
            first_delay_s=0.05, max_delay_s=10, stable_after_s=stable_after_s, max_exits=10
        )
        try:
            supervisor.start(Component("worker", command))
            step_until(supervisor, lambda: len(warnings_of(caplog)) == 3)
        finally:
            supervisor.stop()
        return [w.rsplit(" in ", 1)[1] for w in warnings_of(caplog)]

    assert delays(FAILS, stable_after_s=60) == ["0.05 s", "0.1 s", "0.2 s"]
    ran_a_while = [sys.executable, "-c", "import sys, time; time.sleep(0.4); sys.exit(1)"]
    assert delays(ran_a_while, stable_after_s=0.3) == ["0.05 s", "0.05 s", "0.05 s"]


def test_a_one_shot_job_is_logged_when_it_ends_and_not_restarted(supervisor, caplog):
    caplog.set_level(logging.INFO, logger="airwater.supervisor")
    supervisor.start(Component("backfill", FAILS, one_shot=True))
    step_until(supervisor, lambda: any("finished" in r.getMessage() for r in caplog.records))
    step_for(supervisor, 0.5)
    finished = [r for r in caplog.records if "finished" in r.getMessage()]
    assert [r.getMessage().split(" after ")[0] for r in finished] == [
        "backfill finished with exit code 1"
    ]
    assert finished[0].levelno == logging.WARNING
    assert supervisor.pid("backfill") is None
    assert not any("restart" in r.getMessage() for r in caplog.records)


def test_stop_ends_every_component_and_kills_one_that_ignores_sigterm(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="airwater.supervisor")
    ready = tmp_path / "ready"
    stubborn = (
        "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "pathlib.Path(sys.argv[1]).touch(); time.sleep(60)"
    )
    supervisor = Supervisor(stop_timeout_s=0.5)
    polite = supervisor.start(Component("polite", SLEEPS))
    stubborn_pid = supervisor.start(
        Component("stubborn", [sys.executable, "-c", stubborn, str(ready)])
    )
    deadline = time.monotonic() + 10
    while not ready.exists():  # SIGTERM ignored only once the child says so
        assert time.monotonic() < deadline
        time.sleep(0.02)
    began = time.monotonic()
    supervisor.stop()
    assert 0.5 <= time.monotonic() - began < 5
    assert not Path(f"/proc/{polite}").exists()
    assert not Path(f"/proc/{stubborn_pid}").exists()
    assert "stubborn still running 0.5 s after SIGTERM; killing it" in caplog.messages
    assert "polite still running" not in caplog.text
    supervisor.step()  # nothing left to restart
    assert supervisor.pid("polite") is None
