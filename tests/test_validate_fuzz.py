"""Fuzzing the validator: mutated files of every accepted format give an image's facts or InvalidImage.

Whatever the bytes, nothing but :class:`InvalidImage` may come out of :func:`inspect_image` (no
``TypeError``, ``struct.error``, ``MemoryError``...), and no warning either. The limits are lowered here
(1 Mpx per frame, 64 frames, 2 Mpx in all) so that each example decodes at most a few megabytes:
the code that enforces them is the same as with the default limits, and a mutated header that claims
a huge image must be refused before anything that size is allocated.
"""

import io
import warnings

import numpy as np
import pytest
import skimage.data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imgvault.basics.errors import InvalidImage
from imgvault.store.validate import inspect_image

LIMITS = {"max_pixels": 1 << 20, "max_frames": 64, "max_total_pixels": 2 << 20}


def _seeds() -> dict[str, bytes]:
    """Small valid files of the six formats, multi-frame where the format allows it."""
    rgb = Image.fromarray(skimage.data.astronaut()[::16, ::16].copy())  # 32x32
    gray = Image.fromarray(skimage.data.camera()[::16, ::16].copy())
    frames = [rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16), gray.convert("P")]
    seeds = {}
    for fmt, image, options in [
        ("PNG", rgb, {}),
        ("JPEG", rgb, {"quality": 80}),
        ("TIFF", gray, {"save_all": True, "append_images": [rgb]}),
        ("WEBP", rgb, {"save_all": True, "append_images": [gray.convert("RGB")], "lossless": True}),
        ("GIF", frames[0], {"save_all": True, "append_images": frames[1:], "duration": 50}),
        ("BMP", rgb, {}),
    ]:
        buffer = io.BytesIO()
        # Copies: Pillow keeps a save's encoder settings on the image object, and they leak into the next save.
        if "append_images" in options:
            options["append_images"] = [frame.copy() for frame in options["append_images"]]
        image.copy().save(buffer, fmt, **options)
        seeds[fmt] = buffer.getvalue()
    return seeds


SEEDS = _seeds()


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "set", "big", "cut", "insert", "delete"]))
        at = draw(st.integers(0, len(data) - 1)) if data else 0
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "big":
            # Sizes, counts and offsets in headers are where parsers break: make one huge, zero or odd.
            data[at : at + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\x00\x01"]))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_the_seeds_are_accepted(fmt):
    facts = inspect_image(SEEDS[fmt], fmt, **LIMITS)
    assert facts.format == fmt


@pytest.mark.parametrize("fmt", sorted(SEEDS))
@settings(max_examples=120, deadline=2000, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_mutated_file_gives_facts_or_invalid_image_and_nothing_else(fmt, data):
    blob = data.draw(mutated(SEEDS[fmt]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            facts = inspect_image(blob, "fuzz", **LIMITS)
        except InvalidImage as exc:
            assert str(exc).startswith("fuzz: ")
            return
    assert facts.width * facts.height <= LIMITS["max_pixels"]
    assert facts.bytes == len(blob)


def test_the_fuzzed_limits_are_held_on_unmutated_multi_frame_seeds():
    tight = {**LIMITS, "max_frames": 1}
    for fmt in ("TIFF", "WEBP", "GIF"):
        with pytest.raises(InvalidImage, match="more than 1 "):
            inspect_image(SEEDS[fmt], fmt, **tight)
    assert np.prod(Image.open(io.BytesIO(SEEDS["PNG"])).size) == 32 * 32
