"""The ciphertext-only attack on block scrambling: a greedy jigsaw solver.

Encryption-then-compression (Kurihara, Kikuchi, Imaizumi, Shiota & Kiya 2015) moves MxM blocks, rotates
and flips them, inverts some (negative-positive) and shuffles their colour channels. Chuman, Sirichotedumrong
& Kiya (2019) showed that a jigsaw solver puts such blocks back from the ciphertext alone. This one:

- every block is tried in its 8 orientations and, inverted or not, 16 variants; colour blocks are compared
  on each pixel's *sorted* channel values, which no channel shuffle changes;
- the dissimilarity of two variants side by side is the prediction-based sum of squared differences
  across their common border (each side's border extrapolated one pixel by its gradient and compared with
  the other's border; Pomeranz, Shemesh & Ben-Shahar 2011), divided by the second-best dissimilarity that
  border has with any other block (Gallagher 2012), so that a border with many look-alikes counts less;
- greedy placement on the known grid: start from the best pair, then repeatedly place the unused block
  variant with the lowest mean dissimilarity to its placed neighbours in any free cell next to them that
  keeps the puzzle within its rows and columns;
- each placed colour block then gets the channel order that best continues its left and upper neighbours.

The solution is found up to the whole puzzle's symmetry (a rotation, flip, inversion or channel order of
the whole image), which no edge can tell; scoring undoes it by comparing with the original, as a viewer
would at a glance. ``blocks_in_place`` is the direct comparison: the fraction of grid cells holding the
block that belongs there (blocks that look the same under the cipher's transforms count as the same).
"""

from functools import lru_cache
from itertools import permutations

import numpy as np

MAX_BLOCKS = 256  # the dissimilarity matrices (two, and their transposes) are (16 x blocks)^2 float32 each
ORIENTATIONS = 8


def _orient(blocks: np.ndarray) -> np.ndarray:
    """``(N, M, M, C)`` in its 8 orientations: ``(N, 8, M, M, C)`` (4 rotations, then 4 of the mirror image)."""
    out = []
    for mirrored in (blocks, blocks[:, :, ::-1]):
        out.extend(np.rot90(mirrored, k, axes=(1, 2)) for k in range(4))
    return np.stack(out, axis=1)


def _variants(blocks: np.ndarray) -> np.ndarray:
    """``(N, 16, M, M, C)``: 8 orientations, then the same 8 inverted (255 - x)."""
    oriented = _orient(blocks)
    return np.concatenate([oriented, 255 - oriented], axis=1)


def _grid(image: np.ndarray, size: int) -> tuple[np.ndarray, int, int]:
    rows, cols = image.shape[0] // size, image.shape[1] // size
    part = image[: rows * size, : cols * size]
    blocks = part.reshape(rows, size, cols, size, -1).transpose(0, 2, 1, 3, 4).reshape(rows * cols, size, size, -1)
    return blocks, rows, cols


