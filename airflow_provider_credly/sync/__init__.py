"""Keeping Credly in line with a source of truth: :mod:`.employees` syncs Workforce employees with an HR
roster. Pure Python: no Airflow import."""
