# The observatory in the official Airflow image (production shape; see docker-compose.yml).
FROM apache/airflow:3.3.2-python3.11

USER airflow
# Dependencies first (a layer that changes only with the pins): the project's own pins, which
# include the Celery provider and celery < 5.7 (CeleryExecutor, `airflow celery worker`), the same
# packages `make setup` installs for `make cluster`.
COPY --chown=airflow:root pyproject.toml constraints.txt /opt/omh/
COPY --chown=airflow:root transforms /opt/omh/transforms
RUN pip install --no-cache-dir -c /opt/omh/constraints.txt \
        -e /opt/omh \
        "apache-airflow-providers-celery==3.26.0"

# Then the code and data the DAGs read: DAGs, the plugin, contracts, suites, SQL, code lists.
COPY --chown=airflow:root . /opt/omh

ENV OMH_HOME=/opt/omh-data \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/omh/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/omh/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    GX_ANALYTICS_ENABLED=False
