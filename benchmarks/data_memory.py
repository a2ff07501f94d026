"""Peak memory of `bgekit data validate` and `convert` on a generated multi-GB file.

Both commands stream, so their peak resident set size should not grow with the
file. This writes a canonical JSONL file of at least ``--gigabytes`` (Chinese
and English rows, one broken row in every 10,000) to a temp directory, runs
each command in its own subprocess, and reads that child's peak RSS from
``os.wait4`` (Linux ``ru_maxrss``, KiB). Importing the CLI and loading every
plugin (which imports torch) is measured the same way, as the floor.

    python benchmarks/data_memory.py --gigabytes 1.0

Prints one JSON object; the generated files are deleted unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROW_ZH = {"query": "长江有多长？第{i}问", "pos": ["长江是中国最长的河流，全长约六千三百公里，流经十一个省级行政区。" * 2],
          "neg": ["黄河是中国第二长河，发源于青藏高原巴颜喀拉山脉。", "北京是中华人民共和国的首都。"],
          "pos_scores": [0.93], "neg_scores": [0.12, 0.05]}
ROW_EN = {"query": "how long is the yangtze river? #{i}",
          "pos": ["The Yangtze is the longest river in Asia and the third-longest in the world, about 6,300 km."],
          "neg": ["The Yellow River is the second-longest river in China.", "Beijing is the capital of China."]}
BROKEN = '{"query": "", "pos": ["an empty query is a broken row"]}'


def generate(path: Path, target_bytes: int) -> tuple[int, int]:
    """Write rows until the file holds ``target_bytes``; returns (rows, broken rows)."""
    zh = json.dumps(ROW_ZH, ensure_ascii=False)
    en = json.dumps(ROW_EN, ensure_ascii=False)
    rows = broken = written = 0
    with path.open("w", encoding="utf-8") as fh:
        while written < target_bytes:
            block = []
            for _ in range(10_000):
                block.append((zh if rows % 2 else en).replace("{i}", str(rows)))
                rows += 1
            block[-1] = BROKEN
            broken += 1
            text = "\n".join(block) + "\n"
            fh.write(text)
            written += len(text.encode("utf-8"))
    return rows, broken


def peak_rss(args: list[str]) -> dict:
    """Run ``args``; its exit status, wall seconds and peak RSS in MiB."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout = proc.stdout.read()
    proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit": proc.returncode, "seconds": round(time.perf_counter() - start, 1),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "stdout": stdout.decode()[-400:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bgekit-data-memory-", dir=args.dir))
    src, out = work / "big.jsonl", work / "converted.jsonl"
    try:
        t = time.perf_counter()
        rows, broken = generate(src, int(args.gigabytes * 1e9))
        result = {"file_bytes": src.stat().st_size, "rows": rows, "broken_rows": broken,
                  "generate_seconds": round(time.perf_counter() - t, 1)}
        cli = [sys.executable, "-m", "bgekit.cli"]
        floor = "import bgekit.cli; from bgekit.plugins import get_registry; get_registry()"
        result["import_only"] = peak_rss([sys.executable, "-c", floor])
        result["validate"] = peak_rss(cli + ["data", "validate", str(src), "--json"])
        result["convert"] = peak_rss(cli + ["data", "convert", str(src), str(out)])
        result["converted_bytes"] = out.stat().st_size if out.exists() else None
        result["import_only"].pop("stdout")
        print(json.dumps(result, indent=2))
    finally:
        if not args.keep:
            for p in work.iterdir():
                p.unlink()
            work.rmdir()


if __name__ == "__main__":
    main()
