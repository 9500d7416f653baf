"""Runs a user can trust, driven as a user drives them: ``ctde`` in a child process.

Nothing lost (a diverging run, two runs in one folder, Ctrl-C and SIGTERM, resume,
several checkpoints, file modes), no tracebacks, and settings and progress a person
can find.
"""

import csv
import glob
import os
import signal
import stat
import struct
import subprocess
import sys

import jax
import numpy as np
import pytest

CTDE = [sys.executable, "-m", "ctde.cli"]
TINY = ["--num-envs", "8", "--rollout-steps", "10"]  # identity: 80 env steps per update
TIMING = ("wall_s", "steps_per_s")


def child_env(pythonpath=None) -> dict:
    env = dict(os.environ)  # with conftest.py's compilation cache
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    return env


def ctde(*args, cwd=None, umask=None, pythonpath=None):
    command = [*CTDE, *map(str, args)]
    env = child_env(pythonpath)
    if umask is not None:  # the user's umask, set in a shell as a user would
        command = ["bash", "-c", f"umask {umask:03o} && exec \"$@\"", "ctde", *command]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def rows(out):
    with open(os.path.join(out, "metrics.csv"), newline="") as f:
        return list(csv.DictReader(f))


def without_timing(table):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in table]


def checkpoints(out):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(out, "checkpoints", "*")))


def one_line(done):
    """The last stderr line, after checking the command printed no traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip().splitlines()[-1]


def tensorboard_points(out):
    """(tag, step) of every scalar in the run's event files (TFRecord of Event protos)."""
    from tensorboardX.proto.event_pb2 import Event

    points = []
    for path in glob.glob(os.path.join(out, "tb", "*")):
        with open(path, "rb") as f:
            data = f.read()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = Event.FromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            points += [(v.tag, event.step) for v in event.summary.value]
    return points


FIXTURES = os.path.dirname(os.path.abspath(__file__))  # run_fixtures.py: a PettingZoo env


def test_a_diverging_run_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path):
    # Rewards turn NaN after each env's 60th step: inside the second point of 400 steps
    # (8 envs x 50 steps), so the first point is good and saved, the second is not.
    pytest.importorskip("pettingzoo")
    out = str(tmp_path / "nan")
    done = ctde("train", "mappo", "pettingzoo:run_fixtures", "--env.nan_after", 60, "--steps", 4000,
                "--log-every", 400, *TINY, "--eval-episodes", 0, "--checkpoint-every", 0,
                "--no-progress", "--out", out, pythonpath=FIXTURES)
    assert done.returncode == 3, done.stderr
    line = one_line(done)
    assert line.startswith("ctde: error: training diverged at env step 800, seed 0: "), line
    assert "loss " in line and " is nan" in line, line
    assert "the last good checkpoint, after 400 env steps, is kept" in line, line
    assert checkpoints(out) == ["step-000000000400.msgpack"]
    assert [int(r["env_steps"]) for r in rows(out)] == [400]  # the bad point is not logged
    from ctde.run import runner

    _, _, _, state, counters = runner.load_learner(out)
    assert counters["env_steps"] == 400
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))
    # a run through the PettingZoo bridge cannot be rendered from saved states: one line
    done = ctde("render", out, "--out", tmp_path / "x.gif", pythonpath=FIXTURES)
    assert done.returncode == 2 and "cannot be rendered" in one_line(done), done.stderr


def wait_for(process, prefix):
    """Read the child's stdout until a line starting with ``prefix``; the lines read."""
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError(f"no line {prefix!r} in: {''.join(seen)}")


