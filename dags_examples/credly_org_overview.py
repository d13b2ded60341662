"""Read the Credly organization and summarise its badges (the foundation example).

Uses :class:`~airflow_provider_credly.hooks.credly.CredlyHook` directly from a TaskFlow task: the organization
profile, then the first pages of issued badges (page-number pagination, 50 per page), counted by state.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_provider_credly.hooks.credly import CredlyHook


@dag(
    dag_id="credly_org_overview",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"credly_conn_id": "credly_default", "max_pages": 4},
    tags=["credly", "example"],
)
def credly_org_overview() -> None:
    @task
    def read_organization(params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert params is not None  # injected from the context
        org = CredlyHook(params["credly_conn_id"]).get_conn().get_organization()
        print(f"Organization: {org.get('name')} ({org.get('id')})")
        return {"id": org.get("id"), "name": org.get("name")}

    @task
    def summarise_badges(params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert params is not None  # injected from the context
        client = CredlyHook(params["credly_conn_id"]).get_conn()
        states: Counter[str] = Counter()
        total = None
        for number, page in enumerate(client.iter_badge_pages(sort="-issued_at"), start=1):
            states.update(badge.get("state", "?") for badge in page.items)
            total = page.metadata.get("total_count", total)
            if number >= int(params["max_pages"]):
                break
        print(
            f"Badges in the organization: {total}; states of the newest {sum(states.values())}: {dict(states)}"
        )
        return {"total_count": total, "sampled_states": dict(states)}

    read_organization() >> summarise_badges()


credly_org_overview()
