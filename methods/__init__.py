"""imgvault.methods: image "encryption" methods as scikit-learn estimators, and their metrics.

========  =====================================================================  ==========================
method    "encrypted image"                                                      model ("key")
========  =====================================================================  ==========================
pca       principal-component scores (rows of one image, or eigen-image scores)  mean and k components
kmeans    label map, ceil(log2 k) bits per pixel                                 k cluster centres
gmm       label map from a Gaussian mixture                                      means, weights, covariances
aes       AES-256-GCM ciphertext of the 8-bit pixels (the secure reference)      a random 256-bit key
le        learnable encryption (Tanaka): 4-bit halves shuffled within blocks     a random 256-bit secret
etc       encryption-then-compression: blocks scrambled, turned, negated         a random 256-bit secret
pe        pixel-based encryption: per-pixel negative-positive, channel orders    a random 256-bit secret
logistic  logistic-map permutation-diffusion cipher (Fridrich's structure)       a random 256-bit secret
arnold    Arnold cat-map scrambling (permutation only, square images)            a random 256-bit secret
========  =====================================================================  ==========================

Names load on first use: importing this package does not import scikit-learn.
"""

from imgvault.basics.lazy import lazy_exports

_EXPORTS = {
    "load_pixels": "preprocess",
    "to_uint8": "preprocess",
    "quality": "metrics",
    "payload_cost": "metrics",
    "PCACodec": "pca",
    "KMeansCodec": "palette",
    "GMMCodec": "palette",
    "AESCodec": "aes",
    "LECodec": "learnable",
    "ETCCodec": "learnable",
    "PECodec": "learnable",
    "LogisticCodec": "chaotic",
    "ArnoldCodec": "chaotic",
    "ImageCipher": "cipher",
    "METHOD_NAMES": "registry",
    "make_codec": "registry",
    "encode_image": "encoding",
    "decode_image": "encoding",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
