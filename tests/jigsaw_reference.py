"""The jigsaw solver in its plain form, as the tests' reference: every free cell's costs recomputed at every
step of the placement, each dissimilarity matrix made and normalised out of place, each channel order and each
of a block's forms scored one by one. ``imgvault.methods.attacks.jigsaw`` must give exactly what this gives."""

import numpy as np

from imgvault.methods.attacks.jigsaw import MAX_BLOCKS, _channel_orders, _grid, _variants


def _dissimilarity(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Squared distances between rows of ``first`` and rows of ``second`` (one matrix product)."""
    d = (first**2).sum(1)[:, None] + (second**2).sum(1)[None, :] - 2 * first @ second.T
    return np.maximum(d, 0)


def _side_by_side(features: np.ndarray) -> np.ndarray:
    """``D[a, b]``: variant ``a`` left of variant ``b`` (``features``: ``(V, M, M, C)`` float)."""
    last, first = features[:, :, -1], features[:, :, 0]
    if features.shape[2] > 1:
        left = np.concatenate([2 * last - features[:, :, -2], last], axis=1)
        right = np.concatenate([first, 2 * first - features[:, :, 1]], axis=1)
    else:
        left, right = last, first
    return _dissimilarity(left.reshape(len(left), -1), right.reshape(len(right), -1))


def _normalise(d: np.ndarray, n_blocks: int, per_block: int) -> np.ndarray:
    """Each entry over the second-best block its two borders have (rows: left border, columns: right)."""
    by_block_row = d.reshape(len(d), n_blocks, per_block).min(axis=2)
    by_block_col = d.T.reshape(len(d), n_blocks, per_block).min(axis=2)
    second_row = np.partition(by_block_row, 1, axis=1)[:, 1] if n_blocks > 2 else by_block_row.max(1)
    second_col = np.partition(by_block_col, 1, axis=1)[:, 1] if n_blocks > 2 else by_block_col.max(1)
    return d / (np.minimum(second_row[:, None], second_col[None, :]) + 1e-6)


def _place(lr: np.ndarray, tb: np.ndarray, rows: int, cols: int, per_block: int) -> np.ndarray:
    """Greedy placement: a ``(rows, cols)`` grid of variant ids."""
    n_blocks = len(lr) // per_block
    first, second = np.unravel_index(np.argmin(lr), lr.shape)
    placed = {(0, 0): int(first), (0, 1): int(second)} if cols > 1 else {(0, 0): int(first)}
    used = np.zeros(n_blocks, dtype=bool)
    for v in placed.values():
        used[v // per_block] = True
    while len(placed) < n_blocks:
        top = min(r for r, _ in placed), max(r for r, _ in placed)
        left = min(c for _, c in placed), max(c for _, c in placed)
        blocked = np.repeat(used, per_block)
        best = (np.inf, None, None)
        for r, c in {(r + dr, c + dc) for r, c in placed for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0))}:
            if (r, c) in placed or max(top[1], r) - min(top[0], r) >= rows or max(left[1], c) - min(left[0], c) >= cols:
                continue
            costs, count = np.zeros(len(lr)), 0
            for (dr, dc), matrix, neighbour_first in (((0, -1), lr, True), ((0, 1), lr, False),
                                                      ((-1, 0), tb, True), ((1, 0), tb, False)):  # fmt: skip
                neighbour = placed.get((r + dr, c + dc))
                if neighbour is not None:
                    costs += matrix[neighbour] if neighbour_first else matrix[:, neighbour]
                    count += 1
            costs = np.where(blocked, np.inf, costs / count**2)
            choice = int(np.argmin(costs))
            if costs[choice] < best[0]:
                best = (costs[choice], (r, c), choice)
        _, cell, choice = best
        placed[cell] = choice
        used[choice // per_block] = True
    r0, c0 = min(r for r, _ in placed), min(c for _, c in placed)
    grid = np.zeros((rows, cols), dtype=np.int64)
    for (r, c), v in placed.items():
        grid[r - r0, c - c0] = v
    return grid


def solve(cipher: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Reassemble one cipher image ``(H, W, C)`` uint8 of MxM blocks; returns (image, grid of block ids).

    Pixels outside the block grid are left as they are. The result is right up to the whole puzzle's
    symmetry (see the module's docstring).
    """
    blocks, rows, cols = _grid(cipher, size)
    n, channels = len(blocks), blocks.shape[-1]
    if n > MAX_BLOCKS:
        raise ValueError(f"{n} blocks: the solver takes at most {MAX_BLOCKS}")
    variants = _variants(blocks.astype(np.float32))  # (N, 16, M, M, C)
    per_block = variants.shape[1]
    features = np.sort(variants, axis=-1).reshape(n * per_block, size, size, channels)
    lr = _side_by_side(features)
    tb = _side_by_side(features.transpose(0, 2, 1, 3))  # above/below is side by side, transposed
    for d in (lr, tb):
        for b in range(n):
            d[b * per_block : (b + 1) * per_block, b * per_block : (b + 1) * per_block] = np.inf
    lr, tb = (_normalise(np.where(np.isinf(d), np.nanmax(d[np.isfinite(d)]) * 10, d), n, per_block) for d in (lr, tb))
    grid = _place(lr, tb, rows, cols, per_block)
    tiles = variants.reshape(n * per_block, size, size, channels)[grid]  # (rows, cols, M, M, C)
    orders = _channel_orders(channels)
    for r in range(rows):
        for c in range(cols):
            if (r, c) == (0, 0):
                continue
            scores = []
            for order in orders:
                tile = tiles[r, c][..., list(order)]
                score = 0.0
                if c > 0:
                    score += float(((tile[:, 0] - tiles[r, c - 1][:, -1]) ** 2).sum())
                if r > 0:
                    score += float(((tile[0] - tiles[r - 1, c][-1]) ** 2).sum())
                scores.append(score)
            tiles[r, c] = tiles[r, c][..., list(orders[int(np.argmin(scores))])]
    image = cipher.copy()
    image[: rows * size, : cols * size] = tiles.transpose(0, 2, 1, 3, 4).reshape(rows * size, cols * size, channels)
    return image, grid // per_block


def _canonical(blocks: np.ndarray) -> np.ndarray:
    """One id per block, the same for two blocks that one of the cipher's block transforms maps together:
    the smallest of a random linear hash (mod 2^64) over the block's 16 variants and channel orders."""
    variants = _variants(blocks)  # (N, 16, M, M, C)
    forms = np.stack([variants[..., list(order)] for order in _channel_orders(blocks.shape[-1])], axis=2)
    forms = forms.reshape(len(blocks), -1, forms[0, 0, 0].size).astype(np.uint64)
    weights = np.random.default_rng(0).integers(1, 2**63, forms.shape[-1], dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        hashes = (forms * weights).sum(axis=-1, dtype=np.uint64)
    return hashes.min(axis=1)
