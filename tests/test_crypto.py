"""The sealed-blob format and its failure modes (see imgvault.store.crypto)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imgvault.basics.errors import IntegrityError
from imgvault.store.crypto import HEADER, MAGIC, NONCE_SIZE, TAG_SIZE, VERSION, Keyset, Sealer, blob_key_id

KEY = bytes(range(32))
KEY_ID = 0x01020304
# Sealed once in format version 1 with KEY as kind "image.data", record "01JD3Z8R8C6WQ3M1V0B5E3N9XK",
# store "store-golden", plaintext b"imgvault golden blob". Stores written before version 2 hold such blobs.
GOLDEN_V1 = bytes.fromhex(
    "49564c54010102030493a91b2c7d6e5f40312233440e1ffa37e30401704c73a42a5efc10204ef40ac45a24257cab64358f14979ea1d55e589a"
)

# Sealed once in format version 2 with KEY as kind "encoded.data", record "01JD3Z8R8C6WQ3M1V0B5E3N9XK",
# store "store-golden", plaintext b"imgvault golden blob", and the context GOLDEN_CONTEXT.
# This is an on-disk format: it must not change silently.
GOLDEN_V2 = bytes.fromhex(
    "49564c5402010203047a092a6705523c769bf82b34563ec53914c4ebf1254c49eb0dcef6f934d744fb93f076cc4ea34d55e004604d72683ae6"
)
GOLDEN_CONTEXT = {"image_id": "01JD3Z8R8C6WQ3M1V0B5E3N9XA", "method": "pca", "model_id": "01JD3Z8R8C6WQ3M1V0B5E3N9XB",
                  "params": '{"k": 8}'}  # fmt: skip


def golden_sealer() -> Sealer:
    return Sealer(Keyset({KEY_ID: KEY}, KEY_ID), "store-golden")


def test_golden_blob_still_opens():
    opened = golden_sealer().open("encoded.data", "01JD3Z8R8C6WQ3M1V0B5E3N9XK", GOLDEN_V2, context=GOLDEN_CONTEXT)
    assert opened == b"imgvault golden blob"


def test_the_context_is_canonical_json_whatever_the_order_of_the_mapping():
    reordered = dict(reversed(list(GOLDEN_CONTEXT.items())))
    as_bytes = (
        b'{"image_id":"01JD3Z8R8C6WQ3M1V0B5E3N9XA","method":"pca",'
        b'"model_id":"01JD3Z8R8C6WQ3M1V0B5E3N9XB","params":"{\\"k\\": 8}"}'
    )
    for context in (reordered, as_bytes):
        assert golden_sealer().open("encoded.data", "01JD3Z8R8C6WQ3M1V0B5E3N9XK", GOLDEN_V2, context=context)


@pytest.mark.parametrize("field", sorted(GOLDEN_CONTEXT))
def test_a_blob_opened_with_any_bound_value_changed_fails(field):
    changed = {**GOLDEN_CONTEXT, field: GOLDEN_CONTEXT[field] + "x"}
    with pytest.raises(IntegrityError, match="failed its integrity check"):
        golden_sealer().open("encoded.data", "01JD3Z8R8C6WQ3M1V0B5E3N9XK", GOLDEN_V2, context=changed)
    with pytest.raises(IntegrityError):
        golden_sealer().open("encoded.data", "01JD3Z8R8C6WQ3M1V0B5E3N9XK", GOLDEN_V2)


def test_a_context_value_no_blob_can_be_sealed_with_fails_to_open_as_tampering():
    # Bytes in a row's bound column (SQLite keeps a BLOB anywhere): sealing refuses such a context, so opening
    # with one is a row altered after sealing.
    altered = {**GOLDEN_CONTEXT, "method": b"pca"}
    with pytest.raises(IntegrityError, match="failed its integrity check"):
        golden_sealer().open("encoded.data", "01JD3Z8R8C6WQ3M1V0B5E3N9XK", GOLDEN_V2, context=altered)
    with pytest.raises(TypeError):
        golden_sealer().seal("encoded.data", "01JD3Z8R8C6WQ3M1V0B5E3N9XK", b"data", context=altered)
    with pytest.raises(TypeError):  # not a context at all: the caller's mistake
        golden_sealer().open("encoded.data", "01JD3Z8R8C6WQ3M1V0B5E3N9XK", GOLDEN_V2, context=["pca"])


def test_a_version_1_blob_still_opens_without_a_context_but_never_where_one_is_bound():
    sealer = golden_sealer()
    assert sealer.open("image.data", "01JD3Z8R8C6WQ3M1V0B5E3N9XK", GOLDEN_V1) == b"imgvault golden blob"
    with pytest.raises(IntegrityError):
        sealer.open("image.data", "01JD3Z8R8C6WQ3M1V0B5E3N9XK", GOLDEN_V1, context={"width": 1})


def test_seal_and_open_without_a_context_keep_their_meaning():
    sealer = golden_sealer()
    blob = sealer.seal("artifact", "runs/1/model.npz", b"data")
    assert sealer.open("artifact", "runs/1/model.npz", blob) == b"data"
    assert sealer.open("artifact", "runs/1/model.npz", blob, context=b"") == b"data"
    with pytest.raises(IntegrityError):
        sealer.open("artifact", "runs/1/model.npz", blob, context={"run": "1"})


def test_sealed_blob_layout_is_magic_version_key_id_nonce_then_ciphertext_and_tag():
    blob = golden_sealer().seal("image.data", "01X", b"hello")
    magic, version, key_id, nonce = HEADER.unpack_from(blob)
    assert (magic, version, key_id) == (MAGIC, VERSION, KEY_ID) == (b"IVLT", 2, 0x01020304)
    assert len(nonce) == NONCE_SIZE == 12
    assert len(blob) == HEADER.size + len(b"hello") + TAG_SIZE == 21 + 5 + 16
    assert blob_key_id(blob) == KEY_ID


def test_every_seal_draws_a_fresh_nonce():
    sealer = golden_sealer()
    nonces = {HEADER.unpack_from(sealer.seal("k", "r", b"same"))[3] for _ in range(200)}
    assert len(nonces) == 200


def test_flipping_any_bit_of_any_byte_of_a_sealed_blob_is_detected():
    sealer = golden_sealer()
    blob = sealer.seal("image.data", "01X", b"secret pixels")
    for position in range(len(blob)):
        for bit in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[position] ^= bit
            with pytest.raises(IntegrityError):
                sealer.open("image.data", "01X", bytes(tampered))


def test_truncating_a_sealed_blob_anywhere_is_detected():
    sealer = golden_sealer()
    blob = sealer.seal("image.data", "01X", b"secret pixels")
    for length in range(len(blob)):
        with pytest.raises(IntegrityError):
            sealer.open("image.data", "01X", blob[:length])


@pytest.mark.parametrize(
    ("kind", "record_id", "store_id"),
    [
        ("image.data", "01Y", "store-golden"),  # moved to another row
        ("image.name", "01X", "store-golden"),  # moved to another kind of field
        ("image.data", "01X", "another-store"),  # moved to another store with the same key
    ],
)
def test_a_blob_moved_to_another_place_fails_to_open(kind, record_id, store_id):
    blob = golden_sealer().seal("image.data", "01X", b"secret pixels")
    elsewhere = Sealer(Keyset({KEY_ID: KEY}, KEY_ID), store_id)
    with pytest.raises(IntegrityError):
        elsewhere.open(kind, record_id, blob)


def test_a_wrong_key_with_the_same_id_fails_to_open():
    blob = golden_sealer().seal("image.data", "01X", b"secret pixels")
    wrong = Sealer(Keyset({KEY_ID: bytes(32)}, KEY_ID), "store-golden")
    with pytest.raises(IntegrityError, match="failed its integrity check"):
        wrong.open("image.data", "01X", blob)


def test_an_unknown_key_id_fails_to_open_with_the_same_error():
    blob = Sealer(Keyset.generate(), "store-golden").seal("image.data", "01X", b"secret pixels")
    with pytest.raises(IntegrityError, match="failed its integrity check"):
        golden_sealer().open("image.data", "01X", blob)


def test_older_keys_of_a_keyset_still_open_their_blobs_while_new_blobs_use_the_primary():
    old = Keyset.generate()
    blob = Sealer(old, "s").seal("k", "r", b"data")
    new_id = old.primary_id + 1
    rotated = Keyset({**old.keys, new_id: bytes(32)}, new_id)
    sealer = Sealer(rotated, "s")
    assert sealer.open("k", "r", blob) == b"data"
    assert blob_key_id(sealer.seal("k", "r", b"data")) == new_id


@given(data=st.binary(max_size=4096), kind=st.text(max_size=40), record_id=st.text(max_size=40))
def test_any_payload_round_trips(data, kind, record_id):
    sealer = golden_sealer()
    assert sealer.open(kind, record_id, sealer.seal(kind, record_id, data)) == data


@given(a=st.tuples(st.text(max_size=8), st.text(max_size=8)), b=st.tuples(st.text(max_size=8), st.text(max_size=8)))
def test_the_associated_data_never_confuses_two_places(a, b):
    # Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    sealer = golden_sealer()
    blob = sealer.seal(a[0], a[1], b"x")
    if a != b:
        with pytest.raises(IntegrityError):
            sealer.open(b[0], b[1], blob)


@given(
    collection=st.text(min_size=1, max_size=40),
    collection_id=st.text(max_size=30),
    format_=st.sampled_from(["PNG", "JPEG", "GIF", "TIFF", "BMP", "WEBP", 'a"b\\c', "é"]),
    mode=st.text(max_size=8),
    sizes=st.tuples(*[st.one_of(st.integers(0, 2**63), st.booleans(), st.none())] * 3),
)
def test_the_written_out_image_context_is_byte_for_byte_the_canonical_json(
    collection, collection_id, format_, mode, sizes
):
    # Listing and putting encode an image's context by hand for speed; rotation and the migrations go
    # through context_bytes. Both must give the same bytes, or blobs would stop opening.
    from imgvault.store.bindings import image_context, image_context_of
    from imgvault.store.crypto import context_bytes

    width, height, size = sizes
    for has_metadata in (True, False):
        values = {"collection_id": collection_id, "collection": collection, "format": format_, "width": width,
                  "height": height, "mode": mode, "bytes": size, "has_metadata": has_metadata}  # fmt: skip
        assert image_context_of(collection_id, collection, format_, width, height, mode, size,
                                has_metadata) == context_bytes(image_context(values))  # fmt: skip
        # As rotation sees a row: the sealed metadata column itself, present or not.
        row = {**values, "metadata": b"sealed" if has_metadata else None}
        del row["has_metadata"]
        assert context_bytes(image_context(row)) == context_bytes(image_context(values))