def test_a_second_run_into_a_busy_folder_is_refused_and_a_killed_run_leaves_no_lock(tmp_path):
    out = str(tmp_path / "busy")
    train = [*CTDE, "train", "mappo", "identity", "--steps", "8000", "--log-every", "80", *TINY,
             "--eval-episodes", "0", "--out", out]
    first = subprocess.Popen(train, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env=child_env())
    try:
        wait_for(first, "  80/")  # the first point is logged and saved
        first.send_signal(signal.SIGSTOP)  # holds the folder, however long the next takes
        config = open(os.path.join(out, "config.yaml"), "rb").read()
        for args in (["train", "mappo", "identity", "--steps", "400", "--out", out],
                     ["train", "--resume", out]):
            second = ctde(*args, "--no-progress")
            assert second.returncode == 2, second.stdout + second.stderr
            assert "is in use by another ctde run" in one_line(second)
        assert open(os.path.join(out, "config.yaml"), "rb").read() == config
    finally:
        first.kill()  # SIGKILL: no handler runs, the kernel drops the lock
        first.wait()
    resumed = ctde("train", "--resume", out, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert int(rows(out)[-1]["env_steps"]) == 8000


SPREAD = ["train", "mappo", "simple_spread", "--steps", "4000", "--log-every", "20",
          "--num-envs", "4", "--rollout-steps", "5", "--num-minibatches", "1",
          "--eval-episodes", "2", "--checkpoint-every", "3600"]  # 200 points, saved first and last


# A shell starts a script's background job with SIGINT ignored; this launcher does the same.
IGNORING_SIGINT = [sys.executable, "-c", "import os, signal, sys; "
                   "signal.signal(signal.SIGINT, signal.SIG_IGN); "
                   "os.execv(sys.executable, [sys.executable, '-m', 'ctde.cli', *sys.argv[1:]])"]


def interrupted(out, after_line, signals=(signal.SIGINT,), launcher=CTDE):
    """Start the spread run, send ``signals`` once ``after_line`` is read; (code, stderr)."""
    child = subprocess.Popen([*launcher, *SPREAD, "--out", out], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=child_env())
    wait_for(child, after_line)
    for sig in signals:
        child.send_signal(sig)
    _, err = child.communicate(timeout=600)
    return child.returncode, err


def test_interrupts_save_what_was_done_and_resume_equals_an_uninterrupted_run(tmp_path):
    # Ctrl-C while compiling: nothing to resume, said so, and the same command starts afresh.
    whole = str(tmp_path / "whole")
    code, err = interrupted(whole, "training mappo")
    assert code == 130, err
    assert "nothing to resume" in err and "--resume" not in err, err
    assert checkpoints(whole) == []
    done = ctde(*SPREAD, "--out", whole, "--no-progress")
    assert done.returncode == 0, done.stderr
    reference = without_timing(rows(whole))
    assert len(reference) == 200

    # SIGTERM to a run that ignores SIGINT (a background job): the SIGINT sent first is not
    # taken for a first interrupt (which would make the SIGTERM stop it at once, code 130).
    for name, line, signals, launcher in (
            ("int", "  60/", [signal.SIGINT], CTDE),
            ("term", "  1,000/", [signal.SIGINT, signal.SIGTERM], IGNORING_SIGINT)):
        out = str(tmp_path / name)
        code, err = interrupted(out, line, signals, launcher)
        assert code == 128 + signals[-1], err
        hint = err.strip().splitlines()[-1]
        assert "carry on from env step " in hint and f"ctde train --resume {out}" in hint, err
        at = int(hint.split("env step ")[1].split(" ")[0].replace(",", ""))
        # the checkpoint holds everything metrics.csv shows: nothing is redone or lost
        assert checkpoints(out)[-1] == f"step-{at:012d}.msgpack"
        assert int(rows(out)[-1]["env_steps"]) == at < 4000
        resumed = ctde("train", "--resume", out, "--no-progress")
        assert resumed.returncode == 0, resumed.stderr
        # every column, the evaluation's included, as if never interrupted
        assert without_timing(rows(out)) == reference
        points = tensorboard_points(out)
        assert len(points) == len(set(points))  # no point twice after the resume
        assert sorted({s for t, s in points if t == "value_loss"}) == \
            sorted({int(r["env_steps"]) for r in reference})


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """A run trained under umask 022 keeping two checkpoints of its three points."""
    out = str(tmp_path_factory.mktemp("kept") / "run")
    done = ctde("train", "mappo", "simple_spread", "--steps", 250, "--log-every", 100,
                "--num-envs", 4, "--rollout-steps", 5, "--num-minibatches", 1,
                "--eval-episodes", 2, "--keep-checkpoints", 2, "--checkpoint-every", 0,
                "--no-progress", "--out", out, umask=0o022)
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def test_the_budget_is_overshot_by_less_than_one_update_and_the_count_is_said(kept):
    out, stdout = kept
    # 250 steps of 20-step updates: 13 updates (260 steps) in points of 5, 5 and 3
    assert "260 env steps per seed (13 updates of 20, logged every 100)" in stdout, stdout
    assert [int(r["env_steps"]) for r in rows(out)] == [100, 200, 260]
    assert "done: 260 env steps" in stdout and " s from start" in stdout, stdout


@pytest.mark.filterwarnings("ignore:os.fork")  # imageio starts ffmpeg to read the MP4 back
def test_the_last_checkpoints_are_kept_and_eval_and_render_take_one(kept, tmp_path):
    out, _ = kept
    assert checkpoints(out) == ["step-000000000200.msgpack", "step-000000000260.msgpack"]
    done = ctde("eval", out, "--episodes", 2, "--checkpoint", 200)
    assert done.returncode == 0, done.stderr
    assert "after 200 env steps" in done.stdout
    mp4 = str(tmp_path / "older.mp4")  # MP4, as the help offers
    done = ctde("render", out, "--checkpoint", 200, "--out", mp4)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    import imageio.v3 as iio

    frames = iio.imread(mp4)
    assert frames.shape[1:] == (400, 400, 3) and len(frames) == 26 and frames.std() > 5
    done = ctde("eval", out, "--checkpoint", 100)
    assert done.returncode == 2
    assert "no checkpoint after 100 env steps" in one_line(done) and "200, 260" in one_line(done)


def test_run_files_get_the_users_umask(kept, tmp_path):
    out, _ = kept
    curve = os.path.join(out, "curve.png")
    assert ctde("plot", out, "--out", curve, umask=0o022).returncode == 0
    paths = [os.path.join(out, n) for n in ("metrics.csv", "config.yaml", "curve.png")]
    paths += glob.glob(os.path.join(out, "checkpoints", "*"))
    for path in paths:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path


def test_non_positive_counts_are_refused(kept):
    out, _ = kept
    for args in (["eval", out, "--episodes", 0], ["render", out, "--out", "x.gif", "--episodes", 0],
                 ["render", out, "--out", "x.gif", "--fps", 0]):
        done = ctde(*args)
        assert done.returncode == 2, done.stdout
        assert "must be positive, got 0" in one_line(done)
        assert "nan" not in done.stdout


def test_with_constant_learning_rates_a_run_is_the_start_of_a_longer_one(kept, tmp_path):
    """What a sweep at part of a grid's budget relies on (mappo_ablations_MMM_epochs_1M.yaml):
    with constant learning rates nothing depends on the budget, so a run with twice the
    budget passes through the same points; with annealed ones (``kept``) it does not."""
    args = ["--log-every", 100, "--num-envs", 4, "--rollout-steps", 5, "--num-minibatches", 1,
            "--eval-episodes", 2, "--no-progress"]
    curves = {}
    for anneal, steps in (("false", 250), ("false", 500), ("true", 500)):
        out = str(tmp_path / f"{anneal}-{steps}")
        done = ctde("train", "mappo", "simple_spread", "--steps", steps, "--anneal-lr", anneal,
                    *args, "--out", out)
        assert done.returncode == 0, done.stderr
        curves[anneal, steps] = without_timing(rows(out))
    assert [int(r["env_steps"]) for r in curves["false", 500]] == [100, 200, 300, 400, 500]
    assert curves["false", 500][:2] == curves["false", 250][:2]
    annealed_250 = without_timing(rows(kept[0]))
    assert curves["true", 500][0]["env_steps"] == annealed_250[0]["env_steps"] == "100"
    assert curves["true", 500][0] != annealed_250[0]


def test_resume_takes_no_settings(kept):
    out, _ = kept
    done = ctde("train", "--resume", out, "--steps", "2e5")
    assert done.returncode == 2
    assert "--resume carries on the run as it was saved and takes no settings (--steps)" in one_line(done)


def test_settings_and_env_parameters_are_listed_with_defaults_and_meanings(tmp_path):
    done = ctde("algos", "mappo")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    clip = next(line for line in lines if line.startswith("--clip-eps "))
    assert clip.split()[:3] == ["--clip-eps", "float", "0.2"] and "policy ratio clip" in clip
    assert any(line.startswith("--checkpoint-every ") and "logging point" in line for line in lines)
    done = ctde("envs", "simple_spread")
    assert done.returncode == 0, done.stderr
    assert any(line.split()[:3] == ["--env.N", "int", "3"] for line in done.stdout.splitlines())
    help_text = ctde("train", "--help").stdout
    assert "--checkpoint-every" in help_text and "--keep-checkpoints" in help_text
    config = tmp_path / "typo.yaml"
    config.write_text("algo: mappo\nenv: identity\nstep: 100\n")
    done = ctde("train", "--config", config, "--out", tmp_path / "never")
    assert done.returncode == 2
    assert "unknown run field 'step'. Did you mean 'steps'?" in one_line(done)
    done = ctde("algos", "mapo")
    assert done.returncode == 2 and "Did you mean 'mappo'?" in one_line(done)


# 120 updates of 1,600 steps (one epoch each) in 3 points; the same program off and on a
# terminal (compiled once)
PROGRESS = ["train", "mappo", "identity", "--steps", 192_000, "--log-every", 64_000, "--num-envs", 64,
            "--rollout-steps", 25, "--num-minibatches", 1, "--num-epochs", 1, "--eval-episodes", 0]


def test_progress_is_a_line_per_point_off_a_terminal_and_a_whole_bar_on_one(tmp_path):
    done = ctde(*PROGRESS, "--out", tmp_path / "log")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if " env-steps/s  ETA " in line]
    assert [line.split()[0] for line in lines] == ["64,000/192,000", "128,000/192,000", "192,000/192,000"]
    assert "return_mean " in lines[0]
    done_line = next(line for line in done.stdout.splitlines() if line.startswith("done: "))
    assert done_line.endswith(", no evaluation"), done_line  # not "eval_return_mean nan"

    import pty

    parent, child = pty.openpty()
    import fcntl
    import termios

    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    command = [*PROGRESS, "--out", tmp_path / "tty"]
    proc = subprocess.Popen([*CTDE, *map(str, command)],
                            stdin=child, stdout=child, stderr=child, close_fds=True, env=child_env())
    os.close(child)
    output = b""
    while True:
        try:
            chunk = os.read(parent, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    proc.wait(timeout=600)
    os.close(parent)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "192000/192000" in text, text  # the final bar keeps the whole count on 80 columns


def test_competitive_env_with_a_shared_policy_says_so_and_reports_each_team(tmp_path):
    done = ctde("train", "mappo", "simple_tag", "--steps", 100, "--seeds", 3,
                "--num-envs", 2, "--rollout-steps", 25, "--num-minibatches", 1,
                "--eval-episodes", 2, "--no-progress", "--out", tmp_path / "tag")
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "one shared policy" in notes[0] and "self-play" in notes[0]
    summary = next(line for line in done.stdout.splitlines() if line.startswith("done: "))
    assert "return_mean " in summary and "(adversary " in summary and ", good " in summary, summary
    rows = list(csv.DictReader(open(tmp_path / "tag" / "metrics.csv")))
    last = [r for r in rows if r["env_steps"] == rows[-1]["env_steps"]]
    for key in ("eval_return_mean_adversary", "eval_return_mean_good"):  # a team mean of 0 is 0, not nan
        mean = np.mean([float(r[key]) for r in last])
        assert f"{key.split('_')[-1]} {mean:.3f}" in summary.split("eval_return_mean")[1], summary
    if (os.cpu_count() or 1) == 2:
        assert "3 seeds do not split evenly over 2 cores, so they ran on 1; 2 or 4 seeds" in summary


def test_a_run_with_its_own_scenario_file_is_self_contained(tmp_path):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    (work / "duel.yaml").write_text("allies: {marine: 2}\nenemies: {marine: 2}\nepisode_limit: 10\n")
    done = ctde("train", "mappo", "micro", "--env.scenario", "duel.yaml", "--steps", 40,
                "--log-every", 20, "--num-envs", 2, "--rollout-steps", 10, "--num-minibatches", 1,
                "--eval-episodes", 1, "--no-progress", "--out", "run", cwd=work)
    assert done.returncode == 0, done.stderr
    os.unlink(work / "duel.yaml")  # the run folder holds its own copy
    done = ctde("eval", work / "run", "--episodes", 1, cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert "after 40 env steps" in done.stdout


def test_seeds_that_would_split_but_met_an_initialised_jax_are_told_why(monkeypatch):
    import jax

    from ctde import cli

    monkeypatch.setattr(cli.os, "cpu_count", lambda: 2)
    devices = len(jax.devices())  # this process's JAX is already initialised
    uneven = cli._device_reason(3, devices, spec=object())
    even = cli._device_reason(4, devices, spec=object())
    if jax.default_backend() != "cpu" or devices >= 2:
        assert uneven == even == ""
        return
    assert "3 seeds do not split evenly over 2 cores" in uneven
    assert "JAX was initialised before" in even and "device_count=2" in even
    assert "do not split" not in even


def test_a_run_saved_before_a_behaviour_changing_setting_carries_on_the_earlier_way(tmp_path):
    # A run folder lists every setting of its release; a MAPPO run saved before
    # fit_dead_values existed was trained with the dead agents' values unfitted, and a
    # resume must not switch it to the new default halfway through.
    import yaml

    from ctde.run.spec import read_spec

    config = {"algo": "mappo", "env": "3m", "config": {"critic_input": "FP", "num_epochs": 5}}
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.yaml").write_text(yaml.safe_dump(config))
    assert read_spec(str(old)).config["fit_dead_values"] is False
    new = tmp_path / "new"
    new.mkdir()
    config["config"]["fit_dead_values"] = True
    (new / "config.yaml").write_text(yaml.safe_dump(config))
    assert read_spec(str(new)).config["fit_dead_values"] is True
