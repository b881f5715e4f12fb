"""ASGI entry point for uvicorn (``engine.ingest.asgi:app``): the public API and, on the internal port, metrics
and detailed health (``engine/ingest/internal.py``), over one container."""

from config.settings import get_settings
from engine.audit.hooks import process_started
from engine.ingest.app import create_app
from engine.ingest.internal import PortDispatch, create_internal_app
from engine.runtime.container import bootstrap
from engine.runtime.logs import configure_logging

settings = get_settings()
configure_logging(settings)
container = bootstrap(settings)
app = PortDispatch(create_app(container), create_internal_app(container), settings.http.internal_port)
process_started(container, "ingest")
