"""The observatory's Airflow extensions: the delivery deadline reference and the Observatory view.

Loaded through ``plugins/omh_plugin.py``. Importing this package costs nothing: the FastAPI app
(``omh_observatory.app``) is built only when the API server asks the plugin for it.
"""
