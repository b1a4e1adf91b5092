"""The results store: tables and schema version, results, claims between live runs, cell identity and provenance."""
