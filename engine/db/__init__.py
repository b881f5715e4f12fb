"""PostgreSQL adapters: table definitions, engine factory, migrations and repositories."""
