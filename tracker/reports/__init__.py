"""What people read of the runs: comparisons read back from MLflow (:mod:`.compare`), the threat matrix
(:mod:`.threat`), the parent runs' figures (:mod:`.figures`) and the HTML report (:mod:`.page`, with its
tables, curves and sample images)."""
