"""The observatory's Airflow plugin: the Observatory page and its API, and the delivery deadline.

* ``external_views``: "Observatory" in the UI's navigation (``/plugin/observatory``), the page served
  by the FastAPI app below, shown inside the Airflow UI.
* ``fastapi_apps``: the Observatory app mounted at ``/observatory`` on the API server (completeness
  grid, last validation per source with its HTML report, open unmapped labels, alerts), answering
  only to authenticated Airflow users. Built on first use: the scheduler, the DAG processor and
  the workers load this plugin too, and never need FastAPI.
* ``deadline_references``: ``DeliveryDueDate``, the due date of the period a source DAG run
  processes, used by every source DAG's ``DeadlineAlert``.
"""

from __future__ import annotations

from functools import cache

from airflow.plugins_manager import AirflowPlugin
from omh_observatory.deadlines import DeliveryDueDate

URL_PREFIX = "/observatory"


@cache
def _apps() -> list[dict]:
    from omh_observatory.app import create_app

    return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "OMH Observatory"}]


class ObservatoryPlugin(AirflowPlugin):
    name = "omh_observatory"
    deadline_references = [DeliveryDueDate]
    external_views = [
        {
            "name": "Observatory",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "observatory",
            # Its own entry in the navigation bar (a category would put it in that menu instead).
            "nav_top_level": True,
        }
    ]

    @property
    def fastapi_apps(self) -> list[dict]:  # type: ignore[override]
        return _apps()
