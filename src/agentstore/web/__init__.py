"""``agentstore serve``: a read-only HTTP API (and the dashboard) over an
``AsyncAgentStore``, on Starlette. Needs the ``web`` extra: ``pip install
'agentstore[web]'``.

    app = create_app(store, token="s3cret")  # any ASGI server; the command runs uvicorn
"""

from agentstore.web.app import create_app

__all__ = ["create_app"]
