"""Exactly-once issuing: the backend-independent bulk machinery (:mod:`.bulk`) and one issuer per backend
(:mod:`.credly`, :mod:`.canvas`). Pure Python: no Airflow import."""
