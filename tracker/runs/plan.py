"""Planning a batch: everything checked before any work starts, and the collection's pixels loaded.

A method name, a size or colour, a fit mode, a block size that does not divide the size, a k that no fit
can take, too few images for the attacks, an empty collection: each is refused here, before the first run
is started in MLflow and before any image is encoded.
"""

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from imgvault.basics.errors import InvalidParameter
from imgvault.methods.attacks.inversion import check_attack_size
from imgvault.methods.preprocess import check_color, check_size, load_pixels
from imgvault.methods.registry import FIT_SCOPES, check_method, make_codec
from imgvault.tracker.runs.config import BatchConfig


@dataclass(frozen=True)
class Plan:
    """A checked batch: its collection's images (records) and their pixels, in [0, 1]."""

    collection: str
    config: BatchConfig
    images: list
    pixels: np.ndarray
    #: the plain images' recognition scores, by the images scored: the same for every configuration
    plain_scores: dict = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def labels(self) -> list[str | None]:
        """Each image's label (its sealed metadata's ``label``), None where it has none."""
        return [image.metadata.get("label") if isinstance(image.metadata.get("label"), str) else None
                for image in self.images]  # fmt: skip

    @property
    def configurations(self) -> list[tuple[str, int | None]]:
        return self.config.configurations()

    @property
    def digest(self) -> str:
        """What names the images of this batch in MLflow (a hash of their ids)."""
        return hashlib.sha256("\n".join(image.id for image in self.images).encode()).hexdigest()[:16]


def check_config(config: BatchConfig) -> tuple[int, ...]:
    """The shape of the batch's images, once every setting of ``config`` is known to be one that runs."""
    for method in config.methods:
        check_method(method)
    size, color = check_size(config.size), check_color(config.color)
    if config.fit not in FIT_SCOPES:
        raise InvalidParameter(f"fit must be image or collection, not {config.fit!r}")
    shape = (size, size) if color == "gray" else (size, size, 3)
    for method, k in config.configurations():  # a block size that does not divide the size: before any work
        make_codec(method, k=k, fit=config.fit, random_state=config.random_state).check_shape(shape)
    return shape


def plan_batch(store, collection: str, config: BatchConfig, shape: tuple[int, ...]) -> Plan:
    """The batch of ``config`` over ``collection``, checked against its images, with their pixels loaded."""
    images = list(store.images(collection))
    if not images:
        raise InvalidParameter(f'collection "{collection}" has no images')
    for method, k in config.configurations():
        codec = make_codec(method, k=k, fit=config.fit, random_state=config.random_state)
        try:  # a k that no fit can take (pca k=200 on 100 rows): refused before the first run starts
            codec.check_fit_shape((len(images) if config.fit == "collection" else 1, *shape))
        except InvalidParameter as exc:
            raise InvalidParameter(f"{method if k is None else f'{method} k={k}'}: {exc}") from None
    if config.attack:
        check_attack_size(len(images), f'collection "{collection}"')
    pixels = np.stack([load_pixels(store.get(image.id), size=config.size, color=config.color) for image in images])
    return Plan(collection, config, images, pixels)


def upscaling_note(images, size: int) -> str | None:
    """What a batch says once when some images are smaller than ``size`` x ``size`` (they are upscaled to it)."""
    sides = [min(image.width, image.height) for image in images]
    small = [side for side in sides if side < size]
    if not small:
        return None
    return (
        f"{len(small)} of {len(images)} images are smaller than {size}x{size} and are upscaled to it (by up"
        f" to {size / min(small):.1f}x, from {min(small)} px): their metrics describe the upscaled images"
    )
