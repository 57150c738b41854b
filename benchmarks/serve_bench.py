"""`imgvault serve` under load, against the in-process ``Store.get`` of the same images in the same run.

    python benchmarks/serve_bench.py --json

Puts N ~100x100 PNG/JPEG tiles of real photos in a fresh store, starts ``imgvault serve`` on loopback
(one process), and has 32 concurrent clients (keep-alive connections, asyncio, in this process) fetch image
content by random id for 10 s; then thumbnails the same way. The baseline is ``Store.get`` of random ids in
one thread of this process for the same time: what one core does without HTTP.

Figures:
  content_rps, content_p50_ms, content_p99_ms   HTTP throughput and latency (targets: p50 < 5 ms)
  content_ratio_vs_inprocess                    content_rps / in-process gets per second (target >= 0.5)
  thumbnails_per_second                         128-pixel PNG thumbnails made and served per second
The load generator shares the machine with the server: on a 2-core machine both compete for the cores,
so the ratio is a floor.
"""

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from servers import free_port, serving
from store_bench import print_figures, write_images

from imgvault.store import Settings, Store
from imgvault.store.tokens import create_token


def in_process(store: Store, ids: list[str], seconds: float) -> dict:
    latencies, deadline = [], time.perf_counter() + seconds
    while (started := time.perf_counter()) < deadline:
        store.get(random.choice(ids))
        latencies.append(time.perf_counter() - started)
    return {"rps": len(latencies) / seconds, "p50_ms": statistics.median(latencies) * 1000}


async def _client(port: int, token: str, paths: list[str], deadline: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(f"GET {random.choice(paths)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         f"Authorization: Bearer {token}\r\n\r\n".encode())  # fmt: skip
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            if status != b"200":
                raise RuntimeError(f"HTTP {status.decode()}: {head[:200]!r}")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))  # fmt: skip
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


def load(port: int, token: str, paths: list[str], clients: int, seconds: float) -> dict:
    latencies: list[float] = []

    async def main():
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_client(port, token, paths, deadline, latencies) for _ in range(clients)))

    started = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000, "requests": len(latencies)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        home = root / "vault"
        files = write_images(root / "in", args.images)
        with Store.init(settings=Settings.resolve(home, environ={})) as store:
            ids = [result.image.id for result in store.put_many(files, collection="bench", jobs=1)]
            _, token = create_token(store, "bench", read_only=True)
            baseline = in_process(store, ids, args.seconds)
        port = free_port()
        env = {**os.environ, "IMGVAULT_HOME": str(home)}
        for name in ("IMGVAULT_DB_URL", "IMGVAULT_KEY_FILE", "IMGVAULT_PASSPHRASE"):
            env.pop(name, None)
        command = [sys.executable, "-m", "imgvault.cli", "serve", "--port", str(port)]
        with serving(command, f"http://127.0.0.1:{port}/login", env):
            load(port, token, [f"/api/v1/images/{i}/content" for i in ids], args.clients, 1.0)  # warm up
            content = load(port, token, [f"/api/v1/images/{i}/content" for i in ids], args.clients, args.seconds)
            thumbs = load(port, token, [f"/api/v1/images/{i}/thumbnail?size=128" for i in ids], args.clients,
                          args.seconds / 2)  # fmt: skip
    result = {
        "images": args.images, "clients": args.clients, "seconds": args.seconds, "cores": os.cpu_count(),
        "inprocess_gets_per_second": round(baseline["rps"]), "inprocess_p50_ms": round(baseline["p50_ms"], 3),
        "content_rps": round(content["rps"]), "content_p50_ms": round(content["p50_ms"], 2),
        "content_p99_ms": round(content["p99_ms"], 2),
        "content_ratio_vs_inprocess": round(content["rps"] / baseline["rps"], 3),
        "thumbnails_per_second": round(thumbs["rps"]), "thumbnail_p50_ms": round(thumbs["p50_ms"], 2),
    }  # fmt: skip
    print_figures(result, args.json)


if __name__ == "__main__":
    main()
