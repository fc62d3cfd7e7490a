"""What Airflow uses around the loads: the DAGs' shared settings (``airflow_env``), the delivery
calendar (``delivery``), alerts, lineage, the mirror checks of the regional DAG and the
Observatory page's data (``observatory``)."""
