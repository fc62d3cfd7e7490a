# The project installed into the official Airflow image (production shape; see docker-compose.yml).
FROM apache/airflow:3.3.2-python3.11
USER airflow
COPY --chown=airflow:root pyproject.toml constraints.txt /opt/omh/
COPY --chown=airflow:root transforms /opt/omh/transforms
RUN pip install --no-cache-dir -c /opt/omh/constraints.txt -e /opt/omh
COPY --chown=airflow:root . /opt/omh
ENV OMH_HOME=/opt/omh-data \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/omh/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/omh/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
