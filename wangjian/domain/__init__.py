"""Pure campaign rules: no database, no Prefect, no I/O — tested without the engine."""
