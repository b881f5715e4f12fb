"""The HTTP ingest (FastAPI): accepts jobs, answers health and metrics."""
