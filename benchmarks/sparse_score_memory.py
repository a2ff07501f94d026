"""Memory and time of the sparse (lexical) score at BGE-M3 training sizes.

bgekit scores lexical matches through a local vocabulary of the query
batch's distinct token ids (U of them): the working set is two bags,
(Q + P) x U floats. FlagEmbedding's training path builds a
(P x L x vocab) tensor first. This script runs bgekit's scorer forward and
backward on random token ids with XLM-R's vocabulary size and prints U, the
bag size, the size the (batch x length x vocab) formulation would need, the
time, and on CUDA the measured peak memory.

    python benchmarks/sparse_score_memory.py --queries 32 --group 8 --query-length 64 --passage-length 512
"""

from __future__ import annotations

import argparse
import time

import torch

from bgekit_heads.sparse import LexicalWeights, lexical_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=32)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--query-length", type=int, default=64)
    parser.add_argument("--passage-length", type=int, default=512)
    parser.add_argument("--vocab", type=int, default=250002, help="XLM-R / BGE-M3 vocabulary size")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    q_n, p_n = args.queries, args.queries * args.group
    generator = torch.Generator().manual_seed(0)
    # Zipf-like ids: natural text reuses frequent tokens.
    def ids(n, length):
        ranks = torch.randint(1, args.vocab, (n, length), generator=generator).float()
        return (args.vocab * (ranks / args.vocab) ** 3).long().clamp(0, args.vocab - 1).to(device)

    q_ids, p_ids = ids(q_n, args.query_length), ids(p_n, args.passage_length)
    q_w = torch.rand(q_n, args.query_length, device=device, requires_grad=True)
    p_w = torch.rand(p_n, args.passage_length, device=device, requires_grad=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    scores = lexical_scores(LexicalWeights(q_ids, q_w), LexicalWeights(p_ids, p_w))
    scores.sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    distinct = int(torch.unique(q_ids).numel())
    gib = 1024**3
    print(f"device                     {device}")
    print(f"queries x passages         {q_n} x {p_n}  (lengths {args.query_length} / {args.passage_length})")
    print(f"distinct query ids U       {distinct}")
    print(f"bags (Q+P) x U float32     {(q_n + p_n) * distinct * 4 / gib:.4f} GiB")
    print(f"P x L x vocab float32      {p_n * args.passage_length * args.vocab * 4 / gib:.1f} GiB (not built)")
    print(f"forward + backward         {elapsed * 1000:.1f} ms")
    if device.type == "cuda":
        print(f"measured peak (CUDA)       {(torch.cuda.max_memory_allocated() - base) / gib:.4f} GiB")


if __name__ == "__main__":
    main()
