"""Rules for names people choose (kept free of heavy imports: the command line checks them early)."""


def check_collection_name(name: str) -> str:
    """Return ``name`` if it can name a collection, else raise ``ValueError`` saying why."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a collection name cannot be empty")
    if len(name) > 200:
        raise ValueError(f"a collection name has at most 200 characters, not {len(name)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError("a collection name cannot contain control characters")
    return name


MAX_LABEL_CHARS = 200


def check_label(label: str) -> str:
    """Return ``label`` if it can label an image (1 to 200 characters, not blank, no control characters),
    else raise :class:`~imgvault.basics.errors.InvalidParameter` saying why."""
    from imgvault.basics.errors import InvalidParameter

    if not isinstance(label, str):
        raise InvalidParameter(f"a label is text, not {type(label).__name__}")
    if not label.strip():
        raise InvalidParameter("a label cannot be empty")
    if len(label) > MAX_LABEL_CHARS:
        raise InvalidParameter(f"a label has at most {MAX_LABEL_CHARS} characters, not {len(label)}")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in label):
        raise InvalidParameter("a label cannot contain control characters")
    return label


def label_from_folder(path) -> str:
    """The name of the folder that the file at ``path`` is in (its immediate parent; a relative path is
    taken from the current folder), as ``put_many(label_of=label_from_folder)`` labels each file."""
    from pathlib import Path

    return Path(path).absolute().parent.name
