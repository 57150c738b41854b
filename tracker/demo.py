"""The demo: collections built from images shipped inside our dependencies, run through every method.

No network: the photos come from ``skimage.data`` (the files bundled in the wheel, not the ones it would
download) and ``sklearn.datasets.load_sample_images``, the faces from ``skimage.data.lfw_subset()``. Two
collections are labelled (each image's sealed metadata ``"label"``), for attacks that learn to recognise
what an encrypted image shows: ``sklearn.datasets.load_digits()`` (handwritten digits, labelled 0 to 9) and
the whole LFW subset (labelled face or non-face).
"""

import io
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from imgvault.methods.registry import METHOD_NAMES
from imgvault.tracker.runs import BatchConfig, BatchResult, run_batch

# Natural photos bundled with scikit-image (gray and colour). Binary or synthetic images (horse, chessboard,
# logo) are left out: with two grey levels they cannot take k = 16 clusters.
SKIMAGE_PHOTOS = ("astronaut.png", "camera.png", "coffee.png", "chelsea.png", "rocket.jpg", "moon.png",
                  "coins.png", "brick.png", "grass.png", "gravel.png", "retina.jpg", "ihc.png")  # fmt: skip
TILE = 100
MIN_LEVELS = 64  # distinct grey levels a tile needs


@dataclass(frozen=True)
class DemoCollection:
    """One demo collection: its name, what it shows, how it is run, and how many images it holds."""

    name: str
    about: str
    config: BatchConfig
    #: ``images(count)``: (name, bytes) of each image, or (name, bytes, label) in a labelled collection
    images: Callable[[int], list[tuple]]
    count: int


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _skimage_dir() -> str:
    import skimage.data

    return os.path.dirname(skimage.data.__file__)


def _sklearn_photos() -> list[tuple[str, bytes]]:
    import sklearn.datasets

    folder = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
    return [(path.name, path.read_bytes()) for path in sorted(Path(folder).glob("*.jpg"))]


def photos(count: int) -> list[tuple[str, bytes]]:
    """The photos as their original files: scikit-image's bundled photos, then scikit-learn's two."""
    folder = _skimage_dir()
    found = [(name, Path(folder, name).read_bytes()) for name in SKIMAGE_PHOTOS if Path(folder, name).exists()]
    return (_sklearn_photos() + found)[:count]


FACES = 100  # skimage.data.lfw_subset(): its first 100 images are faces, the other 100 are not


def faces(count: int) -> list[tuple[str, bytes]]:
    """Faces from scikit-image's LFW subset (25x25 gray), as PNG files: faces only, at most its 100."""
    import skimage.data

    from imgvault.methods import to_uint8

    found = skimage.data.lfw_subset()[: min(count, FACES)]
    return [(f"face-{n:03d}.png", _png(to_uint8(face))) for n, face in enumerate(found)]


