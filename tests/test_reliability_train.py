"""Issue 11, the training side: kills, NaN, full disks, signals, locks and corrupt checkpoints.

Each test names the defect number of the issue it guards. The long kill -9
harness is ``benchmarks/reliability.py``; these are its fast, targeted cases.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

import bgekit
from bgekit.cli import main
from bgekit.errors import BgekitError
from bgekit.train import checkpoint as ckpt
from bgekit.train import task_skeleton
from bgekit.train.failures import ERRORS_FILE, truncate_jsonl_after
from bgekit.train.output_lock import LOCK_FILE, locked_output_dir
from bgekit.train.gradcache import EmbedderChunks

from test_trainer import model_dir, recipe, run, toy_rows, weights, write_data  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parent.parent


def assert_same_weights(a_dir: Path, b_dir: Path) -> None:
    a, b = weights(a_dir), weights(b_dir)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


def no_temps(out: Path) -> bool:
    return not [p for p in out.iterdir() if ckpt.TEMP_MARK in p.name]


class FakeModel:
    def save_pretrained(self, directory):
        Path(directory).mkdir(parents=True)
        (Path(directory) / "model.safetensors").write_bytes(b"w" * 64)


def fake_checkpoints(root: Path, *steps: int) -> None:
    for step in steps:
        ckpt.save_checkpoint(root, step, model=FakeModel(), trainer_state={"step": step}, save_total_limit=0)


# -- 1: a kill during the final save ---------------------------------------------------------------

def test_1_a_run_killed_while_saving_its_final_model_ends_with_model_on_rerun(tmp_path, model_dir, bgekit_pm,
                                                                             monkeypatch):
    data = write_data(tmp_path, toy_rows(16))
    straight = run(recipe(tmp_path, model_dir, data, out="straight", max_steps=4, save_steps=2))
    real_write = task_skeleton.write_model

    def killed_in_final_save(model, rec, folder):
        if Path(folder).name.startswith("model" + ckpt.TEMP_MARK):
            real_write(model, rec, folder)  # the files are written, the rename never happens
            raise KeyboardInterrupt("killed while saving model/")
        real_write(model, rec, folder)

    monkeypatch.setattr(task_skeleton, "write_model", killed_in_final_save)
    with pytest.raises(KeyboardInterrupt):
        run(recipe(tmp_path, model_dir, data, out="k", max_steps=4, save_steps=2, resume_from="latest"))
    monkeypatch.setattr(task_skeleton, "write_model", real_write)
    out = tmp_path / "k"
    assert not (out / "model").exists() and (out / "checkpoint-4").is_dir()
    for _ in range(2):  # a restart loop: every re-run ends with model/, from the last checkpoint's weights
        again = run(recipe(tmp_path, model_dir, data, out="k", max_steps=4, save_steps=2, resume_from="latest"))
        assert again["steps"] == 4
        assert_same_weights(Path(straight["model_dir"]), out / "model")
        assert no_temps(out)


# -- 5: pruning only deletes checkpoints bgekit wrote ---------------------------------------------

def test_5_pruning_never_deletes_a_users_checkpoint_folder(tmp_path, model_dir, bgekit_pm):
    out = tmp_path / "out"
    for name in ("checkpoint-0", "checkpoint-9"):  # older and newer than what the run writes
        (out / name).mkdir(parents=True)
        (out / name / "notes.txt").write_text("mine")
    result = run(recipe(tmp_path, model_dir, write_data(tmp_path, toy_rows(16)), out="out", max_steps=4,
                        save_steps=1, save_total_limit=1, resume_from="latest"))
    assert result["steps"] == 4
    assert (out / "checkpoint-0" / "notes.txt").read_text() == "mine"
    assert (out / "checkpoint-9" / "notes.txt").read_text() == "mine"
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["checkpoint-4"]


def test_5_a_users_folder_where_a_checkpoint_goes_stops_the_run_before_training(tmp_path, model_dir, bgekit_pm):
    out = tmp_path / "out"
    (out / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoint-2" / "notes.txt").write_text("mine")
    with pytest.raises(BgekitError, match="not written by bgekit"):
        run(recipe(tmp_path, model_dir, write_data(tmp_path, toy_rows(16)), out="out", max_steps=4, save_steps=2))
    assert (out / "checkpoint-2" / "notes.txt").read_text() == "mine"
    assert not (out / "metrics.jsonl").exists() or '"event": "train"' not in (out / "metrics.jsonl").read_text()


# -- 7: resuming unpickles nothing ------------------------------------------------------------------

class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_7_a_crafted_trainer_state_is_not_run(tmp_path, model_dir, bgekit_pm):
    data = write_data(tmp_path, toy_rows(16))
    run(recipe(tmp_path, model_dir, data, out="out", max_steps=2, save_steps=1, save_total_limit=3))
    target = tmp_path / "out" / "checkpoint-1"
    marker = tmp_path / "pwned"
    torch.save({"step": 1, "evil": Payload(marker)}, target / ckpt.STATE_FILE)
    ckpt.write_manifest(target, 1)  # a consistent manifest: only the loader stands in the way
    with pytest.raises(BgekitError, match="never unpickles"):
        run(recipe(tmp_path, model_dir, data, out="out", max_steps=2, resume_from=str(target)))
    assert not marker.exists()


def test_7_state_files_load_with_weights_only(tmp_path):
    fake_checkpoints(tmp_path, 1)
    with open(tmp_path / "checkpoint-1" / ckpt.rng_file(0), "rb") as handle:
        torch.load(handle, weights_only=True)  # raises if anything in it needs pickle


# -- 8: disk faults and corrupt checkpoints ---------------------------------------------------------

def test_8_a_full_disk_is_one_line_and_loses_nothing(tmp_path, model_dir, bgekit_pm, monkeypatch):
    real = ckpt._torch_save

    def full_after_first(obj, path):
        if "checkpoint-2" in str(path):
            Path(path).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(obj, path)

    monkeypatch.setattr(ckpt, "_torch_save", full_after_first)
    out = tmp_path / "out"
    with pytest.raises(BgekitError) as info:
        run(recipe(tmp_path, model_dir, write_data(tmp_path, toy_rows(16)), out="out", max_steps=4, save_steps=1))
    message = str(info.value)
    assert "\n" not in message and "disk is full" in message and "checkpoint-2" in message
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["checkpoint-1"]
    assert ckpt.verify_checkpoint(out / "checkpoint-1") is None
    assert no_temps(out)


def corrupt(folder: Path, how: str) -> None:
    if how == "empty-state":
        (folder / ckpt.STATE_FILE).write_bytes(b"")
    elif how == "truncated-weights":
        weights_file = folder / ckpt.MODEL_DIR / "model.safetensors"
        weights_file.write_bytes(weights_file.read_bytes()[:10])
    elif how == "missing-rng":
        (folder / ckpt.rng_file(0)).unlink()
    elif how == "no-manifest":
        (folder / ckpt.MANIFEST_FILE).unlink()


@pytest.mark.parametrize("how", ["empty-state", "truncated-weights", "missing-rng", "no-manifest"])
def test_8_latest_falls_back_from_a_corrupt_checkpoint_and_a_named_one_is_refused(tmp_path, how):
    fake_checkpoints(tmp_path, 2, 4)
    corrupt(tmp_path / "checkpoint-4", how)
    (tmp_path / "checkpoint-6").mkdir()  # empty and newer: never chosen
    warnings: list[str] = []
    assert ckpt.resolve_resume("latest", tmp_path, warn=warnings.append) == tmp_path / "checkpoint-2"
    assert len(warnings) == (0 if how == "no-manifest" else 1)
    with pytest.raises(BgekitError, match="cannot resume from") as info:
        ckpt.resolve_resume(str(tmp_path / "checkpoint-4"), tmp_path)
    assert "\n" not in str(info.value)


def test_8_a_verified_checkpoint_whose_model_does_not_load_is_one_line(tmp_path, model_dir, bgekit_pm):
    data = write_data(tmp_path, toy_rows(16))
    run(recipe(tmp_path, model_dir, data, out="out", max_steps=2, save_steps=1, save_total_limit=3))
    target = tmp_path / "out" / "checkpoint-1"
    (target / ckpt.MODEL_DIR / "config.json").write_text("{not json")
    ckpt.write_manifest(target, 1)
    with pytest.raises(BgekitError, match="cannot load the model of") as info:
        run(recipe(tmp_path, model_dir, data, out="out", max_steps=2, resume_from=str(target)))
    assert "\n" not in str(info.value)


def write_recipe_file(tmp_path: Path, r) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(r.values), encoding="utf-8")
    return path


def bgekit_command() -> list[str]:
    script = Path(sys.executable).parent / "bgekit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bgekit.cli"]


def test_8_a_file_size_limit_is_one_line_not_a_crash(tmp_path, model_dir):
    out = tmp_path / "out"
    path = write_recipe_file(tmp_path, recipe(tmp_path, model_dir, write_data(tmp_path, toy_rows(16)),
                                              out="out", max_steps=2))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))  # the recipe fits, the weights do not

    done = subprocess.run([*bgekit_command(), "run", str(path)], capture_output=True, text=True, timeout=300,
                          preexec_fn=limit, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 1, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "File too large" in errors[0] and "ulimit -f" in errors[0]
    assert "Traceback" not in done.stderr
    assert no_temps(out) and not (out / "model").exists()


def test_8_a_read_only_output_dir_is_one_line(tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    result = CliRunner().invoke(main, ["run", str(REPO / "recipes" / "quickstart.yaml"),
                                       f"output_dir={tmp_path / 'ro'}"])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and "not writable" in result.output


# -- 9: one run per output folder -------------------------------------------------------------------

@pytest.mark.parametrize("shipped", ["quickstart", "reranker", "joint", "m3-mined"])
def test_9_a_second_run_on_a_locked_output_dir_says_who_holds_it(tmp_path, shipped, monkeypatch):
    # the shipped recipes name data files that exist only on a user's machine: skip the input preflight
    # (tested in test_reliability_input.py) so the run reaches the lock
    monkeypatch.setattr("bgekit.commands.run.check_recipe", lambda recipe: None)
    out = tmp_path / "busy"
    with locked_output_dir(out):
        result = CliRunner().invoke(main, ["run", str(REPO / "recipes" / f"{shipped}.yaml"), f"output_dir={out}"])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1
    assert "in use by another bgekit run" in result.output and f"pid {os.getpid()}" in result.output
    assert not (out / "resolved_recipe.yaml").exists()


def test_9_the_lock_is_held_across_processes_and_a_dead_holders_lock_does_not_block(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from bgekit.train.output_lock import "
                               f"locked_output_dir as l\nwith l({str(out)!r}):\n print('held', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BgekitError, match=f"pid {holder.pid} on"):
            with locked_output_dir(out):
                pass
    finally:
        holder.kill()  # like kill -9: the file may stay, the kernel drops the lock
        holder.wait()
    (out / LOCK_FILE).write_text(json.dumps({"pid": holder.pid, "host": "x", "started": "then"}))
    with locked_output_dir(out):
        assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()


# -- 10: non-finite loss or gradient norm --------------------------------------------------------------

def test_10_a_nan_batch_is_skipped_counted_and_logged_with_its_rows(tmp_path, model_dir, bgekit_pm, monkeypatch):
    real = EmbedderChunks.plain_loss

    def nan_at_step_2(self, wrapped, batch, step):
        loss, parts = real(self, wrapped, batch, step)
        return (loss * float("nan"), parts) if step == 2 and not getattr(self, "_poisoned", False) \
            else (loss, parts)

    def once(self, wrapped, batch, step):
        out = nan_at_step_2(self, wrapped, batch, step)
        if step == 2:
            self._poisoned = True
        return out

    monkeypatch.setattr(EmbedderChunks, "plain_loss", once)
    out = tmp_path / "out"
    result = run(recipe(tmp_path, model_dir, write_data(tmp_path, toy_rows(24)), out="out", max_steps=4))
    assert result["steps"] == 4
    assert all(torch.isfinite(w).all() for w in weights(out / "model").values())
    lines = [json.loads(x) for x in (out / ERRORS_FILE).read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["step"] == 3 and lines[0]["reason"] == "non-finite loss"
    rows = [e["line"] for e in lines[0]["examples"]]
    assert len(rows) == 4 and all(1 <= r <= 24 for r in rows)
    train_steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()
                   if json.loads(x)["event"] == "train"]
    assert train_steps == [1, 2, 3, 4]


def test_10_a_diverging_run_stops_with_an_error_and_never_saves_nan(tmp_path, model_dir, bgekit_pm):
    out = tmp_path / "out"
    try:
        run(recipe(tmp_path, model_dir, write_data(tmp_path, toy_rows(32)), out="out", max_steps=12,
                   learning_rate=1e6, save_steps=2, save_total_limit=2, max_failed_batches=2))
    except BgekitError as exc:
        assert "max_failed_batches" in str(exc) and "\n" not in str(exc)
    for folder in [out / "model", *ckpt.list_checkpoints(out)]:
        if folder.exists():
            model_weights = folder / "model.safetensors" if folder.name == "model" else \
                folder / ckpt.MODEL_DIR / "model.safetensors"
            assert all(torch.isfinite(w).all() for w in weights(model_weights.parent).values()), folder


def test_10_max_failed_batches_stops_the_run(tmp_path, model_dir, bgekit_pm, monkeypatch):
    real = EmbedderChunks.plain_loss
    monkeypatch.setattr(EmbedderChunks, "plain_loss",
                        lambda self, w, b, s: (lambda out: (out[0] * float("inf"), out[1]))(real(self, w, b, s)))
    out = tmp_path / "out"
    with pytest.raises(BgekitError, match="train.max_failed_batches is 2"):
        run(recipe(tmp_path, model_dir, write_data(tmp_path, toy_rows(16)), out="out", max_steps=4,
                   max_failed_batches=2))
    assert len((out / ERRORS_FILE).read_text().splitlines()) == 3
    assert not (out / "model").exists()


# -- 12: SIGTERM / SIGINT at a step boundary ----------------------------------------------------------

def wait_for_step(out: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        log = out / "metrics.jsonl"
        if log.is_file() and '"event": "train"' in log.read_text():
            return
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    raise AssertionError("the run logged no step")


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_12_a_signal_saves_a_checkpoint_and_the_rerun_continues_exactly(tmp_path, model_dir, bgekit_pm,
                                                                        signum, code):
    data = write_data(tmp_path, toy_rows(16))
    out = tmp_path / "out"
    r = recipe(tmp_path, model_dir, data, out="out", max_steps=60, save_steps=0, resume_from="latest")
    path = write_recipe_file(tmp_path, r)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*bgekit_command(), "run", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    wait_for_step(out, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err and "re-run the same command" in err
    saved = ckpt.list_checkpoints(out)
    assert len(saved) == 1 and ckpt.verify_checkpoint(saved[0]) is None
    stopped_at = ckpt.checkpoint_step(saved[0])
    assert 0 < stopped_at < 60
    if signum == signal.SIGINT:
        return  # the exactness of the re-run is the SIGTERM case's
    done = subprocess.run([*bgekit_command(), "run", str(path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    straight = run(recipe(tmp_path, model_dir, data, out="straight", max_steps=60, save_steps=0))
    assert_same_weights(Path(straight["model_dir"]), out / "model")
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["event"] == "train"]
    assert steps == list(range(1, 61))


# -- 13 and 6 -----------------------------------------------------------------------------------------

def test_13_truncating_a_log_keeps_earlier_steps_and_drops_a_cut_line(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps({"event": "train", "step": s}) + "\n" for s in (1, 2, 3, 4)) + '{"event": "tr')
    truncate_jsonl_after(log, 2)
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == [1, 2]


def test_6_a_failed_run_leaves_no_resolved_recipe(tmp_path, model_dir):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out = tmp_path / "out"
    path = write_recipe_file(tmp_path, recipe(tmp_path, model_dir, empty, out="out"))
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 1 and result.output.startswith("error:") and result.output.count("\n") == 1
    assert not out.exists()
