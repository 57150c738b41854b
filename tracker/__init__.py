"""imgvault.tracker: batch runs over collections, tracked in MLflow.

MLflow's usage telemetry is off in every process that imports this package (before MLflow is imported), and
in the MLflow servers that ``imgvault ui`` starts: a tool that keeps sensitive data sends nothing anywhere by
default. ``MLFLOW_DISABLE_TELEMETRY=false`` in the environment turns it back on.
"""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
