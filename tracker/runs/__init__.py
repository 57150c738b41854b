"""Batch runs: several methods (and values of k) over a whole collection, stored sealed, tracked in MLflow.

Plan (:mod:`.plan`: every setting checked, the pixels loaded) -> compute (:mod:`.compute`: each configuration's
per-image results, in parallel, by fit mode) -> persist (:mod:`.persist`: one transaction per child run in the
store, then MLflow through :mod:`.mlflow_log`). What a batch runs and gives back is in :mod:`.config`.
"""

from imgvault.tracker.runs.config import DEFAULT_FIGURES, BatchConfig, BatchResult, ChildRun, ImageResult
from imgvault.tracker.runs.persist import ATTACK_STEPS, run_batch

__all__ = ["ATTACK_STEPS", "DEFAULT_FIGURES", "BatchConfig", "BatchResult", "ChildRun", "ImageResult", "run_batch"]
