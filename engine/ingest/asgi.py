"""ASGI entry point for uvicorn (``engine.ingest.asgi:app``)."""

from engine.ingest.app import create_app

app = create_app()
