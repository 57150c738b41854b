"""MLflow artifacts sealed at rest: the artifact repository MLflow writes through (:mod:`.repository`, named by
the entry points of :mod:`.entry`), the writer of a run's artifacts from memory (:mod:`.writer`), the home's
artifact files sealed and re-sealed without MLflow (:mod:`.files`), the MLflow server that opens them in
memory (:mod:`.server`) and the erasure of images from the runs that showed them (:mod:`.erasure`)."""
