"""The playground: a page served by the service to invoke its pipeline and watch it run.

Plain HTML/CSS/JS under `static/` (no build step, no CDN): the page reads `/info`, builds a
form from the parameter schema, calls `/invoke`, follows `/stream/{job_id}` and keeps this
tab's recent jobs in `sessionStorage`.
"""

from __future__ import annotations

from zenml_serving.playground.routes import PLAYGROUND_PATH, playground_handlers

__all__ = ["PLAYGROUND_PATH", "playground_handlers"]
