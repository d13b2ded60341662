"""Apache Airflow provider for Credly and Canvas Credentials."""

from __future__ import annotations

__version__ = "0.1.0"
