"""R-precision: of the top R results, the share that is relevant (R = relevant count)."""

from __future__ import annotations

import numpy as np


def r_precision(judged, k: int | None = None) -> np.ndarray:
    """One value per query, as trec_eval's ``Rprec``.

    ``judged.relevant()`` is a (queries x depth) boolean matrix in rank order
    and ``judged.num_rel`` the number of relevant documents per query; a
    query with nothing relevant scores 0, like in trec_eval.
    """
    relevant = judged.relevant(None)
    num_rel = np.asarray(judged.num_rel, dtype=np.int64)
    out = np.zeros(len(num_rel), dtype=np.float64)
    if relevant.shape[1] == 0:
        return out
    found_by_rank = np.cumsum(relevant, axis=1)
    has_rel = num_rel > 0
    # hits within the top R; past the ranking's end no more can be found
    cut = np.clip(num_rel, 1, relevant.shape[1]) - 1
    hits = found_by_rank[np.arange(len(num_rel)), cut]
    out[has_rel] = hits[has_rel] / num_rel[has_rel]
    return out
