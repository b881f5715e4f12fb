"""ASGI entry point for uvicorn (``engine.ingest.asgi:app``)."""

from config.settings import get_settings
from engine.audit.hooks import process_started
from engine.ingest.app import create_app
from engine.runtime.logs import configure_logging

configure_logging(get_settings())
app = create_app()
process_started(app.state.container, "ingest")
