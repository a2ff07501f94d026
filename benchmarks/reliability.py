"""kill -9 at random moments of a small training run, then re-run the same command until it finishes.

Builds a tiny encoder (:func:`bgekit.testing.tiny_encoder`, no download) and a
toy training set, trains it once without interruption (the reference), then
runs trials. Each trial starts ``bgekit run recipe.yaml`` (``save_steps`` small,
``resume_from: latest``), kills it with SIGKILL at one moment, and re-runs
the very same command until it exits 0. The moments:

- ``loading``: a random time before the first step (imports, data, model);
- ``mid-step``: a random time during the training steps (timed from the first
  logged step, over as long as the reference run's steps took);
- ``checkpoint-model`` / ``checkpoint-manifest``: inside the n-th checkpoint
  write (after its model, after its manifest, before the rename);
- ``prune``: inside the n-th pruning of an old checkpoint;
- ``final-model``: inside the final ``model/`` save.

The last four use bgekit's test hook ``BGEKIT_FAULT_AT=<phase>:<n>`` (set only
for the killed attempt; re-runs run clean). A trial passes when it ends with
``model/``, weights equal to the reference (max abs diff <= 1e-6), no temp
folder left and no duplicated line in ``metrics.jsonl``. Prints a table and a
summary; exits 1 when a trial fails.

    python benchmarks/reliability.py --trials 24            # ~25 min on 2 busy CPU cores
    python benchmarks/reliability.py --trials 6 --phases mid-step,prune
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PHASES = ["loading", "mid-step", "checkpoint-model", "checkpoint-manifest", "prune", "final-model"]
TOPICS = ["river", "capital", "Beijing", "Yangtze", "Dream", "Machine", "retrieval", "computers"]
MAX_RERUNS = 5


def toy_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        others = [t for t in TOPICS if t != topic]
        rows.append({"query": f"what about the {topic} {i}?", "pos": [f"the {topic} is described here, part {i}"],
                     "neg": [f"the {others[(i + k) % len(others)]} is described here" for k in range(3)]})
    return rows


def bgekit_command() -> list[str]:
    script = Path(sys.executable).parent / "bgekit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bgekit.cli"]


def setup(work: Path, steps: int, save_steps: int) -> Path:
    from bgekit.testing import tiny_encoder

    model = tiny_encoder(work / "tiny", hidden_size=32, num_layers=2)  # with dropout: RNG must resume exactly
    data = work / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in toy_rows(40)), encoding="utf-8")
    recipe = {
        "task": "embedder", "output_dir": str(work / "reference"), "seed": 7,
        "model": {"name_or_path": str(model), "heads": [{"name": "dense"}], "query_max_length": 16,
                  "passage_max_length": 24},
        "data": {"train": str(data), "group_size": 4},
        "loss": {"name": "infonce", "temperature": 0.05},
        "train": {"max_steps": steps, "batch_size": 4, "learning_rate": 2e-3, "warmup_ratio": 0.0,
                  "logging_steps": 1, "dtype": "fp32", "save_steps": save_steps, "save_total_limit": 2,
                  "resume_from": "latest"},
    }
    path = work / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def start(recipe: Path, out: Path, fault: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("BGEKIT_FAULT_AT", None)
    if fault:
        env["BGEKIT_FAULT_AT"] = fault
    return subprocess.Popen([*bgekit_command(), "run", str(recipe), f"output_dir={out}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def steps_logged(out: Path) -> int:
    log = out / "metrics.jsonl"
    return log.read_text(encoding="utf-8", errors="replace").count('"event": "train"') if log.is_file() else 0


def reference_run(recipe: Path, out: Path, steps: int) -> tuple[float, float, float]:
    """(seconds to the first logged step, to the last, in all) of an uninterrupted run."""
    began = time.perf_counter()
    proc = start(recipe, out)
    first = last = None
    while proc.poll() is None:
        logged = steps_logged(out)
        if first is None and logged:
            first = time.perf_counter() - began
        if last is None and logged >= steps:
            last = time.perf_counter() - began
        time.sleep(0.01)
    if proc.returncode != 0:
        raise SystemExit(f"the reference run failed:\n{proc.stderr.read()[-3000:]}")
    total = time.perf_counter() - began
    return first or 0.0, last or total, total


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def check(out: Path, reference: dict, steps: int) -> dict:
    result: dict = {"model": (out / "model" / "model.safetensors").is_file()}
    if result["model"]:
        mine = weights(out / "model")
        result["max_diff"] = max(float((mine[k] - reference[k]).abs().max()) for k in reference) \
            if mine.keys() == reference.keys() else float("inf")
    else:
        result["max_diff"] = float("inf")
    result["temps"] = sorted(p.name for p in out.iterdir() if ".tmp-" in p.name or p.name.endswith(".partial"))
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    keys = [(x["event"], x["step"]) for x in lines if x["event"] in ("train", "checkpoint", "evaluate")]
    result["duplicates"] = sum(n - 1 for n in collections.Counter(keys).values() if n > 1)
    train_steps = [x["step"] for x in lines if x["event"] == "train"]
    result["steps_logged"] = train_steps == list(range(1, steps + 1))
    result["ok"] = (result["model"] and result["max_diff"] <= 1e-6 and not result["temps"]
                    and result["duplicates"] == 0 and result["steps_logged"])
    return result


def trial(recipe: Path, out: Path, phase: str, rng: random.Random, first: float, last: float,
          steps: int, save_steps: int) -> dict:
    fault = None
    checkpoints = steps // save_steps - (1 if steps % save_steps == 0 else 0)  # the loop's; the last is final
    if phase == "checkpoint-model" or phase == "checkpoint-manifest":
        fault = f"{phase}:{rng.randint(1, checkpoints + 1)}"
    elif phase == "prune":
        fault = f"prune:{rng.randint(1, max(1, checkpoints - 1))}"
    elif phase == "final-model":
        fault = "final-model"
    proc = start(recipe, out, fault)
    where = fault or ""
    if phase == "loading":
        delay = rng.uniform(0.3, max(0.4, first * 0.9))
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        where = f"t={delay:.1f}s"
    elif phase == "mid-step":  # load times vary with the machine: start the clock at the first logged step
        while proc.poll() is None and not steps_logged(out):
            time.sleep(0.01)
        delay = rng.uniform(0.0, max(0.1, last - first))  # the training part of the reference run
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        where = f"after step {steps_logged(out)} (+{delay:.2f}s)"
    proc.wait()
    killed = proc.returncode == -signal.SIGKILL
    if not killed:
        where += f" (exit {proc.returncode})"
    reruns = 0
    while reruns < MAX_RERUNS:
        reruns += 1
        again = start(recipe, out)
        _, err = again.communicate()
        if again.returncode == 0:
            break
        print(f"    re-run {reruns} exited {again.returncode}: {err.strip().splitlines()[-1:]}", flush=True)
    return {"phase": phase, "where": where, "killed": killed, "reruns": reruns}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--save-steps", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated, taken in turn")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="bgekit-reliability-"))
    recipe = setup(work, args.steps, args.save_steps)
    phases = args.phases.split(",")
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(sorted(unknown))}; phases: {', '.join(PHASES)}")
    first, last, total = reference_run(recipe, work / "reference", args.steps)
    reference = weights(work / "reference" / "model")
    print(f"reference run: first step after {first:.1f}s, last step after {last:.1f}s, done in {total:.1f}s "
          f"({args.steps} steps, save_steps {args.save_steps})", flush=True)
    rows = []
    header = f"{'#':>3} {'phase':<20} {'where':<26} {'killed':<6} {'reruns':>6} {'model/':<6} {'max diff':>9} " \
             f"{'temps':>5} {'dup':>3} {'ok':<3}"
    print(header, flush=True)
    for i in range(args.trials):
        phase = phases[i % len(phases)]
        out = work / f"trial-{i:02d}"
        info = trial(recipe, out, phase, rng, first, last, args.steps, args.save_steps)
        info.update(check(out, reference, args.steps))
        rows.append(info)
        print(f"{i:>3} {phase:<20} {info['where']:<26} {str(info['killed']):<6} {info['reruns']:>6} "
              f"{str(info['model']):<6} {info['max_diff']:>9.2e} {len(info['temps']):>5} {info['duplicates']:>3} "
              f"{'yes' if info['ok'] else 'NO':<3}", flush=True)
    passed = sum(r["ok"] for r in rows)
    killed = sum(r["killed"] for r in rows)
    print(f"\n{passed}/{len(rows)} trials passed; {killed} were killed by SIGKILL (the others finished before "
          f"their kill time); re-runs needed: {dict(sorted(collections.Counter(r['reruns'] for r in rows).items()))}; "
          f"max weight diff {max(r['max_diff'] for r in rows):.2e}; temp folders left "
          f"{sum(len(r['temps']) for r in rows)}; duplicated log lines {sum(r['duplicates'] for r in rows)}")
    by_phase = collections.defaultdict(lambda: [0, 0])
    for r in rows:
        by_phase[r["phase"]][0] += r["ok"]
        by_phase[r["phase"]][1] += 1
    print("by phase: " + ", ".join(f"{p} {ok}/{n}" for p, (ok, n) in by_phase.items()))
    if args.keep:
        print(f"work folder: {work}")
    else:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if passed == len(rows) else 1)


if __name__ == "__main__":
    main()
