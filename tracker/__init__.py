"""imgvault.tracker: batch runs over collections, tracked in MLflow (see the open issue on runs)."""
