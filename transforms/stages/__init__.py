"""The stages one file goes through, each a function of its inputs: ``extract`` (file -> long table
of cells), ``guard`` (limits and figures that cannot be true), ``harmonize`` (cells -> canonical
observations), ``sheet_controls`` (totals on another sheet), ``validate`` (the GX suites).

Stages know contracts and readers; they know nothing of the warehouse, the lake or Airflow.
"""
