"""A home's store and its MLflow artifacts, kept under one key: key rotation and schema upgrade, both of them.

The MLflow artifacts of the home (and of a team server's sealed object store, when named) are sealed with
the store's keys (:mod:`.sealing.files`, :mod:`.sealing.repository`). Rotating the store's key re-seals them
too, before any old key is retired; upgrading a home seals what earlier versions left in plaintext and
re-binds each artifact to its run.
"""

from collections.abc import Callable, Iterable
from pathlib import Path

from imgvault.store.config import Settings
from imgvault.tracker.sealing.files import ArtifactsDamaged, SealReport, seal_home
from imgvault.tracker.tracking import tracking_uri


def seal_artifacts(sealer, home: Path, artifact_uris: Iterable[str] = (), *,
                   started: Callable[[int], None] | None = None,
                   advance: Callable[[int], None] | None = None) -> SealReport:  # fmt: skip
    """Seal (or re-seal under the primary key, or re-bind to their run) the home's MLflow artifacts and those at
    ``artifact_uris``, and make the home's tracking locations relative to the home. ``started`` and
    ``advance`` follow the home's files, for a progress bar."""
    progress = {"started": started, "advance": advance} if started is not None else {}
    report = seal_home(sealer, home, tracking_uri(home), **progress)
    artifact_uris = list(artifact_uris)
    if artifact_uris:  # the sealed repository imports MLflow: only when asked
        from imgvault.tracker.sealing.repository import reseal_repository

        for uri in artifact_uris:
            report.add(reseal_repository(sealer, uri))
    return report


def rotate_key(store, artifact_uris: Iterable[str] = (), *, started: Callable[[int], None] = lambda total: None,
               advance: Callable[[int], None] = lambda count: None):  # fmt: skip
    """:meth:`Store.rotate_key <imgvault.store.Store.rotate_key>`, with the home's MLflow artifacts (and those
    at ``artifact_uris``) re-sealed under the new key before any old key is retired.

    An artifact that does not open with the store's keys stops the rotation there: :class:`ArtifactsDamaged`
    names each one, and no key is retired (every record stays readable under the old keys or the new one).
    """
    artifact_uris = list(artifact_uris)

    def reseal(sealer) -> int:
        report = seal_artifacts(sealer, store.settings.home, artifact_uris)
        if report.damaged:
            raise ArtifactsDamaged(report.damaged, "no key was retired (remove or restore them, then rotate again)")
        return report.changed

    return store.rotate_key(before_retire=reseal, started=started, advance=advance)


def upgrade_home(settings: Settings, artifact_uris: Iterable[str] = (), *,
                 started: Callable[[int], None] | None = None,
                 advance: Callable[[int], None] | None = None) -> tuple[str, str, SealReport]:  # fmt: skip
    """Upgrade the store's schema (:meth:`Store.upgrade_schema <imgvault.store.Store.upgrade_schema>`), then
    seal the home's MLflow artifacts in place (:func:`seal_artifacts`). Returns the revisions before and after,
    and what sealing did (its ``damaged`` artifacts are left as they are)."""
    from imgvault.store import Store

    before, after = Store.upgrade_schema(settings)
    with Store.open(settings=settings) as store:
        report = seal_artifacts(store.sealer, settings.home, artifact_uris, started=started, advance=advance)
    return before, after, report
