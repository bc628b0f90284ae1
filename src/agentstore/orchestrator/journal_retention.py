"""Retention for a run's journals (events, checkpoints): keep each run's latest rows, or
the ones younger than a cutoff, or both, deleting the rest in bounded batches.

A prune is a loop of batches, one transaction each (``Pruning`` drives it; the faces in
``journal_extras`` only carry its calls to the database), so it never holds locks for
long, and a concurrent append is never lost: a batch deletes only rows older than the
ones it keeps, found again in each batch.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from agentstore import validation
from agentstore.errors import ValidationError
from agentstore.models import Checkpoint, Event, Run
from agentstore.operations import Repository, reads, writes
from agentstore.validation import Id

#: Runs looked at per read when a prune keeps the latest rows of every run.
RUNS_PER_PAGE = 500


@dataclass(frozen=True, slots=True)
class Journal:
    """A table of rows appended under a run: its name, its order (oldest first), the
    column its age is read from."""

    name: str
    model: Any
    order: tuple[Any, ...]
    age: Any


EVENTS = Journal("events", Event, (Event.id,), Event.ts)
CHECKPOINTS = Journal(
    "checkpoints", Checkpoint, (Checkpoint.created_at, Checkpoint.id), Checkpoint.created_at
)
JOURNALS = {journal.name: journal for journal in (EVENTS, CHECKPOINTS)}


@dataclass(frozen=True, slots=True)
class Prune:
    """What a prune keeps, checked: a row goes when it is neither among its run's
    ``keep_latest`` newest nor younger than ``cutoff`` (a None keeps nothing by it)."""

    journal: str
    run_id: UUID | None
    keep_latest: int | None
    cutoff: datetime | None
    batch_size: int

    @classmethod
    def checked(
        cls,
        journal: Journal,
        run_id: Id | None,
        keep_latest: int | None,
        older_than: datetime | timedelta | None,
        batch_size: int,
    ) -> Prune:
        if keep_latest is None and older_than is None:
            raise ValidationError("give keep_latest, older_than or both: what to keep")
        return cls(
            journal.name,
            None if run_id is None else validation.identifier(run_id, "run_id"),
            None
            if keep_latest is None
            else validation.positive_int(keep_latest, "keep_latest", minimum=0),
            None if older_than is None else validation.cutoff(older_than),
            validation.positive_int(batch_size, "batch_size", maximum=10_000),
        )


class JournalRetention(Repository, aggregate="events"):
    """The batches of ``store.events.prune`` (and, as ``CheckpointRetention``, of
    ``store.checkpoints.prune``)."""

    __slots__ = ()

    @writes
    def prune_batch(self, prune: Prune, run_id: UUID | None, after: Any) -> tuple[int, Any]:
        """Delete about ``prune.batch_size`` rows that ``prune`` does not keep, of
        ``run_id`` (None: of every run, only by age), from where the batch before ended
        (``after``; None: the start); how many were deleted, and where this one ended."""
        journal = JOURNALS[prune.journal]
        where = _older(journal, prune.cutoff, run_id)
        if prune.keep_latest is not None:
            assert run_id is not None  # the newest rows are counted per run
            # The newest row not kept: everything up to it goes (on PostgreSQL a row
            # appended meanwhile is newer, so this only ever keeps more).
            first_gone = self._connection.execute(
                sa.select(*journal.order)
                .where(journal.model.run_id == run_id)
                .order_by(*(column.desc() for column in journal.order))
                .offset(prune.keep_latest)
                .limit(1)
            ).first()
            if first_gone is None:
                return 0, after
            where.append(_up_to(journal.order, tuple(first_gone)))
        # In the order of the index that finds the rows: the run's, else their age's.
        order = journal.order if run_id is not None else (journal.age,)
        if after is not None:
            # Where the last batch ended, so as not to pass again over the index entries
            # it deleted (PostgreSQL keeps them until a vacuum: each batch would read
            # every earlier batch's rows again).
            where.append(order[0] >= after)
        # Where this batch ends, read first (one row back): the batch is then a range of
        # the index, deleted without a join. Rows sharing its last row's age or order
        # go with it, so a batch may pass ``batch_size`` by those.
        batch = sa.select(order[0]).where(*where).order_by(*order).limit(prune.batch_size)
        end = self._connection.execute(sa.select(sa.func.max(batch.subquery().c[0]))).scalar()
        if end is None:
            return 0, after
        deleted = self._connection.execute(sa.delete(journal.model).where(*where, order[0] <= end))
        return int(deleted.rowcount), end

    @reads
    def runs_to_trim(self, prune: Prune, after: UUID | None) -> list[UUID]:
        """The next runs (by id, after ``after``) with more than ``prune.keep_latest``
        rows: the ones a prune of every run visits."""
        assert prune.keep_latest is not None
        journal = JOURNALS[prune.journal]
        one_too_many = (
            sa.select(sa.literal(1))
            .where(journal.model.run_id == Run.id)
            .order_by(*(column.desc() for column in journal.order))
            .offset(prune.keep_latest)
            .limit(1)
        )
        query = sa.select(Run.id).where(one_too_many.exists())
        if after is not None:
            query = query.where(Run.id > after)
        query = query.order_by(Run.id).limit(RUNS_PER_PAGE)
        return list(self._connection.execute(query).scalars())

    @reads
    def prunable(self, prune: Prune) -> int:
        """How many rows a prune would delete now (a dry run's count)."""
        journal = JOURNALS[prune.journal]
        where = _older(journal, prune.cutoff, prune.run_id)
        if prune.keep_latest is None:
            count = sa.select(sa.func.count()).select_from(journal.model).where(*where)
            return int(self._connection.execute(count).scalar_one())
        newest_first = [column.desc() for column in journal.order]
        rank = sa.func.row_number().over(partition_by=journal.model.run_id, order_by=newest_first)
        ranked = (
            sa.select(rank.label("rank"), journal.age.label("age"))
            .where(*_older(journal, None, prune.run_id))
            .subquery()
        )
        kept = [ranked.c.rank > prune.keep_latest]
        if prune.cutoff is not None:
            kept.append(ranked.c.age < prune.cutoff)
        count = sa.select(sa.func.count()).select_from(ranked).where(*kept)
        return int(self._connection.execute(count).scalar_one())


class CheckpointRetention(JournalRetention, aggregate="checkpoints"):
    """``JournalRetention`` under the checkpoints' name (its calls' spans say so)."""

    __slots__ = ()


def _older(journal: Journal, cutoff: datetime | None, run_id: UUID | None) -> list[Any]:
    where = []
    if run_id is not None:
        where.append(journal.model.run_id == run_id)
    if cutoff is not None:
        where.append(journal.age < cutoff)
    return where


def _up_to(order: tuple[Any, ...], last: tuple[Any, ...]) -> Any:
    if len(order) == 1:
        return order[0] <= last[0]  # a plain comparison, which every index serves
    return sa.tuple_(*order) <= sa.tuple_(*last)


# What a face does with a step of a prune: a write of one batch or a read of runs.
Step = tuple[str, Any, tuple[Any, ...]]


def pruning(prune: Prune) -> Generator[Step, Any, int]:
    """A prune as the calls it makes, in order: each step yields (``"read"`` or
    ``"write"``, the operation, its arguments) and is sent the result; returns how many
    rows were deleted. The sync and async faces run the same steps."""
    deleted = 0

    def batches(run_id: UUID | None) -> Generator[Step, Any, None]:
        nonlocal deleted
        after = None
        while True:
            count, after = yield ("write", JournalRetention.prune_batch, (prune, run_id, after))
            deleted += count
            if count < prune.batch_size:
                return

    if prune.run_id is not None or prune.keep_latest is None:
        yield from batches(prune.run_id)
        return deleted
    after = None
    while True:
        runs = yield ("read", JournalRetention.runs_to_trim, (prune, after))
        for run_id in runs:
            yield from batches(run_id)
        if len(runs) < RUNS_PER_PAGE:
            return deleted
        after = runs[-1]
