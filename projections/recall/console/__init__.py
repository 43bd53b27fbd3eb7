"""The web console: server-rendered pages (Jinja2, vendored htmx) under ``/console`` of the
recall service, for an operator holding CONSOLE_API_KEY (``projections.recall.console.pages``)."""

from projections.recall.console.pages import install
from projections.recall.console.pipeline import Pipeline

__all__ = ["Pipeline", "install"]
