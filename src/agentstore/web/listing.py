"""The executions page's filters: read from its query string into an ``ExecutionQuery``,
and written back into links (a facet applied, the next page), so that every view of the
page is a URL one can share.

The names are the API's: ``scope``, ``status``, ``trigger`` and ``tool`` (each may be
repeated), ``from``, ``to``, ``code``, ``had_interaction``, ``sort``, ``cursor``,
``limit``. An empty value is no filter (an HTML form sends its empty fields).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from agentstore.executions import ExecutionQuery
from agentstore.web.params import execution_query

FILTERS = ("scope", "status", "trigger", "tool", "from", "to", "code", "had_interaction", "sort")
PAGING = ("cursor", "limit")
SORTS = {
    "created_at:desc": "newest first",
    "created_at:asc": "oldest first",
    "duration_ms:desc": "longest first",
    "duration_ms:asc": "shortest first",
}
# The API's spellings too (see ``params.SORTS``): one query string means the same on both.
ALIASES = {"created": "created_at", "duration": "duration_ms"}


@dataclass(frozen=True, slots=True)
class Filters:
    """The page's query string, its empty values dropped, in its own order."""

    pairs: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, items: Sequence[tuple[str, str]]) -> Filters:
        known = (*FILTERS, *PAGING)
        return cls(tuple((k, v) for k, v in items if k in known and v.strip() != ""))

    def one(self, name: str) -> str | None:
        """The last value of ``name`` (None: absent)."""
        values = self.all(name)
        return values[-1] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def ordering(self) -> str:
        """The sort asked for, spelled as ``SORTS`` spells it (``created_at:desc``)."""
        field, _, direction = (self.one("sort") or "created_at").partition(":")
        return f"{ALIASES.get(field, field)}:{direction or 'desc'}"

    def query(self) -> ExecutionQuery:
        """The listing these filters ask for (read as the API reads them). Raises
        ``ValidationError``."""
        return execution_query(self.pairs)

    def link(self, **changes: str | None) -> str:
        """The query string of these filters with ``changes`` (a value replaces every
        value of its name; None removes the name), on the first page: a filter changed
        makes the cursor meaningless. ``from_`` stands for ``from``."""
        names = {name.rstrip("_"): value for name, value in changes.items()}
        kept = [(k, v) for k, v in self.pairs if k not in names and k != "cursor"]
        kept += [(k, v) for k, v in names.items() if v is not None]
        return "?" + urlencode(kept)

    def next_page(self, cursor: str) -> str:
        """The query string of the page after this one."""
        kept = [(k, v) for k, v in self.pairs if k != "cursor"]
        return "?" + urlencode([*kept, ("cursor", cursor)])