def _dissimilarity(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Squared distances between rows of ``first`` and rows of ``second`` (one matrix product, made in place)."""
    d = np.add.outer((first**2).sum(1), (second**2).sum(1))
    d -= 2 * first @ second.T
    return np.maximum(d, 0, out=d)


def _side_by_side(features: np.ndarray) -> np.ndarray:
    """``D[a, b]``: variant ``a`` left of variant ``b`` (``features``: ``(V, M, M, C)`` float)."""
    last, first = features[:, :, -1], features[:, :, 0]
    if features.shape[2] > 1:
        left = np.concatenate([2 * last - features[:, :, -2], last], axis=1)
        right = np.concatenate([first, 2 * first - features[:, :, 1]], axis=1)
    else:
        left, right = last, first
    return _dissimilarity(left.reshape(len(left), -1), right.reshape(len(right), -1))


def _apart(d: np.ndarray, n_blocks: int, per_block: int) -> np.ndarray:
    """``d`` with a block's variants beside each other made ten times the worst pair of two blocks."""
    own = np.arange(n_blocks)
    by_block = d.reshape(n_blocks, per_block, n_blocks, per_block)
    by_block[own, :, own, :] = 0  # below every distance, so the maximum is over pairs of two blocks
    by_block[own, :, own, :] = d.max() * 10
    return d


def _normalise(d: np.ndarray, n_blocks: int, per_block: int) -> tuple[np.ndarray, np.ndarray]:
    """Each entry over the second-best block its two borders have (rows: left border, columns: right);
    ``d`` divided in place, and its transpose (the cost of a variant beside a given one, as rows)."""
    d_t = d.T.copy()
    # Both minima over a middle axis (a column's 16 variants at once): far faster than over the last.
    by_block_row = d_t.reshape(n_blocks, per_block, len(d)).min(axis=1).T
    by_block_col = d.reshape(n_blocks, per_block, len(d)).min(axis=1).T
    second_row = np.partition(by_block_row, 1, axis=1)[:, 1] if n_blocks > 2 else by_block_row.max(1)
    second_col = np.partition(by_block_col, 1, axis=1)[:, 1] if n_blocks > 2 else by_block_col.max(1)
    # Rounding is monotone: the smaller denominator plus 1e-6 is the smaller of the two sums.
    row, col = second_row + 1e-6, second_col + 1e-6
    np.divide(d, np.minimum(row[:, None], col[None, :]), out=d)
    np.divide(d_t, np.minimum(col[:, None], row[None, :]), out=d_t)
    return d, d_t


class _Frontier:
    """The free cells next to placed blocks, each with its costs for every variant and its best unused one,
    kept from step to step: a cell's costs change only when a block is placed next to it."""

    def __init__(self, lr, tb, per_block: int):
        # The costs beside a placed neighbour, by the side the neighbour is on (each pair: d, d transposed).
        self.by_direction = (((0, -1), lr[0]), ((0, 1), lr[1]), ((-1, 0), tb[0]), ((1, 0), tb[1]))
        self.per_block = per_block
        self.blocked = np.zeros(len(lr[0]), dtype=bool)
        self.costs: dict[tuple[int, int], np.ndarray] = {}
        self.best: dict[tuple[int, int], tuple[float, int]] = {}

    def cost(self, cell: tuple[int, int], placed: dict) -> tuple[float, int]:
        if cell not in self.costs:
            r, c = cell
            costs, count = np.zeros(len(self.blocked)), 0
            for (dr, dc), matrix in self.by_direction:
                neighbour = placed.get((r + dr, c + dc))
                if neighbour is not None:
                    costs += matrix[neighbour]
                    count += 1
            self.costs[cell] = np.where(self.blocked, np.inf, costs / count**2)
        if cell not in self.best:
            choice = int(np.argmin(self.costs[cell]))
            self.best[cell] = (self.costs[cell][choice], choice)
        return self.best[cell]

    def place(self, cell: tuple[int, int], variant: int) -> None:
        block = variant // self.per_block
        used = slice(block * self.per_block, (block + 1) * self.per_block)
        self.blocked[used] = True
        r, c = cell
        for stale in [cell, *((r + dr, c + dc) for (dr, dc), _ in self.by_direction)]:
            self.costs.pop(stale, None)
            self.best.pop(stale, None)
        for other, costs in self.costs.items():
            costs[used] = np.inf
            # The first least cost stays the best unless it was of this block.
            if other in self.best and self.best[other][1] // self.per_block == block:
                del self.best[other]


def _place(lr: tuple, tb: tuple, rows: int, cols: int, per_block: int) -> np.ndarray:
    """Greedy placement: a ``(rows, cols)`` grid of variant ids (``lr``, ``tb``: each normalised, and transposed)."""
    n_blocks = len(lr[0]) // per_block
    first, second = np.unravel_index(np.argmin(lr[0]), lr[0].shape)
    placed = {(0, 0): int(first), (0, 1): int(second)} if cols > 1 else {(0, 0): int(first)}
    frontier = _Frontier(lr, tb, per_block)
    for cell, v in placed.items():
        frontier.place(cell, v)
    top, left = [0, 0], [0, max(c for _, c in placed)]  # the rows and columns the placed blocks span
    while len(placed) < n_blocks:
        best = (np.inf, None, None)
        # The cells in the order of this set, so that ties between cells are broken as they always were.
        for r, c in {(r + dr, c + dc) for r, c in placed for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0))}:
            if (r, c) in placed or max(top[1], r) - min(top[0], r) >= rows or max(left[1], c) - min(left[0], c) >= cols:
                continue
            cost, choice = frontier.cost((r, c), placed)
            if cost < best[0]:
                best = (cost, (r, c), choice)
        _, cell, choice = best
        placed[cell] = choice
        frontier.place(cell, choice)
        top, left = [min(top[0], cell[0]), max(top[1], cell[0])], [min(left[0], cell[1]), max(left[1], cell[1])]
    r0, c0 = min(r for r, _ in placed), min(c for _, c in placed)
    grid = np.zeros((rows, cols), dtype=np.int64)
    for (r, c), v in placed.items():
        grid[r - r0, c - c0] = v
    return grid


