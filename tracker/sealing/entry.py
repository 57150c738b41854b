"""What the ``mlflow.artifact_repository`` entry points name: a factory of sealed artifact repositories.

A module of its own that imports no MLflow at import time, so that MLflow's registry can load the entry
point while :mod:`.repository` itself is still being imported (importing it imports the registry).
"""


def sealed_repository(artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None):
    """The :class:`~imgvault.tracker.sealing.repository.SealedArtifactRepository` of ``artifact_uri``."""
    from imgvault.tracker.sealing.repository import SealedArtifactRepository

    return SealedArtifactRepository(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
