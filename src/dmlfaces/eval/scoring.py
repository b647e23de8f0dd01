"""Pair scores: the cosine between the unit descriptors of the two templates of each pair.

IJB-C has 15.7 M pairs over 23 k templates. Gathering two 512-d rows per pair moves 64 GB through
memory, while the pairs of one block of first templates usually fill a good part of a dense tile
(IJB-C compares 3.5 k gallery templates with 19.6 k probe templates, 23% of that rectangle), which
one matrix product computes far faster. ``score_pairs`` groups pairs by blocks of first templates
and, per block, takes the matrix product when the pairs fill enough of the tile and the row gather
otherwise, with memory bounded by ``block_bytes``.

Scores are float64. float32 would be twice as fast, but among 15.6 M float32 scores thousands of
impostor scores tie, and every tie adds a corner to sklearn's ROC curve (``drop_intermediate``
keeps corners), which moves the public evaluators' nearest-FPR point: only scores as fine as their
float64 ones reproduce their TAR values.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# A tile entry costs 2*D flops of float64 BLAS (about 40 GFLOP/s on two cores: 25 ns for D = 512), a
# gathered pair two D-row copies (about 1 us when the rows come from DRAM): tiles win above ~1/40 fill,
# and 1/32 keeps a margin for slower BLAS.
_DENSE_MIN_FILL = 1 / 32
_GATHER_ROWS = 1024  # pairs per gather step: two 1024 x 512 float64 blocks stay near the L2 cache
_LOOKUP_CHUNK = 1 << 22  # ids translated per step, so the temporaries stay small at IJB-C scale
_TABLE_MAX_SPAN = 1 << 26  # id span up to which a lookup table (int32, <= 256 MiB) beats a binary search


def template_rows(templates: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row of each id in the sorted unique ``templates`` (T,); same shape as ``ids``, int32.

    Raises:
        KeyError: some id is not in ``templates`` (a template without crops, hence without descriptor
            or subject); the message names the first such template id and counts the entries.
    """
    templates = np.asarray(templates)
    ids = np.asarray(ids)
    flat = ids.reshape(-1)
    rows = np.empty(len(flat), dtype=np.int32)
    if len(templates) == 0:
        rows.fill(-1)
    elif int(templates[-1]) - int(templates[0]) < _TABLE_MAX_SPAN:
        low, span = int(templates[0]), int(templates[-1]) - int(templates[0]) + 1
        # -1 sentinels at both ends answer every id outside the span (np.take clips onto them).
        table = np.full(span + 2, -1, dtype=np.int32)
        table[templates - low + 1] = np.arange(len(templates), dtype=np.int32)
        for start in range(0, len(flat), _LOOKUP_CHUNK):
            offset = flat[start : start + _LOOKUP_CHUNK] - (low - 1)
            rows[start : start + len(offset)] = np.take(table, offset, mode="clip")
    else:
        position = np.minimum(np.searchsorted(templates, flat), len(templates) - 1)
        rows[:] = np.where(templates[position] == flat, position, -1)
    missing = rows < 0
    if missing.any():
        raise KeyError(
            f"template {flat[np.argmax(missing)]} is unknown (it has no crops, so no descriptor or"
            f" subject); {np.count_nonzero(missing)} entries name unknown templates"
        )
    return rows.reshape(ids.shape)


