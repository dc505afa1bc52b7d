"""64-bit keys over chosen fields of every row, computed a column at a time.

The deduplicator compares keys, so they must be the same on every machine and in every release: no
process-seeded hash, no library whose hash may change with its version. Text is hashed as a polynomial
over its bytes (all rows of a column at once, from the column's byte buffer and offsets); numbers and
instants through their 64-bit value; each column's hash is then mixed into the row's key with the
SplitMix64 finaliser. A collision (two different events taken for one) is a 1 in 2^64 chance per pair.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_BASE = np.uint64(0x100000001B3)  # odd, so it has an inverse modulo 2^64
_BASE_INVERSE = np.uint64(pow(0x100000001B3, -1, 2**64))
_NULL = np.uint64(0x6A09E667F3BCC909)


def _mix(values: np.ndarray) -> np.ndarray:
    z = values.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z += _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _powers(base: np.uint64, count: int) -> np.ndarray:
    powers = np.full(count, base, dtype=np.uint64)
    if count:
        powers[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(powers, dtype=np.uint64)


_ROWS_PER_PASS = 16_384  # bounds the per-byte work arrays to the bytes of this many values


def _text_hash(array: pa.Array) -> np.ndarray:
    """Hash of each value's UTF-8 bytes (nulls get a fixed value)."""
    if not pa.types.is_large_string(array.type) and not pa.types.is_large_binary(array.type):
        array = pc.cast(array, pa.large_binary() if pa.types.is_binary(array.type) else pa.large_string())
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    hashed = np.empty(len(array), dtype=np.uint64)
    for first_row in range(0, len(array), _ROWS_PER_PASS):
        bounds = offsets[first_row : first_row + _ROWS_PER_PASS + 1]
        hashed[first_row : first_row + len(bounds) - 1] = _hash_slices(data, bounds)
    return np.where(_valid(array), hashed, _NULL)


def _hash_slices(data: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    first, last = int(bounds[0]), int(bounds[-1])
    start, end = bounds[:-1] - first, bounds[1:] - first
    with np.errstate(over="ignore"):
        # prefix[k] = sum over j < k of (byte_j + 1) * B^-j; a value's slice of it times B^start is a
        # polynomial in B^-1 over the value's own bytes, the same wherever the value sits.
        terms = (data[first:last].astype(np.uint64) + np.uint64(1)) * _powers(_BASE_INVERSE, last - first)
        prefix = np.concatenate([np.zeros(1, dtype=np.uint64), np.cumsum(terms, dtype=np.uint64)])
        rebased = (prefix[end] - prefix[start]) * _power_at(start)
        return _mix(rebased ^ (end - start).astype(np.uint64))


def _power_at(positions: np.ndarray) -> np.ndarray:
    """B^p for each p, by squaring (vectorised over the positions)."""
    result = np.ones(len(positions), dtype=np.uint64)
    base = np.full(len(positions), _BASE, dtype=np.uint64)
    exponent = positions.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        while exponent.any():
            odd = (exponent & np.uint64(1)).astype(bool)
            result[odd] *= base[odd]
            base *= base
            exponent >>= np.uint64(1)
    return result


def _valid(array: pa.Array) -> np.ndarray:
    return np.asarray(pc.is_valid(array).to_numpy(zero_copy_only=False), dtype=bool)


def _number_hash(array: pa.Array) -> np.ndarray:
    if pa.types.is_timestamp(array.type):
        array = pc.cast(array, pa.int64())
    elif pa.types.is_boolean(array.type):
        array = pc.cast(array, pa.int8())
    elif pa.types.is_floating(array.type):
        numbers = np.asarray(pc.fill_null(array, 0.0).to_numpy(zero_copy_only=False), dtype=np.float64)
        return np.where(_valid(array), _mix(numbers.view(np.uint64)), _NULL)
    numbers = np.asarray(
        pc.fill_null(pc.cast(array, pa.int64()), 0).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    return np.where(_valid(array), _mix(numbers.view(np.uint64)), _NULL)


def column_hash(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if (
        pa.types.is_string(array.type)
        or pa.types.is_large_string(array.type)
        or pa.types.is_binary(array.type)
    ):
        # Hash each distinct value once: feed columns repeat a lot (protocols, identifiers, addresses).
        encoded = pc.dictionary_encode(array)
        hashed = _text_hash(encoded.dictionary)
        indices = np.asarray(pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
        return np.where(_valid(array), hashed[indices] if len(hashed) else _NULL, _NULL)
    return _number_hash(array)


def row_keys(table: pa.Table, fields: list[str]) -> np.ndarray:
    """One uint64 key per row over `fields` (a field the table lacks counts as absent)."""
    keys = np.full(table.num_rows, np.uint64(len(fields)), dtype=np.uint64)
    for position, name in enumerate(fields):
        if name in table.column_names:
            column = column_hash(table.column(name))
        else:
            column = np.full(table.num_rows, _NULL, dtype=np.uint64)
        with np.errstate(over="ignore"):
            keys = _mix(keys ^ (column + np.uint64(position) * _GOLDEN))
    return keys
