"""The pHash band index: a 64-bit hash cut into four 16-bit bands, each in an indexed column.

Searching within Hamming distance d is multi-index hashing. Write d = 4r + a
(0 <= a < 4). If every one of bands 0..a differed in more than r bits and every
other band in more than r - 1, the hashes would differ in at least
(a + 1)(r + 1) + (3 - a)r = d + 1 bits. So every hash within d has band i within
r bits of the query's band i for some i <= a, or within r - 1 for some i > a:
looking up those neighbour values in the band indexes finds a superset of the
answer, and the exact distance of each candidate then decides. Four bands of 16
bits keep the neighbour lists short (d = 8: 188 values) while each value is
shared by about one row in 65,536.
"""

import functools
from itertools import combinations

BANDS = 4
BAND_BITS = 16
HASH_BITS = BANDS * BAND_BITS
MAX_DISTANCE = 16
_MASK64 = (1 << HASH_BITS) - 1
_HEX_DIGITS = HASH_BITS // 4


def hash_bits(phash):
    """The 16-hex-digit pHash as the signed 64-bit integer the BIGINT columns hold."""
    value = int(phash, 16)
    return value - (1 << HASH_BITS) if value >> (HASH_BITS - 1) else value


def hash_bands(phash):
    """The four 16-bit bands of a 16-hex-digit pHash, most significant first."""
    step = BAND_BITS // 4
    return [int(phash[i * step : (i + 1) * step], 16) for i in range(BANDS)]


def hash_hex(bits):
    """The 16-hex-digit pHash of a (signed) 64-bit integer."""
    return f"{bits & _MASK64:0{_HEX_DIGITS}x}"


def phash_columns(phash):
    """The index columns of an image or blocklist entry with this pHash."""
    bands = hash_bands(phash)
    return {"phash_bits": hash_bits(phash), **{f"phash_band{i}": band for i, band in enumerate(bands)}}


def hamming(a, b):
    """Bits in which two 64-bit integers (signed or not) differ."""
    return ((a ^ b) & _MASK64).bit_count()


def band_radii(max_distance):
    """How far each band may be from the query's for a hash within `max_distance` (-1: skip the band)."""
    r, a = divmod(max_distance, BANDS)
    return [r if i <= a else r - 1 for i in range(BANDS)]


@functools.cache
def _flip_masks(radius):
    masks = []
    for flips in range(radius + 1):
        for positions in combinations(range(BAND_BITS), flips):
            masks.append(sum(1 << p for p in positions))
    return tuple(masks)


def neighbours(band, radius):
    """Every 16-bit value within `radius` bits of `band`, itself first."""
    return [band ^ mask for mask in _flip_masks(radius)]


def band_lookups(phash, max_distance):
    """(band index, values to look up) for each band the pigeonhole bound needs."""
    return [
        (i, neighbours(band, radius))
        for i, (band, radius) in enumerate(zip(hash_bands(phash), band_radii(max_distance)))
        if radius >= 0
    ]