def _channel_orders(channels: int) -> list[tuple[int, ...]]:
    return list(permutations(range(channels))) if channels > 1 else [(0,)]


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
    lr, tb = (_normalise(_apart(d, n, per_block), n, per_block) for d in (lr, tb))  # each: (d, d transposed)
    grid = _place(lr, tb, rows, cols, per_block)
    tiles = variants.reshape(n * per_block, size, size, channels)[grid]  # (rows, cols, M, M, C)
    orders = np.array(_channel_orders(channels))
    for r in range(rows):
        for c in range(cols):
            if (r, c) == (0, 0):
                continue
            options = np.moveaxis(tiles[r, c][..., orders], -2, 0).astype(np.float64)  # (orders, M, M, C)
            scores = np.zeros(len(orders))
            if c > 0:
                scores += ((options[:, :, 0] - tiles[r, c - 1][:, -1]) ** 2).sum(axis=(1, 2))
            if r > 0:
                scores += ((options[:, 0] - tiles[r - 1, c][-1]) ** 2).sum(axis=(1, 2))
            tiles[r, c] = tiles[r, c][..., orders[int(np.argmin(scores))]]
    image = cipher.copy()
    image[: rows * size, : cols * size] = tiles.transpose(0, 2, 1, 3, 4).reshape(rows * size, cols * size, channels)
    return image, grid // per_block


@lru_cache(maxsize=8)
def _hash_weights(size: int, channels: int) -> tuple[np.ndarray, np.uint64]:
    """The weights that hash a flat block's every orientation and channel order at once, ``(values, forms)``,
    and what an inverted block's hash is taken from (255 times the sum of the weights)."""
    values = size * size * channels
    weights = np.random.default_rng(0).integers(1, 2**63, values, dtype=np.uint64) | np.uint64(1)
    where = _orient(np.arange(values).reshape(1, size, size, channels))[0]  # (8, M, M, C): which value goes where
    where = np.stack([where[..., list(order)] for order in _channel_orders(channels)], axis=1).reshape(-1, values)
    by_value = np.zeros((values, len(where)), dtype=np.uint64)
    by_value[where.T, np.arange(len(where))] = weights[:, None]  # sum_k w_k x[where_k] = sum_j (that w) x_j
    with np.errstate(over="ignore"):
        return by_value, weights.sum(dtype=np.uint64) * np.uint64(255)


def _canonical(blocks: np.ndarray) -> np.ndarray:
    """One id per block, the same for two blocks that one of the cipher's block transforms maps together:
    the smallest of a random linear hash (mod 2^64) over the block's 16 variants and channel orders (the
    hash of an inverted block is 255 times the weights' sum less the block's)."""
    by_value, inverted = _hash_weights(blocks.shape[1], blocks.shape[-1])
    with np.errstate(over="ignore"):
        hashes = blocks.reshape(len(blocks), -1).astype(np.uint64) @ by_value
        return np.minimum(hashes.min(axis=1), (inverted - hashes).min(axis=1))


