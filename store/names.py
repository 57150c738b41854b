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
