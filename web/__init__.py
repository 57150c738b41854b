"""imgvault.web: ``imgvault serve``, a web gallery and a REST API over the encrypted store.

Layers: this package uses the store, the methods and the tracker (never the command line). Plaintext of
images exists here only in memory, per request. Import :func:`imgvault.web.app.create_app` to build the
ASGI application; importing this package alone imports no web framework.
"""
