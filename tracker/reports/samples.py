"""Sample images for the report (``--images N``): original, encrypted, decoded and error of a few images.

The pixels come from the sealed store and are decrypted in memory: the originals from the stored images,
the encrypted and decoded images from the stored encodings of each row's run, with their stored models.
Nothing is written anywhere but into the page the caller asked for.
"""

import base64
import io
from dataclasses import dataclass

from imgvault.methods.preprocess import load_pixels, to_uint8
from imgvault.methods.registry import knob, method_classes
from imgvault.methods.render import caption, figure, render_encoded


@dataclass(frozen=True)
class Sample:
    """One image's four panels as PNG bytes, and what they show (no file name: the image's id)."""

    image_id: str
    png: bytes


def _png(pixels) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _matches(info, row: dict) -> bool:
    params = info.params
    # The row's k is the method's one knob, whatever its name: k, block_size (le, etc), iterations (arnold).
    setting = knob(row["method"])
    value = params.get("codec", {}).get(setting.name if setting is not None else "k")
    return (info.method == row["method"] and params.get("fit") == row["fit"] and params.get("size") == row["size"]
            and params.get("color") == row["color"] and value == row["k"])  # fmt: skip


def shown_rows(rows: list[dict]) -> list[dict]:
    """The row whose samples stand for each method (and setting) of a collection: its largest finished k,
    the one that decodes best."""
    best: dict[tuple, dict] = {}
    for row in rows:
        if row["status"] != "finished":
            continue
        key = (row["collection"], row["method"], row["fit"], row["size"], row["color"])
        if key not in best or (row["k"] or 0) > (best[key]["k"] or 0):
            best[key] = row
    return list(best.values())


def samples(store, row: dict, count: int) -> list[Sample]:
    """``count`` images of ``row``'s collection (in the store's order) as its latest encodings show them."""
    latest = {}
    for info in store.encoded_images(row["collection"]):  # oldest first: the last one of an image wins
        if _matches(info, row):
            latest[info.image_id] = info
    found = []
    for image in store.images(row["collection"]):
        info = latest.get(image.id)
        if info is None:
            continue
        original = to_uint8(load_pixels(store.get(image.id), size=row["size"], color=row["color"]))
        _, payload = store.get_encoded_image(info.id)
        _, params, model = store.get_codec_model(info.model_id)
        codec = method_classes()[row["method"]].from_model_bytes(params["codec"], model)
        encoded = codec.encoded_from_bytes(payload)
        encrypted = render_encoded(row["method"], encoded, original.shape)
        decoded = to_uint8(codec.decode(encoded[None])[0])
        title = caption(row["method"], row["k"], info.metrics, original.shape)
        found.append(Sample(image.id, _png(figure(original, encrypted, decoded, method=row["method"], title=title))))
        if len(found) == count:
            break
    return found


def samples_html(store, rows: list[dict], count: int) -> str:
    """The ``<figure>`` of each sample of each shown row, under a heading per method."""
    import html

    from imgvault.tracker.reports.tables import row_label

    parts = []
    for row in shown_rows(rows):
        name = row_label(row, rows)
        figures = "".join(
            f'<figure class="sample" data-method="{html.escape(row["method"])}">'
            f'<img alt="{html.escape(name)}: original, encrypted, decoded, error x4" '
            f'src="data:image/png;base64,{base64.b64encode(s.png).decode()}">'
            f"<figcaption>image {html.escape(s.image_id)}</figcaption></figure>"
            for s in samples(store, row, count)
        )
        parts.append(f'<h4>{html.escape(name)}</h4><div class="samples">{figures}</div>')
    return "".join(parts)
