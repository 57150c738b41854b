"""Commands of the web service: serve, and the API tokens it accepts (token create, ls, revoke)."""

import ipaddress
import json

import click

from .group import Context, cli, pass_context
from .options import json_option
from .printing import plain_table, printable


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM).")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option("--insecure-public", is_flag=True,
              help="Listen beyond loopback without TLS: tokens and images cross the network in clear.")  # fmt: skip
@click.option("--mlflow-ui", metavar="URL",
              help="Where the MLflow UI is, for links to runs (default: MLFLOW_TRACKING_URI if it is a server, "
                   "else http://127.0.0.1:5000, where `imgvault ui` serves it).")  # fmt: skip
@click.option("--access-log", is_flag=True, help="Log every request on stderr.")
@click.option("--header-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True, metavar="SECONDS",
              help="Close a connection whose request headers have not all arrived by then.")  # fmt: skip
@click.option("--max-connections", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Close new connections at once past this many open ones.")  # fmt: skip
@pass_context
def serve_command(ctx: Context, host: str, port: int, certfile: str | None, keyfile: str | None,
                  insecure_public: bool, mlflow_ui: str | None, access_log: bool, header_timeout: float,
                  max_connections: int) -> None:  # fmt: skip
    """Serve the web gallery and the REST API (/api/v1) of this store.

    Every request needs a token (imgvault token create NAME): the API takes it as
    "Authorization: Bearer TOKEN", the gallery signs in with it. Images, thumbnails and reconstructions
    are decrypted per request in memory; nothing is written to disk.

    Listens on loopback by default. Another address needs TLS (--certfile and --keyfile), or
    --insecure-public, which prints a warning. Slow clients cannot hold its connections: request headers
    must arrive within --header-timeout, and connections past --max-connections are closed at once.

    \b
    Example:
      imgvault token create alice
      imgvault serve                  # then open http://127.0.0.1:8000
      curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/api/v1/collections
    """
    import os

    if (certfile is None) != (keyfile is None):
        raise click.UsageError("give both --certfile and --keyfile, or neither")
    tls = certfile is not None
    if not is_loopback(host) and not tls:
        if not insecure_public:
            raise click.UsageError(f"{host} is not a loopback address: serve it with TLS (--certfile and --keyfile),"
                                   " or add --insecure-public to send tokens and images in clear")  # fmt: skip
        click.echo(f"Warning: serving on {host} without TLS: tokens, session cookies and images cross the "
                   "network in clear; anyone on the path can read them", err=True)  # fmt: skip
    if mlflow_ui is None:
        uri = os.environ.get("MLFLOW_TRACKING_URI", "")
        mlflow_ui = uri if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    from imgvault.tracker.ui import check_port_free

    store = ctx.open_store()  # a missing store or a wrong key is one Error line, before the server starts
    try:
        check_port_free(port, host)  # a busy port too: one Error line, nothing claimed first
    except BaseException:
        store.close()
        raise
    with store:
        import uvicorn

        from imgvault.web.app import create_app

        app = create_app(store, home=store.settings.home, mlflow_ui=mlflow_ui, secure_cookies=tls)
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"imgvault serving {store.settings.describe_db()} at {'https' if tls else 'http'}://{shown}:{port}"
                   " (Ctrl-C to stop)", err=True)  # fmt: skip
        from imgvault.web.connections import guarded_protocol

        uvicorn.run(app, host=host, port=port, ssl_certfile=certfile, ssl_keyfile=keyfile, access_log=access_log,
                    log_level="info" if access_log else "warning", server_header=False, proxy_headers=False,
                    http=guarded_protocol(header_timeout, max_connections))  # fmt: skip


@cli.group()
def token() -> None:
    """API tokens of `imgvault serve`: create (shown once), list, revoke. Only a hash is stored.

    \b
    Example:
      imgvault token create alice
      imgvault token ls
      imgvault token revoke alice
    """


@token.command("create")
@click.argument("name")
@click.option("--read-only", is_flag=True, help="May look, never change (no upload, delete or encode).")
@pass_context
def token_create(ctx: Context, name: str, read_only: bool) -> None:
    """Make a token NAME and print it, once, as the last line: it is not stored, only its hash.

    \b
    Example:
      imgvault token create alice
      TOKEN=$(imgvault token create ci --read-only | tail -n 1)
    """
    from imgvault.store.tokens import create_token

    with ctx.open_store() as store:
        info, secret = create_token(store, name, read_only=read_only)
    rights = "read-only" if info.read_only else "read and write"
    click.echo(f'Created token "{info.name}" ({rights}). It is shown once; keep it as a password:')
    click.echo(secret)


@token.command("ls")
@json_option
@pass_context
def token_ls(ctx: Context, as_json: bool) -> None:
    """List the tokens (names and rights; the tokens themselves are not stored).

    \b
    Example:
      imgvault token ls --json
    """
    from imgvault.store.tokens import list_tokens

    with ctx.open_store() as store:
        tokens = list_tokens(store)
    if as_json:
        click.echo(json.dumps([t.to_dict() for t in tokens], indent=2))
        return
    rows = ((t.name, "read-only" if t.read_only else "read-write", f"{t.created:%Y-%m-%d %H:%M:%S}",
             "TAMPERED: grants nothing (failed its integrity check)" if not t.intact else
             f"revoked {t.revoked:%Y-%m-%d %H:%M:%S}" if t.revoked else "active") for t in tokens)  # fmt: skip
    plain_table([("NAME", 20), ("RIGHTS", 10), ("CREATED", 19), ("STATUS", 0)], rows)


@token.command("revoke")
@click.argument("name")
@pass_context
def token_revoke(ctx: Context, name: str) -> None:
    """Revoke token NAME: refused from its next request on, in the API and the gallery.

    \b
    Example:
      imgvault token revoke alice
    """
    from imgvault.store.tokens import revoke_token

    with ctx.open_store() as store:
        info = revoke_token(store, name)
    click.echo(f'Revoked token "{printable(info.name)}".')
