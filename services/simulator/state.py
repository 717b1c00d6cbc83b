"""The simulator's progress on disk, so that a second run sends nothing twice.

A :class:`Checkpoint` says

- ``cursor``: every event delivered before it was acknowledged by the services;
- ``lease``: no event delivered at or after it was sent yet;
- ``next_hour``: the hours before it were generated, and ``pending`` holds every event they
  scheduled at or after ``cursor`` (resolutions days later, late deliveries, duplicates).

The live loop writes a checkpoint (atomically: temporary file, fsync, rename) *before* it
sends anything at or after the previous lease, and again when it stops; it only moves
``cursor`` over events the services acknowledged (202: durable in Kafka).

Why nothing is counted twice. A run resumes from the last checkpoint. Hours at or after
``next_hour`` were never generated, so they were never sent. What may have been sent without
being recorded lies in [``cursor``, ``lease``): events sent after the checkpoint was written,
so first seen by the aggregator after ``saved_at``. The aggregator counts an event (source,
id) once for as long as it keeps its key: ``AGGREGATOR_DEDUPE_HORIZON_DAYS`` (8 days by
default, never fewer than 7) after it first saw it. Events are a pure function of (seed,
hour), so a resent event has the id it had. Hence:

- resumed within :data:`HORIZON_S` (7 days) of ``saved_at``, the run starts again at
  ``cursor`` and resends [``cursor``, ``lease``) - a second copy of anything already counted
  is recognised and dropped;
- resumed later, keys may be gone, so the run starts at ``lease`` and drops that window: at
  most one window (a chunk of history, or a minute of live events) may be lost after a crash;
  nothing is ever counted twice. After a clean stop ``cursor == lease`` and nothing is lost.

The window is never longer than a chunk of the backfill or :data:`LIVE_LEASE_S` of live
events, so what is resent is always far younger than the horizon.
"""

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from services.simulator.events import Scheduled

FORMAT = 1
HORIZON_S = 7 * 86400.0  # the aggregator's minimum deduplication horizon
LIVE_LEASE_S = 60.0  # how far ahead of "now" a live checkpoint lets the loop send


@dataclass(slots=True)
class Checkpoint:
    seed: int
    cursor: float
    lease: float
    next_hour: int
    saved_at: float = 0.0
    pending: list[Scheduled] = field(default_factory=list)

    def resume_at(self, now: float) -> float:
        """Where a run resumed at wall-clock ``now`` starts sending (see the module docstring)."""
        return self.cursor if now - self.saved_at < HORIZON_S else self.lease

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {
            "format": FORMAT,
            "seed": self.seed,
            "cursor": self.cursor,
            "lease": self.lease,
            "next_hour": self.next_hour,
            "saved_at": self.saved_at,
            "pending": [[s.deliver_at, s.order[0], s.order[1], s.event] for s in self.pending],
        }
        return orjson.dumps(body)

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Checkpoint":
        """ValueError when the content is not a checkpoint of this format."""
        body = orjson.loads(raw)
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise ValueError("not a simulator checkpoint of format 1")
        pending = [Scheduled(float(at), (int(hour), int(k)), event) for at, hour, k, event in body["pending"]]
        return cls(
            seed=int(body["seed"]),
            cursor=float(body["cursor"]),
            lease=float(body["lease"]),
            next_hour=int(body["next_hour"]),
            saved_at=float(body["saved_at"]),
            pending=pending,
        )


class StateFile:
    """Where checkpoints live (``.smartcity/simulator-state.json`` in the dev stack)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Checkpoint | None:
        """The last checkpoint; None when there is none. ValueError if the file is corrupt."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return Checkpoint.from_bytes(raw)

    def save(self, checkpoint: Checkpoint) -> None:
        """Write atomically: a reader (or a crash) sees the previous checkpoint or this one."""
        checkpoint.saved_at = time.time()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("wb") as handle:
            handle.write(checkpoint.to_bytes())
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.path)
        with contextlib.suppress(OSError):  # make the rename durable where directories can be synced
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