def _symmetries(image: np.ndarray, grid: np.ndarray):
    """The whole puzzle's symmetries that keep its shape: (image, grid) pairs."""
    for mirrored_image, mirrored_grid in ((image, grid), (image[:, ::-1], grid[:, ::-1])):
        for k in range(4):
            turned, turned_grid = np.rot90(mirrored_image, k), np.rot90(mirrored_grid, k)
            if turned.shape == image.shape:
                yield turned, turned_grid


def align(solved: np.ndarray, grid: np.ndarray, original: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``solved`` under the whole-puzzle symmetry closest (least squares) to ``original``, and its grid.

    Only for scoring: it is what a viewer does at a glance (turn the picture upright, see it is a negative).
    """
    best = (np.inf, None, None)
    original = original[::2, ::2].astype(np.float32)  # every fourth pixel tells the symmetries apart
    for turned, turned_grid in _symmetries(solved, grid):
        for inverted in (False, True):
            for order in _channel_orders(solved.shape[-1]):
                candidate = turned[::2, ::2, list(order)].astype(np.float32)
                error = float(np.mean(((255 - candidate if inverted else candidate) - original) ** 2))
                if error < best[0]:
                    best = (error, (turned, inverted, order), turned_grid)
    turned, inverted, order = best[1]
    return (255 - turned if inverted else turned)[..., list(order)], best[2]


def blocks_in_place(cipher: np.ndarray, grid: np.ndarray, original: np.ndarray, size: int) -> float:
    """Direct comparison: the fraction of cells of ``grid`` (cipher block ids) whose block belongs there."""
    cipher_blocks, _, _ = _grid(cipher, size)
    original_blocks, _, _ = _grid(original, size)
    return float(np.mean(_canonical(cipher_blocks)[grid.ravel()] == _canonical(original_blocks)))


def _solved(cipher: np.ndarray, original: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """One held-out image as the attack scores it: the solution aligned to the original, and its blocks in place."""
    solved, grid = solve(cipher, size)
    aligned, aligned_grid = align(solved, grid, original)
    return aligned, blocks_in_place(cipher, aligned_grid, original, size)


def jigsaw_attack(originals: np.ndarray, ciphertexts, block_size: int, *, splits: int, seed: int = 0,
                  n_jobs: int = -1) -> dict:  # fmt: skip
    """The attack over repeated splits (:func:`imgvault.methods.attacks.score_splits`).

    ``ciphertexts(train)``: the cipher images of every image under that split's keys, uint8
    ``(n, H, W, C)``. Each held-out image is solved from its ciphertext alone (the training images serve the
    mean-image baseline only), under the first split's keys. Adds ``blocks_in_place`` (mean over the
    attacked images). ``n_jobs``: how many images are solved at once, in threads (joblib's meaning).
    """
    from joblib import Parallel, delayed
    from threadpoolctl import threadpool_limits

    from . import score_splits

    shape = originals.shape[1:]
    plain = originals.reshape(*originals.shape[:3], -1)
    solved_cache: dict[int, tuple[np.ndarray, float]] = {}
    first: list[np.ndarray] = []

    def recover(train, test):
        # The solver learns nothing from the training part, so every image is encrypted under the first
        # split's key and solved once; the splits change which images are scored and the baseline.
        if not first:
            first.append(ciphertexts(train))
        cipher = first[0]
        new = [int(i) for i in test if int(i) not in solved_cache]
        # Images are solved independently, in threads (the large array operations release the GIL), each
        # with one BLAS thread.
        with threadpool_limits(1):
            solving = Parallel(n_jobs=n_jobs, prefer="threads")
            done = solving(delayed(_solved)(cipher[i], plain[i], block_size) for i in new)
        solved_cache.update(zip(new, done, strict=True))
        images = [solved_cache[int(i)][0].reshape(shape) for i in test]
        return images, {"blocks_in_place": float(np.mean([solved_cache[int(i)][1] for i in test]))}

    return score_splits(originals, recover, splits=splits, seed=seed)