def labelled_faces(count: int) -> list[tuple[str, bytes, str]]:
    """The whole LFW subset of scikit-image, labelled: ``count // 2`` of its faces (label ``face``) and as many
    of its non-faces (label ``non-face``), 25x25 gray PNG files."""
    import skimage.data

    from imgvault.methods import to_uint8

    found = skimage.data.lfw_subset()
    half = min(count // 2, FACES)
    return [(f"face-{n:03d}.png", _png(to_uint8(found[n])), "face") for n in range(half)] + [
        (f"non-face-{n:03d}.png", _png(to_uint8(found[FACES + n])), "non-face") for n in range(half)
    ]


DIGIT_SIDE = 32  # scikit-learn's digits are 8x8: upscaled so that every block cipher's k (up to 16) applies


def digits(count: int) -> list[tuple[str, bytes, str]]:
    """scikit-learn's handwritten digits (8x8, 17 grey levels), labelled ``0`` to ``9``, ``count // 10`` of
    each (in the data set's order), upscaled to ``DIGIT_SIDE`` x ``DIGIT_SIDE`` (bicubic) as PNG files."""
    import sklearn.datasets
    from PIL import Image

    data = sklearn.datasets.load_digits()
    each = count // 10
    taken: dict[int, int] = {}
    out = []
    for index, (pixels, label) in enumerate(zip(data.images, data.target, strict=True)):
        label = int(label)
        if taken.get(label, 0) >= each:
            continue
        taken[label] = taken.get(label, 0) + 1
        small = Image.fromarray(np.round(pixels * (255 / 16)).astype(np.uint8))
        large = np.asarray(small.resize((DIGIT_SIDE, DIGIT_SIDE), Image.Resampling.BICUBIC))
        out.append((f"digit-{label}-{index:04d}.png", _png(large), str(label)))
    return out


def tiles(count: int) -> list[tuple[str, bytes]]:
    """``TILE`` x ``TILE`` colour tiles cut on a grid from the large photos, taken round-robin."""
    from PIL import Image

    sources = []
    for name, data in _sklearn_photos() + [(n, d) for n, d in photos(99) if n in ("astronaut.png", "coffee.png")]:
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        gray = np.asarray(Image.fromarray(pixels).convert("L"))
        grid = [(r, c) for r in range(0, pixels.shape[0] - TILE + 1, TILE)
                for c in range(0, pixels.shape[1] - TILE + 1, TILE)]  # fmt: skip
        # Cells in a fixed shuffled order, so that the first tiles are not all from the top row; flat
        # tiles (sky) are left out: with few grey levels they cannot take k = 16 clusters.
        cells = [grid[i] for i in np.random.default_rng(0).permutation(len(grid))]
        cells = [(r, c) for r, c in cells if len(np.unique(gray[r : r + TILE, c : c + TILE])) >= MIN_LEVELS]
        sources.append((name.rsplit(".", 1)[0], pixels, cells))
    out = []
    for n in range(count):
        stem, pixels, cells = sources[n % len(sources)]
        r, c = cells[(n // len(sources)) % len(cells)]
        out.append((f"{stem}-r{r:03d}-c{c:03d}.png", _png(pixels[r : r + TILE, c : c + TILE])))
    return out


# The labelled collections' sizes (the digits: 10 labels, as many images of each)
DIGITS, DIGITS_QUICK = 300, 100
LABELLED_FACES_QUICK = 20
LABELLED_QUICK_METHODS = ("pca", "aes", "le", "arnold")

#: every built-in method: the learnt codecs, AES, and the literature's ciphers the threat matrix attacks
DEMO_METHODS = METHOD_NAMES


def collections(quick: bool) -> list[DemoCollection]:
    """The demo's collections and their runs: the full demo, or the under-two-minutes ``--quick`` one.

    Every method runs with the k sweep; for le and etc k is the block side, so each size is a multiple of
    every k (the faces, 25x25, are taken at 24 or 32). The learning attack and the threat matrix's attacks
    take most of the time: the quick demo runs them on 20 faces at k = 8 only, and on its small labelled
    collections (100 digits at 16x16, 10 faces and 10 non-faces) at k = 8 with four methods only. The
    labelled collections are attacked, each with one model for all, as the faces are: an attack that
    learns labels from encrypted images applies to them.
    """
    ks = (4, 8) if quick else (2, 4, 8, 16)
    # The labelled collections in the quick demo: one learnt codec, AES and two ciphers, three figures each
    labelled_methods, labelled_figures = (LABELLED_QUICK_METHODS, 3) if quick else (DEMO_METHODS, 10)
    faces_ks = (8,) if quick else ks
    size, faces_size = (48, 24) if quick else (96, 32)
    return [
        DemoCollection("demo-photos", "natural photos from scikit-image and scikit-learn, in colour",
                       BatchConfig(methods=DEMO_METHODS, ks=ks, size=size, color="rgb", figures=25), photos,
                       6 if quick else 14),
        DemoCollection("demo-tiles", f"{TILE}x{TILE} tiles cut from the large photos, in gray",
                       BatchConfig(methods=DEMO_METHODS, ks=ks, size=size, figures=10), tiles, 12 if quick else 48),
        DemoCollection("demo-faces", "faces from scikit-image's LFW subset, one model for all, with the learning "
                       "attack", BatchConfig(methods=DEMO_METHODS, ks=faces_ks, size=faces_size, fit="collection",
                                             attack=True, figures=10), faces, 20 if quick else FACES),
        DemoCollection("demo-digits", f"scikit-learn's 8x8 handwritten digits upscaled to {DIGIT_SIDE}x{DIGIT_SIDE} "
                       "(bicubic), labelled 0 to 9, one model for all, attacked",
                       BatchConfig(methods=labelled_methods, ks=faces_ks, size=16 if quick else DIGIT_SIDE,
                                   fit="collection", attack=True, figures=labelled_figures), digits,
                       DIGITS_QUICK if quick else DIGITS),
        DemoCollection("demo-faces-labelled", "scikit-image's LFW subset labelled face or non-face, one model for "
                       "all, attacked", BatchConfig(methods=labelled_methods, ks=faces_ks, size=faces_size,
                                                    fit="collection", attack=True, figures=labelled_figures),
                       labelled_faces, LABELLED_FACES_QUICK if quick else 2 * FACES),
    ]  # fmt: skip


def ensure_collection(store, demo: DemoCollection, advance: Callable[[], None] = lambda: None) -> tuple[int, int]:
    """Put the demo images that the collection lacks (by name); return (added, already there).

    Running the demo again reuses what is stored, so the runs of both demos cover the same images.
    ``advance()`` is called after each image, stored or found.
    """
    present = set()
    if demo.name in {c.name for c in store.collections()}:
        present = {image.name for image in store.images(demo.name)}
    added = 0
    for name, data, *label in demo.images(demo.count):
        if name not in present:
            metadata = {"source": "imgvault demo", **({"label": label[0]} if label else {})}
            store.put(data, collection=demo.name, name=name, metadata=metadata)
            added += 1
        advance()
    return added, len(present)


class _NoBar:
    def start(self, total: int) -> None:
        pass

    def advance(self) -> None:
        pass


Progress = Callable[[str], AbstractContextManager]


def run_demo(store, quick: bool, *, jobs: int = -1,
             progress: Progress | None = None) -> Iterator[tuple[DemoCollection, BatchResult]]:  # fmt: skip
    """Run every method over every demo collection, yielding each collection's batch result in turn.

    ``progress(label)`` gives a context manager yielding a bar with ``start(total)`` and ``advance()``.
    """
    for demo in collections(quick):
        config = replace(demo.config, jobs=jobs)
        with progress(demo.name) if progress else nullcontext(_NoBar()) as bar:
            result = run_batch(store, demo.name, config, advance=bar.advance, started=bar.start)
        # Yielded once the bar is gone, so that what the caller prints is not drawn onto it.
        yield demo, result
