"""Portable types: timestamps are aware UTC on both dialects, naive ones are refused,
JSON round-trips, ids are time-ordered UUIDs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from agentstore.backends import backend_for
from agentstore.boundary import translated
from agentstore.errors import ValidationError
from agentstore.models import Checkpoint, Run
from agentstore.types import (
    SerializedJSON,
    UTCDateTime,
    dumps_json,
    loads_json,
    uuid7,
    uuid_from_hex,
)
from tests.foundation.conftest import insert_run


def test_a_naive_datetime_is_refused_with_a_validation_error(engine: Engine) -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        insert_run(engine, created_at=datetime(2026, 1, 1, 12, 0))


def test_a_refused_write_leaves_nothing_behind(engine: Engine) -> None:
    with pytest.raises(ValidationError):
        insert_run(engine, created_at=datetime(2026, 1, 1, 12, 0))
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(Run)).scalar() == 0


def test_timestamps_come_back_aware_utc_and_equal_to_what_was_stored(
    engine: Engine,
) -> None:
    plus_five = timezone(timedelta(hours=5, minutes=30))
    stored = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=plus_five)
    run_id = insert_run(engine, created_at=stored)
    with engine.connect() as connection:
        loaded = connection.execute(sa.select(Run.created_at).where(Run.id == run_id)).scalar_one()
    assert loaded == stored
    assert loaded.tzinfo is UTC
    assert loaded.utcoffset() == timedelta(0)


def test_timestamps_sort_by_instant_across_zones(engine: Engine) -> None:
    early = datetime(2026, 1, 1, 23, 0, tzinfo=timezone(timedelta(hours=-5)))  # 04:00 UTC
    late = datetime(2026, 1, 2, 5, 0, tzinfo=timezone(timedelta(hours=+0)))  # 05:00 UTC
    insert_run(engine, goal="late", created_at=late)
    insert_run(engine, goal="early", created_at=early)
    with engine.connect() as connection:
        goals = connection.execute(sa.select(Run.goal).order_by(Run.created_at)).scalars().all()
    assert goals == ["early", "late"]


@pytest.mark.parametrize(
    "payload",
    [
        {"nested": {"list": [1, 2.5, None, True], "text": "héllo ✓ 漢字"}},
        [1, "two", {"three": 3}],
        "a plain string",
        0,
        {},
    ],
)
def test_json_round_trips(engine: Engine, payload: object) -> None:
    run_id = insert_run(engine)
    with engine.begin() as connection:
        checkpoint_id = connection.execute(
            sa.insert(Checkpoint)
            .values(run_id=run_id, status="running", payload=payload)
            .returning(Checkpoint.id)
        ).scalar_one()
    with engine.connect() as connection:
        loaded = connection.execute(
            sa.select(Checkpoint.payload).where(Checkpoint.id == checkpoint_id)
        ).scalar_one()
    assert loaded == payload


@pytest.mark.parametrize("bad", [{"when": datetime.now(UTC)}, {"nan": float("nan")}, {1: object()}])
def test_a_payload_that_is_not_json_is_refused(engine: Engine, bad: object) -> None:
    run_id = insert_run(engine)
    with (
        pytest.raises(ValidationError, match="JSON"),
        translated(backend_for(engine.url)),
        engine.begin() as connection,
    ):
        connection.execute(
            sa.insert(Checkpoint).values(run_id=run_id, status="running", payload=bad)
        )


def test_generated_ids_are_uuid_version_7_and_time_ordered() -> None:
    ids = [uuid7() for _ in range(1000)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert len(set(ids)) == len(ids)
    timestamps = [i.int >> 80 for i in ids]
    assert timestamps == sorted(timestamps)


def test_ids_are_native_uuids_in_the_database(engine: Engine) -> None:
    run_id = insert_run(engine)
    assert isinstance(run_id, uuid.UUID)
    assert run_id.version == 7


@given(st.datetimes(timezones=st.timezones()))
def test_sqlite_stores_timestamps_as_sqlalchemys_datetime_text(moment: datetime) -> None:
    # agentstore writes SQLite's timestamp text itself, for speed: it must stay exactly
    # the text SQLAlchemy's DATETIME writes, or older rows would sort and compare wrongly.
    dialect = sqlite.dialect()
    ours = UTCDateTime()._cached_bind_processor(dialect)
    sqlalchemys = sqlite.DATETIME().bind_processor(dialect)
    assert ours is not None and sqlalchemys is not None
    try:
        in_utc = moment.astimezone(UTC)
    except OverflowError:  # outside the years 1-9999 once in UTC: refused by name
        with pytest.raises(ValidationError, match="out of range"):
            ours(moment)
        return
    assert ours(moment) == sqlalchemys(in_utc.replace(tzinfo=None))


@given(st.datetimes(timezones=st.timezones()))
def test_sqlite_reads_timestamps_as_sqlalchemys_datetime_then_utc(moment: datetime) -> None:
    # agentstore parses SQLite's timestamp text itself, for speed: it must read exactly
    # what SQLAlchemy's DATETIME read, as an aware UTC datetime.
    dialect = sqlite.dialect()
    ours = UTCDateTime()._cached_result_processor(dialect, None)
    sqlalchemys = sqlite.DATETIME().result_processor(dialect, None)
    assert ours is not None and sqlalchemys is not None
    try:
        text = sqlite.DATETIME().bind_processor(dialect)(
            moment.astimezone(UTC).replace(tzinfo=None)
        )
    except OverflowError:
        return  # never stored: refused on the way in
    loaded = ours(text)
    assert loaded == sqlalchemys(text).replace(tzinfo=UTC)
    assert loaded.tzinfo is UTC


@pytest.mark.parametrize("text", ["2026-03-04 05:06:07", "2026-03-04 05:06:07.5", "2026-03-04"])
def test_sqlite_reads_other_timestamp_text_as_sqlalchemy_does(text: str) -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime()._cached_result_processor(dialect, None)
    sqlalchemys = sqlite.DATETIME().result_processor(dialect, None)
    assert ours is not None and sqlalchemys is not None
    assert ours(text) == sqlalchemys(text).replace(tzinfo=UTC)
    assert ours(None) is None


@given(st.uuids())
def test_ids_read_from_hex_text_are_the_uuids_stored(stored: uuid.UUID) -> None:
    loaded = uuid_from_hex(stored.hex)
    assert type(loaded) is uuid.UUID
    assert loaded == stored and hash(loaded) == hash(stored) and str(loaded) == str(stored)
    assert loaded.is_safe is uuid.SafeUUID.unknown
    assert uuid_from_hex(str(stored)) == stored  # the hyphenated form too
    assert uuid_from_hex(None) is None


def test_an_id_that_is_not_hex_is_refused_as_uuid_refuses_it() -> None:
    with pytest.raises(ValueError):
        uuid_from_hex("z" * 32)
    with pytest.raises(ValueError):
        uuid_from_hex("not a uuid")


@pytest.mark.parametrize("stored", ['{"a":[1,2]}', "[]", '"text"', " [1] ", "null", 0, 2.5, None])
def test_json_is_read_from_sqlite_as_json_loads_reads_it(stored: object) -> None:
    expected = json.loads(stored) if isinstance(stored, str) else stored
    assert loads_json(stored) == expected


@pytest.mark.parametrize("stored", ["[1] x", "{", ""])
def test_json_text_that_is_not_one_document_is_refused(stored: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        loads_json(stored)


def test_driver_datetimes_are_read_as_aware_utc() -> None:
    # psycopg hands back aware datetimes in the session's zone: one call makes them UTC.
    read = UTCDateTime()._cached_result_processor(postgresql.psycopg.dialect(), None)
    assert read is not None
    moment = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    plus_five = moment.astimezone(timezone(timedelta(hours=5, minutes=30)))
    for value in (moment, plus_five, moment.replace(tzinfo=None)):
        loaded = read(value)
        assert loaded == moment and loaded.tzinfo is UTC
    assert read(None) is None


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@given(JSON_VALUES)
def test_json_is_written_as_json_dumps_writes_it(value: object) -> None:
    """``dumps_json`` keeps one C encoder for every call: the text is ``json.dumps``'s
    with our options."""
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    assert dumps_json(value) == expected
    assert dumps_json(SerializedJSON(expected)) == expected


def test_a_value_that_contains_itself_is_refused_as_not_json() -> None:
    looped: dict[str, object] = {}
    looped["self"] = [looped]
    with pytest.raises(ValidationError, match="not JSON"):
        dumps_json(looped)
    assert dumps_json({"after": "a refusal"}) == '{"after":"a refusal"}'  # nothing stuck
