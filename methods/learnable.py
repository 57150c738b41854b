"""The perceptual ("learnable") image ciphers of Tanaka and of Kiya's group: le, etc and pe.

They are designed so that a network can still learn from the encrypted images, which is also why the
inversion attacks of the literature break them when one key is shared by a collection. All three are
exact on 8-bit pixels and keep the image's shape; gray images have one channel, RGB three.
"""

import itertools
import math

import numpy as np

from .cipher import (
    ImageCipher,
    check_block_size,
    from_blocks,
    gather_and_mask,
    inverse,
    log2_factorial,
    to_blocks,
    unmask_and_scatter,
)

#: the 6 orders of three colour channels; a key picks one per block (etc) or per pixel (pe)
CHANNEL_ORDERS = np.array(list(itertools.permutations(range(3))), dtype=np.intp)


def _channels(image_shape: tuple[int, ...]) -> int:
    return image_shape[2] if len(image_shape) == 3 else 1


class LECodec(ImageCipher):
    """Learnable image encryption (Tanaka, 2018).

    M. Tanaka, "Learnable image encryption", IEEE International Conference on Consumer Electronics -
    Taiwan (ICCE-TW), 2018. The image is cut into ``block_size`` x ``block_size`` blocks; every 8-bit
    value of a block is split into its upper and lower 4 bits, which gives 2 x M x M x C 4-bit values
    per block. Within every block, the key shuffles those values and turns a keyed subset of them
    negative (v -> 15 - v); the values are then put together again as 8-bit pixels. The same key serves
    every block, so that a network with M x M strided convolutions can adapt to it.

    Parameters
    ----------
    block_size : int, default=4
        M. The image's height and width must be multiples of it (no padding).

    Attributes
    ----------
    key_ : ndarray of uint8, shape (32,)
    image_shape_ : tuple of int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)) / 255
    >>> codec = LECodec().fit(X)
    >>> bool((codec.decode(codec.encode(X)) == X).all())
    True
    """

    def __init__(self, *, block_size=4):
        self.block_size = block_size

    def _check_shape(self, image_shape):
        check_block_size(self.block_size, image_shape, "le")

    def _key_space_bits(self, image_shape):
        values = 2 * self.block_size**2 * _channels(image_shape)  # one shuffle of them, one flip bit each
        return log2_factorial(values) + values

    def _schedule(self):
        values = 2 * self.block_size**2 * _channels(self.image_shape_)
        rng = self.generator("le")
        order = rng.permutation(values)
        flips = np.where(rng.integers(0, 2, values).astype(bool), 15, 0).astype(np.uint8)
        return order, flips

    def _halves(self, pixels):
        blocks = to_blocks(pixels, self.block_size)
        flat = blocks.reshape(*blocks.shape[:2], -1)
        return np.concatenate([flat >> 4, flat & 15], axis=-1), blocks.shape

    def _join(self, halves, shape):
        upper, lower = np.split(halves, 2, axis=-1)
        return from_blocks(((upper << 4) | lower).reshape(shape), self.image_shape_)

    def _encrypt(self, pixels):
        order, flips = self.schedule()
        halves, shape = self._halves(pixels)
        return self._join(halves[..., order] ^ flips, shape)

    def _decrypt(self, pixels):
        order, flips = self.schedule()
        halves, shape = self._halves(pixels)
        plain = np.empty_like(halves)
        plain[..., order] = halves ^ flips
        return self._join(plain, shape)


