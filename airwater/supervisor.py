"""Keeps the components of ``airwater run`` running: a component that exits is restarted
after a growing delay; one that keeps exiting stops the run instead of looping for ever."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from airwater.embedded import die_with_parent

__all__ = ["Component", "ComponentFailed", "Supervisor", "describe_exit", "restart_delay"]

log = logging.getLogger(__name__)

# the first restart comes soon (a passing fault: the broker or database restarting); each
# quick exit doubles the wait, up to 30 s, so a flapping component does not flood the log
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0
# a component that ran this long had started properly: its next crash is a new story
STABLE_AFTER_S = 60.0
# 5 exits in 2 minutes is a crash loop, not bad luck (one that crashes at start-up gets
# there in ~15 s: 1+2+4+8 s of backoff); restarting on would hide it, so the run stops
MAX_EXITS = 5
EXIT_WINDOW_S = 120.0
# as long as the components' own shutdown (a batch to commit, requests to finish) may take
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Component:
    """A process to supervise: ``argv`` run with ``env`` (None = this process's).

    A ``one_shot`` component (a backfill) runs once: its end is logged, it is not restarted.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    one_shot: bool = False


class ComponentFailed(Exception):
    """A component exited ``max_exits`` times within the window: it is not restarted."""

    def __init__(self, name: str, exits: Sequence[str], span_s: float, window_s: float) -> None:
        self.name = name
        self.exits = tuple(exits)
        self.span_s = span_s
        super().__init__(
            f"{name} exited {len(self.exits)} times in {span_s:.1f} s "
            f"({', '.join(self.exits)}); {len(self.exits)} exits within {window_s:g} s "
            "is the limit: not restarting it again, stopping the run; why it exited is in "
            "its own log lines and traceback above"
        )


def restart_delay(
    consecutive: int, first_s: float = FIRST_DELAY_S, max_s: float = MAX_DELAY_S
) -> float:
    """Seconds before the ``consecutive``-th restart in a row (1 = the first): ``first_s``,
    doubling each time, at most ``max_s``."""
    return min(max_s, first_s * 2 ** max(consecutive - 1, 0))


def describe_exit(returncode: int) -> str:
    """``exit code 1`` or, for a process ended by a signal, ``signal SIGKILL``."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal {-returncode}"


@dataclass
class _Supervised:
    component: Component
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None  # set while waiting to restart
    restarts: int = 0
    consecutive: int = 0  # restarts since it last stayed up STABLE_AFTER_S: the backoff
    exits: deque[tuple[float, str]] = field(default_factory=deque)  # (when, how) in the window


class Supervisor:
    """Starts components as child processes and, on each :meth:`step`, restarts those that
    exited, with backoff; :meth:`stop` ends them all. Times are in seconds."""

    def __init__(
        self,
        *,
        first_delay_s: float = FIRST_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
        stable_after_s: float = STABLE_AFTER_S,
        max_exits: int = MAX_EXITS,
        exit_window_s: float = EXIT_WINDOW_S,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        preexec_fn: Callable[[], None] | None = die_with_parent,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.stable_after_s = stable_after_s
        self.max_exits = max_exits
        self.exit_window_s = exit_window_s
        self.stop_timeout_s = stop_timeout_s
        self._preexec_fn = preexec_fn
        self._clock = clock
        self._supervised: dict[str, _Supervised] = {}

    def start(self, component: Component) -> int:
        """Start ``component`` now; its pid. A failure to start at all (OSError) is raised."""
        if component.name in self._supervised:
            raise ValueError(f"a component named {component.name!r} is already supervised")
        unit = _Supervised(component)
        self._supervised[component.name] = unit
        self._spawn(unit)
        assert unit.process is not None
        return unit.process.pid

    def pid(self, name: str) -> int | None:
        """The pid of the component's current process; None while it waits to restart."""
        unit = self._supervised.get(name)
        return unit.process.pid if unit and unit.process else None

    def restarts(self, name: str) -> int:
        """How many times the component was restarted (or tried to be)."""
        return self._supervised[name].restarts

    def step(self) -> None:
        """Notice exits and start the restarts that are due. Call it often (every 0.5 s).

        Raises ComponentFailed (after logging it) when a component exited ``max_exits``
        times within ``exit_window_s``; the other components keep running until stop().
        """
        now = self._clock()
        for unit in list(self._supervised.values()):
            if unit.process is not None:
                returncode = unit.process.poll()
                if returncode is not None:
                    self._exited(unit, describe_exit(returncode), now)
            elif unit.restart_at is not None and now >= unit.restart_at:
                unit.restarts += 1
                try:
                    self._spawn(unit)
                except OSError as exc:
                    self._exited(unit, f"could not start: {exc}", now)

    def stop(self) -> None:
        """Terminate every running component (SIGTERM), wait up to ``stop_timeout_s`` for all
        of them, kill (SIGKILL) those still running. Nothing is restarted afterwards."""
        running = [unit for unit in self._supervised.values() if unit.process is not None]
        self._supervised.clear()
        for unit in running:
            assert unit.process is not None
            if unit.process.poll() is None:
                unit.process.terminate()
        deadline = time.monotonic() + self.stop_timeout_s
        for unit in running:
            assert unit.process is not None
            try:
                unit.process.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s still running %g s after SIGTERM; killing it",
                    unit.component.name,
                    self.stop_timeout_s,
                )
                unit.process.kill()
                unit.process.wait()

    def _spawn(self, unit: _Supervised) -> None:
        component = unit.component
        unit.restart_at = None
        unit.started_at = self._clock()
        unit.process = subprocess.Popen(
            list(component.argv),
            env=None if component.env is None else dict(component.env),
            preexec_fn=self._preexec_fn,
        )
        if unit.restarts:
            log.info(
                "restarted %s (pid %d, restart %d)",
                component.name,
                unit.process.pid,
                unit.restarts,
            )
        else:
            log.info("started %s (pid %d)", component.name, unit.process.pid)

    def _exited(self, unit: _Supervised, how: str, now: float) -> None:
        name = unit.component.name
        uptime = now - unit.started_at
        unit.process = None
        if unit.component.one_shot:
            del self._supervised[name]
            level = logging.INFO if how == "exit code 0" else logging.WARNING
            log.log(level, "%s finished with %s after %.0f s", name, how, uptime)
            return
        unit.exits.append((now, how))
        while now - unit.exits[0][0] > self.exit_window_s:
            unit.exits.popleft()
        if len(unit.exits) >= self.max_exits:
            del self._supervised[name]
            failure = ComponentFailed(
                name,
                [exit_how for _, exit_how in unit.exits],
                now - unit.exits[0][0],
                self.exit_window_s,
            )
            log.error("%s", failure)
            raise failure
        if uptime >= self.stable_after_s:
            unit.consecutive = 0
        unit.consecutive += 1
        delay = restart_delay(unit.consecutive, self.first_delay_s, self.max_delay_s)
        unit.restart_at = now + delay
        log.warning(
            "%s exited with %s after %.1f s; restart %d in %g s",
            name,
            how,
            uptime,
            unit.restarts + 1,
            delay,
        )