def pair_scores(templates: np.ndarray, descriptors: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """(P,) cosine scores of template pairs, directly; ``pairs`` is (P, 2) template ids, ``descriptors`` unit rows."""
    position = template_rows(templates, pairs)
    return np.einsum("pd,pd->p", descriptors[position[:, 0]], descriptors[position[:, 1]])


def score_pairs(templates: np.ndarray, descriptors: np.ndarray, pairs: np.ndarray, *, block_bytes: int = 64 << 20) -> np.ndarray:
    """(P,) float64 cosine scores of template pairs, computed block by block.

    Args:
        templates: (T,) sorted unique template ids; descriptors: (T, D) unit rows.
        pairs: (P, 2) template ids.
        block_bytes: size bound of one dense score tile; the working memory beyond the inputs is
            about this plus 40 bytes per pair.
    Raises:
        KeyError: a pair names a template without a descriptor (named in the message).
        ValueError: a descriptor has NaN/inf values or is not a unit vector (templates named).
    """
    descriptors = np.ascontiguousarray(descriptors, dtype=np.float64)
    _check_unit(templates, descriptors)
    first = template_rows(templates, pairs[:, 0])
    second = template_rows(templates, pairs[:, 1])
    scores = np.empty(len(first), dtype=np.float64)
    if len(first) == 0:
        return scores
    # Blocks of first templates whose tile over all second templates fits in block_bytes.
    rows_per_block = max(1, block_bytes // (8 * np.count_nonzero(np.bincount(second, minlength=len(templates)))))
    column = np.full(len(templates), -1, dtype=np.int64)
    columns, column_descriptors = np.zeros(0, dtype=np.int64), descriptors[:0]
    buffer = np.empty(0)  # one tile buffer for all blocks: fresh 64 MiB tiles would page-fault each time
    for selection, local_rows, block_rows in _row_blocks(first, rows_per_block, len(templates)):
        pair_second = second[selection]
        used = np.zeros(len(templates), dtype=bool)
        used[pair_second] = True
        if len(pair_second) >= _DENSE_MIN_FILL * len(block_rows) * np.count_nonzero(used):
            if not np.array_equal(columns, np.flatnonzero(used)):  # blocks usually share their columns
                columns = np.flatnonzero(used)
                column[columns] = np.arange(len(columns))
                column_descriptors = descriptors[columns]
            if len(buffer) < len(block_rows) * len(columns):
                buffer = np.empty(len(block_rows) * len(columns))
            tile = buffer[: len(block_rows) * len(columns)].reshape(len(block_rows), len(columns))
            np.matmul(descriptors[block_rows], column_descriptors.T, out=tile)  # BLAS reads the transpose in place
            scores[selection] = tile.reshape(-1)[local_rows * len(columns) + column[pair_second]]
        else:
            pair_first = first[selection]
            values = np.empty(len(pair_first))
            for start in range(0, len(values), _GATHER_ROWS):
                stop = start + _GATHER_ROWS
                values[start:stop] = np.einsum(
                    "pd,pd->p", descriptors[pair_first[start:stop]], descriptors[pair_second[start:stop]]
                )
            scores[selection] = values
    return scores


def _row_blocks(
    first: np.ndarray, rows_per_block: int, template_count: int
) -> Iterator[tuple[slice | np.ndarray, np.ndarray, np.ndarray]]:
    """Per block of at most ``rows_per_block`` first templates: its pairs (a slice or (B,) indices),
    each pair's row in the block's tile (B,), and the block's first templates (R,), given (P,) ``first``.

    Pair lists that keep each first template's pairs together (the IJB-B/C files do) give blocks
    that are slices of the list; any other order is grouped by a radix sort of block numbers.
    """
    heads = np.flatnonzero(np.r_[True, first[1:] != first[:-1]])
    run_rows = first[heads]
    if len(heads) <= template_count and len(np.unique(run_rows)) == len(run_rows):
        ends = np.r_[heads[1:], len(first)]
        for start in range(0, len(heads), rows_per_block):
            runs = slice(start, start + rows_per_block)
            local_rows = np.repeat(np.arange(len(run_rows[runs])), ends[runs] - heads[runs])
            yield slice(heads[start], ends[runs][-1]), local_rows, run_rows[runs]
        return
    first_rows = np.flatnonzero(np.bincount(first, minlength=template_count))
    rank = np.full(template_count, -1, dtype=np.int64)
    rank[first_rows] = np.arange(len(first_rows))
    block_of_pair = rank[first] // rows_per_block
    blocks = -(-len(first_rows) // rows_per_block)
    # 16-bit keys let numpy's stable argsort use a radix sort: linear in the number of pairs.
    order = np.argsort(block_of_pair.astype(np.uint16 if blocks <= 1 << 16 else np.int64), kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(block_of_pair, minlength=blocks))]
    for b in range(blocks):
        index = order[bounds[b] : bounds[b + 1]]
        yield index, rank[first[index]] - b * rows_per_block, first_rows[b * rows_per_block : (b + 1) * rows_per_block]


def _check_unit(templates: np.ndarray, descriptors: np.ndarray) -> None:
    """Raise ValueError naming the templates whose descriptor is not a finite unit vector."""
    norms = np.linalg.norm(descriptors.astype(np.float64), axis=1)
    bad = ~(np.abs(norms - 1.0) < 1e-3)  # NaN compares False, so it is caught too
    if bad.any():
        named = ", ".join(str(t) for t in np.asarray(templates)[bad][:5])
        raise ValueError(
            f"{np.count_nonzero(bad)} template descriptors are not finite unit vectors (norms"
            f" {norms[bad][:5].round(4).tolist()}), e.g. templates {named}; L2-normalise them first"
        )
