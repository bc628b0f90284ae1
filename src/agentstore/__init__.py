"""agentstore: storage for AI-agent systems, on SQLite (embedded) and PostgreSQL (cloud)."""

from agentstore.backends import DEFAULT_URL, create_engine, resolve_url
from agentstore.schema import migrate

__all__ = ["DEFAULT_URL", "create_engine", "migrate", "resolve_url"]
