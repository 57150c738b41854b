"""Codec models and encoded images: a method's fitted model and its output for an image, sealed."""

import json
from collections.abc import Iterator

from imgvault.basics.errors import EncodedNotFound, ImageNotFound, NotFound

from . import queries
from .bindings import encoded_context, listed_encoded, model_context
from .database import Database
from .ids import new_id
from .images import Images
from .keyring import Keyring
from .records import EncodedInfo
from .records import utc_now as _now


class EncodedImages:
    """The codec models and encoded images of a store."""

    def __init__(self, database: Database, keyring: Keyring, images: Images):
        self.database, self.keyring, self.images = database, keyring, images

    def _model_row(self, collection_id, image_id, method, params, data) -> dict:
        model_id = new_id()
        values = {"collection_id": collection_id, "image_id": image_id, "method": method,
                  "params": json.dumps(params, sort_keys=True)}  # fmt: skip
        sealer = self.keyring.sealer
        sealed = sealer.seal("model.data", model_id, data, context=model_context(values))
        return {"id": model_id, **values, "key_id": sealer.keyset.primary_id, "bytes": len(data),
                "created_at": _now(), "data": sealed}  # fmt: skip

    def _insert_model(self, connection, collection_id, image_id, method, params, data) -> str:
        from sqlalchemy import insert

        from . import schema

        row = self._model_row(collection_id, image_id, method, params, data)
        connection.execute(insert(schema.codec_models).values(**row))
        return row["id"]

    def put_encoded_image(self, image_id: str, *, method: str, params: dict, encoded: bytes, metrics: dict,
                     model: bytes | None = None, model_id: str | None = None) -> EncodedInfo:  # fmt: skip
        """Store an encoded image with its model, in one transaction; return what was stored.

        Give ``model`` (the payload of a model fitted on this image alone, stored with it) or
        ``model_id`` (a model already stored, fitted on the image's collection).
        """
        item = {"image_id": image_id, "encoded": encoded, "metrics": metrics, "model": model, "model_id": model_id}
        [info] = self.put_encoded_images([item], method=method, params=params)
        return info

    def put_encoded_images(self, items: list[dict], *, method: str, params: dict, shared_model: bytes | None = None,
                      collection: str | None = None) -> list[EncodedInfo]:  # fmt: skip
        """Store several encodings of one method and parameters in one transaction (all or none).

        Each item is a dict with ``image_id``, ``encoded``, ``metrics`` and either ``model`` (bytes of a
        model fitted on that image alone) or ``model_id`` (a stored model). With ``shared_model`` (a model
        fitted on the whole ``collection``), it is stored in the same transaction and serves the items
        that name no model of their own.
        """
        for item in items:
            if shared_model is None and (item.get("model") is None) == (item.get("model_id") is None):
                raise TypeError("give exactly one of model and model_id for every item")
        from sqlalchemy import insert, select

        from . import schema

        results = []
        sealer = self.keyring.sealer
        with self.keyring.writing() as connection:
            if shared_model is not None:
                collection_id = self.images.collection_id(collection, connection)
                shared_id = self._insert_model(connection, collection_id, None, method, params, shared_model)
                items = [item if item.get("model") or item.get("model_id") else {**item, "model_id": shared_id}
                         for item in items]  # fmt: skip
            images = schema.images
            wanted = list({item["image_id"] for item in items})
            found = {
                row.id: row
                for row in connection.execute(
                    select(images.c.id, images.c.collection_id, schema.collections.c.name)
                    .join(schema.collections, schema.collections.c.id == images.c.collection_id)
                    .where(images.c.id.in_(wanted))
                )
            }
            shared = {item["model_id"] for item in items if item.get("model_id")} - {None}
            known = set(
                connection.execute(
                    select(schema.codec_models.c.id).where(schema.codec_models.c.id.in_(shared))
                ).scalars()
            )
            model_rows, encoded_rows = [], []
            for item in items:
                row = found.get(item["image_id"])
                if row is None:
                    raise ImageNotFound(f"image {item['image_id']} not found")
                model_id = item.get("model_id")
                if model_id is None:
                    # Each image's own model: inserted with the others in one statement, below.
                    model_rows.append(self._model_row(row.collection_id, row.id, method, params, item["model"]))
                    model_id = model_rows[-1]["id"]
                elif model_id not in known:
                    raise NotFound(f"codec model {model_id} not found")
                encoded_id, created = new_id(), _now()
                values = {"image_id": row.id, "model_id": model_id, "method": method,
                          "params": json.dumps(params, sort_keys=True)}  # fmt: skip
                bound = encoded_context(values)
                metrics = json.dumps(item["metrics"], sort_keys=True).encode()
                encoded_rows.append(
                    {
                        "id": encoded_id,
                        **values,
                        "key_id": sealer.keyset.primary_id,
                        "bytes": len(item["encoded"]),
                        "created_at": created,
                        "data": sealer.seal("encoded.data", encoded_id, item["encoded"], context=bound),
                        "metrics": sealer.seal("encoded.metrics", encoded_id, metrics, context=bound),
                    }
                )
                results.append(
                    EncodedInfo(
                        id=encoded_id, image_id=row.id, model_id=model_id, collection=row.name, method=method,
                        params=params, metrics=item["metrics"], bytes=len(item["encoded"]), created=created,
                    )
                )  # fmt: skip
            if model_rows:
                connection.execute(insert(schema.codec_models), model_rows)
            if encoded_rows:
                connection.execute(insert(schema.encoded_images), encoded_rows)
        return results

    def encoded_images(self, collection: str | None = None, *, image_id: str | None = None) -> Iterator[EncodedInfo]:
        """Every encoded image (of one collection, or of one image, if given), oldest first."""
        if image_id is not None and collection is not None:
            rows = [row for row in self.database.rows(queries.IMAGE_ENCODED_IMAGES, image_id=image_id)
                    if row.collection == collection]  # fmt: skip
            self.images.collection_id(collection)
        elif image_id is not None:
            rows = self.database.rows(queries.IMAGE_ENCODED_IMAGES, image_id=image_id)
        elif collection is not None:
            collection_id = self.images.collection_id(collection)
            rows = self.database.rows(queries.COLLECTION_ENCODED_IMAGES, collection_id=collection_id)
        else:
            rows = self.database.rows(queries.ENCODED_IMAGES)
        sealer = self.keyring.sealer
        return (listed_encoded(sealer, row) for row in rows)

    def get_encoded_image(self, encoded_id: str) -> tuple[EncodedInfo, bytes]:
        """An encoded image's record and its payload (the method's output)."""
        row = self.database.first(queries.ENCODED_IMAGE, encoded_id=encoded_id)
        blob = self.database.first(queries.ENCODED_DATA, encoded_id=encoded_id)
        if row is None or blob is None:
            raise EncodedNotFound(f"encoded image {encoded_id} not found")
        sealer = self.keyring.sealer
        payload = sealer.open("encoded.data", encoded_id, blob.data, context=encoded_context(blob._asdict()))
        return listed_encoded(sealer, row), payload

    def get_codec_model(self, model_id: str) -> tuple[str, dict, bytes]:
        """A codec model's method, parameters and payload."""
        row = self.database.first(queries.MODEL_DATA, model_id=model_id)
        if row is None:
            raise NotFound(f"codec model {model_id} not found")
        data = self.keyring.sealer.open("model.data", model_id, row.data, context=model_context(row._asdict()))
        return row.method, json.loads(row.params), data
