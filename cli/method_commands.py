"""Commands of the methods: encode a stored image, decode an encoded one."""

import json

import click

from .group import Context, cli, pass_context
from .options import json_option, methods_option, output_option
from .output_files import safe_file_name, write_output
from .printing import plain_table


def _format_metric(value) -> str:
    if value is None:
        return "inf"
    return f"{value:,.4f}" if isinstance(value, float) else f"{value:,}"


@cli.command("methods")
@json_option
def methods_command(as_json: bool) -> None:
    """List the methods: built-in ones and installed plugins, what -k sets for each, and their properties.

    KEY is "secret" for a method keyed by a random bit string (aes, the ciphers) and "model" for one whose
    key is the model fitted to the images (pca, kmeans, gmm). Plugins are found through the entry-point
    group imgvault.methods (see docs/plugins.md).

    \b
    Example:
      imgvault methods
      imgvault methods --json
    """
    from imgvault.methods.registry import describe_methods

    rows = describe_methods()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return

    def knob_text(row):
        if row["knob"] is None:
            return "none"
        return f"{row['knob']}: {row['knob_meaning']}, default {row['knob_default']}"

    plain_table(
        [("METHOD", 8), ("KNOB (-k)", 42), ("LOSSLESS", 8), ("RANDOMIZED", 10), ("KEY", 6), ("SOURCE", 0)],
        ((r["method"], knob_text(r), "yes" if r["lossless"] else "no", "yes" if r["randomized"] else "no",
          "secret" if r["key"] == "secret bit string" else "model", r["source"]) if "error" not in r
         else (r["method"], "-", "-", "-", "-", f"{r['source']}: {r['error']}") for r in rows),
    )  # fmt: skip


@cli.command()
@click.argument("image_id")
@methods_option(one=True)
@click.option("-k", type=int, default=None,
              help="The method's knob: components (pca), clusters (kmeans, gmm), default 8; block size (le 4, "
                   "etc 16); iterations (arnold 10). None for aes, pe, logistic.")  # fmt: skip
@click.option("--size", type=int, default=100, show_default=True, help="Side of the square the image is resized to.")
@click.option("--color", type=click.Choice(["gray", "rgb"]), default="gray", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="random_state of the method.")
@json_option
@pass_context
def encode(ctx: Context, image_id: str, methods: tuple[str], k: int | None, size: int, color: str, seed: int,
           as_json: bool) -> None:  # fmt: skip
    """Encode ("encrypt") a stored image with a method; store the result and its model, sealed.

    The image is resized to SIZE x SIZE, gray or RGB, and the method fitted on it alone (the fitted
    model is the "key"). Prints the quality metrics (MSE, PSNR, SSIM on the 0-255 scale) and the cost
    (bits per pixel of the encoded image).

    \b
    Example:
      imgvault encode 01JD3Z8R8C6WQ3M1V0B5E3N9XK --methods kmeans -k 8
      imgvault encode 01JD3Z8R8C6WQ3M1V0B5E3N9XK -m pca -k 16 --color rgb --json
    """
    from imgvault.methods.encoding import encode_image

    [method] = methods
    with ctx.open_store() as store:
        info = encode_image(store, image_id, method=method, k=k, size=size, color=color, random_state=seed).info
    if as_json:
        result = {"encoded_id": info.id, "model_id": info.model_id, "method": info.method,
                  "params": info.params, "metrics": info.metrics}  # fmt: skip
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"encoded image {info.id} (model {info.model_id})")
    codec = info.params["codec"]
    knobs = "".join(f", {name}={codec[name]}" for name in ("k", "block_size", "iterations") if name in codec)
    settings = f"{info.method}{knobs}, {size}x{size} {color}"
    rows = [("method", settings)] + [(name, _format_metric(value)) for name, value in info.metrics.items()]
    plain_table([("METRIC", 18), ("VALUE", 0)], rows)


@cli.command()
@click.argument("encoded_id")
@output_option("ENCODED_ID.png in the current folder.")
@pass_context
def decode(ctx: Context, encoded_id: str, output: str | None, force: bool) -> None:
    """Decode ("decrypt") an encoded image with its stored model; write the reconstruction as PNG.

    For aes the PNG holds exactly the pixels that were encrypted. The output is a new regular file:
    an existing path is refused unless --force is given, and even then only a regular file is
    replaced (never a symlink, FIFO, device or directory). '-o -' writes to stdout.

    \b
    Example:
      imgvault decode 01JD3ZB4T5Q4X1Q7H2M8C2W3VY -o reconstruction.png
    """
    from imgvault.basics.errors import EncodedNotFound
    from imgvault.methods.encoding import decode_image, to_png

    with ctx.open_store() as store:
        try:
            png = to_png(decode_image(store, encoded_id))
        except EncodedNotFound:
            image = _image_or_none(store, encoded_id)
            if image is None:
                raise
            raise click.ClickException(
                f"{image.id} is an image id, not an encoded image's; its encoded images are listed by"
                f" `imgvault ls --encoded -c {image.collection}` (column IMAGE)"
            ) from None
    write_output(output or safe_file_name(f"{encoded_id}.png", "decoded.png"), png, force=force)


def _knob(codec: dict):
    return next((codec[name] for name in ("k", "block_size", "iterations") if name in codec), "-")


def _image_or_none(store, image_id: str):
    from imgvault.basics.errors import ImageNotFound

    try:
        return store.info(image_id)
    except ImageNotFound:
        return None


def list_encoded(store, collection: str | None, as_json: bool) -> None:
    """``imgvault ls --encoded``: the encoded images with their settings and metrics."""
    encodings = store.encoded_images(collection)
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in encodings], indent=2))
        return
    columns = [("ID", 26), ("IMAGE", 26), ("METHOD", 6), ("K", 3), ("SIZE", 9), ("MSE", 9), ("PSNR", 7), ("SSIM", 6),
               ("BPP", 6), ("CREATED", 0)]  # fmt: skip
    rows = (
        (e.id, e.image_id, e.method, _knob(e.params["codec"]), f"{e.params['size']} {e.params['color']}",
         f"{e.metrics['mse']:.2f}", "inf" if e.metrics["psnr"] is None else f"{e.metrics['psnr']:.2f}",
         f"{e.metrics['ssim']:.3f}", f"{e.metrics['bpp']:.2f}", f"{e.created:%Y-%m-%d %H:%M:%S}")
        for e in encodings
    )  # fmt: skip
    plain_table(columns, rows)
