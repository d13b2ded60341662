"""Actions on issued items (revoke, delete, replace), one module per backend, with shared per-item results
(:mod:`.results`). Pure Python: no Airflow import."""