class ETCCodec(ImageCipher):
    """Block scrambling encryption-then-compression (Kurihara, Kiya et al.; Chuman, Kiya et al.).

    K. Kurihara, M. Kikuchi, S. Imaizumi, S. Shiota, H. Kiya, "An encryption-then-compression system for
    JPEG/Motion JPEG standard", IEICE Trans. Fundamentals E98-A(11), 2015; T. Chuman, W. Sirichotedumrong,
    H. Kiya, "Encryption-then-compression systems using grayscale-based image encryption for JPEG
    images", IEEE Trans. Information Forensics and Security 14(6), 2019. Four keyed steps on
    ``block_size`` x ``block_size`` blocks: (1) the blocks are scrambled (one permutation of their
    positions), (2) each block is rotated by 0, 90, 180 or 270 degrees and flipped or not (the 8
    symmetries of a square), (3) each block is turned negative (p -> 255 - p) or not, (4) in RGB, each
    block's three colour channels are put in one of their 6 orders. Step 4 is a permutation, so it can
    be undone (copying one channel into another, as one published implementation does, cannot).

    Parameters
    ----------
    block_size : int, default=16
        M. The image's height and width must be multiples of it (no padding).

    Attributes
    ----------
    key_ : ndarray of uint8, shape (32,)
    image_shape_ : tuple of int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3)) / 255
    >>> codec = ETCCodec(block_size=8).fit(X)
    >>> bool((codec.decode(codec.encode(X)) == X).all())
    True
    """

    scrambles_blocks = True  # open to the jigsaw solver (imgvault.methods.attacks.jigsaw)

    def __init__(self, *, block_size=16):
        self.block_size = block_size

    def _check_shape(self, image_shape):
        check_block_size(self.block_size, image_shape, "etc")

    def _blocks(self, image_shape) -> int:
        return (image_shape[0] // self.block_size) * (image_shape[1] // self.block_size)

    def _key_space_bits(self, image_shape):
        blocks = self._blocks(image_shape)
        colour = np.log2(6) if _channels(image_shape) == 3 else 0.0
        return log2_factorial(blocks) + blocks * (3 + 1 + colour)

    def _schedule(self):
        """The four steps applied once to an image of positions: encryption is then one gather and one XOR
        (negation is p XOR 255 on 8 bits), decryption the inverse gather."""
        blocks = self._blocks(self.image_shape_)
        rng = self.generator("etc")
        order = rng.permutation(blocks)
        symmetry = rng.integers(0, 8, blocks)
        negative = rng.integers(0, 2, blocks).astype(bool)
        channels = rng.integers(0, 6, blocks)
        shape = tuple(self.image_shape_)
        positions = to_blocks(np.arange(math.prod(shape), dtype=np.int64).reshape(1, *shape), self.block_size)
        positions = positions[:, order]  # (1) block scrambling
        for g in range(1, 8):  # (2) rotation and flip
            chosen = symmetry == g
            turned = np.rot90(positions[:, chosen], g % 4, axes=(2, 3))
            positions[:, chosen] = turned[:, :, ::-1] if g >= 4 else turned
        mask = np.zeros(positions.shape, dtype=np.uint8)
        mask[:, negative] = 255  # (3) negative-positive transformation
        if positions.shape[-1] == 3:  # (4) colour channel shuffling
            positions = np.take_along_axis(positions, CHANNEL_ORDERS[channels][None, :, None, None, :], axis=4)
        source = from_blocks(positions, shape).ravel()
        return source, inverse(source), from_blocks(mask, shape).ravel()

    def _encrypt(self, pixels):
        source, _, mask = self.schedule()
        return gather_and_mask(pixels, source, mask)

    def _decrypt(self, pixels):
        _, target, mask = self.schedule()
        return unmask_and_scatter(pixels, target, mask)


class PECodec(ImageCipher):
    """Pixel-based image encryption (Sirichotedumrong, Kinoshita, Kiya, 2019).

    W. Sirichotedumrong, Y. Kinoshita, H. Kiya, "Pixel-based image encryption without key management for
    privacy-preserving deep neural networks", IEEE Access 7, 2019. Every pixel value is turned negative
    (p -> 255 - p) or not by a keyed bit map of the image's shape, and, in RGB, every pixel's three
    colour channels are put in one of their 6 orders by a keyed map. Pixels never move, which is what
    lets a network learn from the encrypted images.

    Attributes
    ----------
    key_ : ndarray of uint8, shape (32,)
    image_shape_ : tuple of int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3)) / 255
    >>> codec = PECodec().fit(X)
    >>> bool((codec.decode(codec.encode(X)) == X).all())
    True
    """

    block_size = 1  # a key per pixel: a block cipher on 1x1 blocks (the per-block inversion attack applies)

    def _key_space_bits(self, image_shape):
        pixels = image_shape[0] * image_shape[1]
        return pixels * _channels(image_shape) + (pixels * np.log2(6) if len(image_shape) == 3 else 0.0)

    def _schedule(self):
        """Both key maps as one gather (the channel orders) and one XOR (the negations)."""
        rng = self.generator("pe")
        shape = tuple(self.image_shape_)
        mask = np.where(rng.integers(0, 2, shape).astype(bool), 255, 0).astype(np.uint8).ravel()
        source = np.arange(math.prod(shape), dtype=np.int64)
        if len(shape) == 3:
            channels = rng.integers(0, 6, shape[:2]).ravel()
            source = (source.reshape(-1, 3)[:, :1] + CHANNEL_ORDERS[channels]).ravel()
        return source, inverse(source), mask

    def _encrypt(self, pixels):
        source, _, mask = self.schedule()
        return gather_and_mask(pixels, source, mask)

    def _decrypt(self, pixels):
        _, target, mask = self.schedule()
        return unmask_and_scatter(pixels, target, mask)
