"""``medcite serve``: a web page to ask, follow up and review, on the library (one pipeline, one renderer).

:func:`make_app` builds the ASGI app for an index and a generator; :class:`Store` keeps every answer and its
review in one SQLite file.
"""

from __future__ import annotations

from pipeline.serve.answerer import Answerer, Busy
from pipeline.serve.app import create_app
from pipeline.serve.store import STATUSES, Store

__all__ = ["STATUSES", "Answerer", "Busy", "Store", "create_app"]
