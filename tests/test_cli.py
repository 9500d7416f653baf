"""The runner through the CLI, as a user drives it: runs, determinism, resume, bad input."""

import csv
import dataclasses
import glob
import os

import jax
import numpy as np
import pytest
import yaml

from ctde.cli import main
from ctde.run import runner
from ctde.run.spec import RunSpec

TINY = ["--num-envs", "8", "--rollout-steps", "10", "--eval-episodes", "4", "--no-progress"]


def rows(path):
    with open(os.path.join(path, "metrics.csv"), newline="") as f:
        return list(csv.DictReader(f))


def without_timing(table):
    return [{k: v for k, v in r.items() if k not in runner.TIMING_COLUMNS} for r in table]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "a")
    code = main(["train", "mappo", "identity", "--steps", "2000", "--seeds", "2",
                 "--log-every", "400", "--out", out, *TINY])
    assert code == 0
    return out


def test_train_writes_a_complete_run_folder(run_dir):
    assert sorted(os.listdir(run_dir)) == ["checkpoints", "config.yaml", "metrics.csv", "tb"]
    table = rows(run_dir)
    assert [int(r["seed"]) for r in table[:2]] == [0, 1]
    assert len(table) == 2 * 5  # 2 seeds x 5 logging points of 400 steps
    for column in ("env_steps", "wall_s", "return_mean", "eval_return_mean", "accuracy",
                   "value_loss", "entropy"):
        assert column in table[0], column
    assert int(table[-1]["env_steps"]) == 2000
    assert os.listdir(os.path.join(run_dir, "tb"))


def test_same_seed_twice_gives_identical_metrics(run_dir, tmp_path):
    again = str(tmp_path / "b")
    assert main(["train", "--config", os.path.join(run_dir, "config.yaml"),
                 "--out", again, "--no-progress"]) == 0
    assert without_timing(rows(again)) == without_timing(rows(run_dir))


def test_a_seed_learns_the_same_alone_or_beside_others(tmp_path):
    # On one device the seeds run one after another, so seed 0's run does not depend on
    # how many seeds share the call. Two different programs compared bit for bit: each run
    # in a child compiled as users' runs are (conftest).
    import subprocess
    import sys

    from conftest import default_emitters_env

    env = default_emitters_env()
    env["XLA_FLAGS"] += " --xla_force_host_platform_device_count=1"

    def seed0(seeds):
        out = str(tmp_path / str(seeds))
        done = subprocess.run([sys.executable, "-m", "ctde.cli", "train", "mappo", "identity",
                               "--steps", "800", "--seeds", str(seeds), "--log-every", "400",
                               "--eval-episodes", "2", "--num-envs", "8", "--rollout-steps", "10",
                               "--no-progress", "--out", out], env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
        return [r for r in without_timing(rows(out)) if r["seed"] == "0"]

    assert seed0(1) == seed0(3)


# Small runs of at least three logging points per learner family (COMA's and LICA's
# recurrent learners carry GRU states, target critics and schedules across the cut).
RESUME_RUNS = {
    "mappo": dict(steps=2400, seeds=2, log_every=400, config={"num_envs": 8, "rollout_steps": 10}),
    "coma": dict(steps=120, seeds=1, log_every=40, config={"num_envs": 4, "rollout_steps": 5}),
    "lica": dict(steps=120, seeds=1, log_every=40, config={"num_envs": 4, "rollout_steps": 5}),
}


@pytest.mark.parametrize("algo", list(RESUME_RUNS))
def test_killed_run_resumes_to_the_same_parameters(tmp_path, algo):
    spec = RunSpec(algo=algo, env="identity", eval_episodes=2, **RESUME_RUNS[algo])
    whole = runner.train(spec, str(tmp_path / "whole"), progress=False)
    part = str(tmp_path / "part")
    first = runner.train(spec, part, progress=False, stop_after_segments=2)
    assert not first["finished"]
    assert main(["train", "--resume", part, "--no-progress"]) == 0
    _, _, _, resumed, counters = runner.load_learner(part)
    assert counters["env_steps"] == whole["env_steps"]
    for x, y in zip(jax.tree.leaves(whole["state"]), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert without_timing(rows(part)) == without_timing(rows(str(tmp_path / "whole")))


def test_checkpoints_first_and_last_point_then_at_most_every_interval(tmp_path, monkeypatch):
    from ctde.run import checkpoint

    saved = []
    real_save = checkpoint.save
    monkeypatch.setattr(checkpoint, "save",
                        lambda d, s, c, *a: saved.append(c["segment"]) or real_save(d, s, c, *a))
    spec = RunSpec(algo="mappo", env="identity", steps=2400, log_every=400, eval_episodes=0,
                   config={"num_envs": 8, "rollout_steps": 10})
    runner.train(spec, str(tmp_path / "rare"), progress=False)  # 6 points in well under 60 s
    assert saved == [1, 6]
    saved.clear()
    every = dataclasses.replace(spec, checkpoint_every=0)
    runner.train(every, str(tmp_path / "every"), progress=False)
    assert saved == [1, 2, 3, 4, 5, 6]


def test_eval_prints_per_seed_results(run_dir, capsys):
    assert main(["eval", run_dir, "--episodes", "8"]) == 0
    out = capsys.readouterr().out
    assert "return_mean" in out and "mean" in out.splitlines()[-1]


def test_envs_and_algos_list_names(capsys):
    assert main(["envs"]) == 0 and "identity" in capsys.readouterr().out
    assert main(["algos"]) == 0 and "mappo" in capsys.readouterr().out


def error_of(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err  # one line naming the problem
    return err


@pytest.mark.parametrize(
    "args,expected",
    [
        (["train", "mappo", "no_such_env"], "unknown env 'no_such_env'"),
        (["train", "mapo", "identity"], "unknown algorithm 'mapo'. Did you mean 'mappo'?"),
        (["train", "mappo", "identity", "--learning-rate", "1"], "mappo has no setting 'learning_rate'"),
        (["train", "mappo", "identity", "--num-envs", "abc"], "num_envs expects int, got 'abc'"),
        (["train", "mappo", "identity", "--num-envs", "2.5"], "num_envs expects int"),
        (["train", "mappo", "identity", "--steps", "-5"], "steps must be positive"),
        (["train", "mappo", "identity", "--env.colour", "red"], "has no parameter 'colour'"),
        (["train", "mappo", "identity", "--gamma", "2"], "gamma must be in [0, 1]"),
        (["train", "mappo", "identity", "--env.num_agents", "0"], "needs num_agents >= 1"),
        (["eval", "no/such/run"], "is not a run folder"),
    ],
)
def test_bad_input_is_a_one_line_error(args, expected, capsys, tmp_path):
    out = str(tmp_path / "never")
    err = error_of([*args, "--out", out] if args[0] == "train" else args, capsys)
    assert expected in err
    assert not os.path.exists(out)  # failed before anything was written


def test_corrupted_checkpoint_is_reported_and_nothing_is_lost(run_dir, tmp_path, capsys):
    import shutil

    copy = str(tmp_path / "copy")
    shutil.copytree(run_dir, copy)
    older, path = sorted(glob.glob(os.path.join(copy, "checkpoints", "step-*.msgpack")))[-2:]
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(b"\x00garbage\xff" * 8)
    before = {name: open(os.path.join(copy, name), "rb").read() for name in ("metrics.csv", "config.yaml")}
    err = error_of(["train", "--resume", copy], capsys)
    assert "is corrupted" in err
    err = error_of(["eval", copy], capsys)
    assert "is corrupted" in err
    for name, data in before.items():
        assert open(os.path.join(copy, name), "rb").read() == data
    # the checkpoint before it is a second copy: carry on from there, to the same end
    assert older.endswith("step-000000000400.msgpack")
    assert main(["train", "--resume", copy, "--checkpoint", "400", "--no-progress"]) == 0
    assert without_timing(rows(copy)) == without_timing(rows(run_dir))


def test_a_run_whose_env_defaults_changed_is_not_resumed_and_its_eval_says_so(run_dir, tmp_path,
                                                                              capsys):
    # config.yaml records every env option as the run ran; pretend an earlier release's
    # identity had delay 1 by default: a resume would carry on in another env.
    import shutil

    copy = str(tmp_path / "copy")
    shutil.copytree(run_dir, copy)
    config = yaml.safe_load(open(os.path.join(copy, "config.yaml")))
    config["env_settings"]["delay"] = 1
    with open(os.path.join(copy, "config.yaml"), "w") as f:
        yaml.safe_dump(config, f)
    before = open(os.path.join(copy, "metrics.csv")).read()
    err = error_of(["train", "--resume", copy], capsys)
    assert "delay=1 (now: 0)" in err
    assert open(os.path.join(copy, "metrics.csv")).read() == before
    assert main(["eval", copy, "--episodes", "2"]) == 0
    assert "note: " in capsys.readouterr().err


def test_refuses_to_overwrite_an_existing_run(run_dir, capsys):
    err = error_of(["train", "mappo", "identity", "--out", run_dir, "--no-progress"], capsys)
    assert "already holds a run" in err


def test_render_a_run_and_an_env(tmp_path):
    import imageio.v3 as iio

    out = str(tmp_path / "spread")
    assert main(["train", "mappo", "simple_spread", "--steps", "200", "--out", out,
                 "--num-envs", "4", "--num-minibatches", "1", "--eval-episodes", "2",
                 "--no-progress"]) == 0
    gif = str(tmp_path / "spread.gif")
    assert main(["render", out, "--out", gif]) == 0
    frames = iio.imread(gif)
    assert frames.ndim == 4 and frames.shape[-1] == 3 and len(frames) >= 20
    assert frames.std() > 5  # not a blank canvas
    assert main(["render", "simple_tag", "--out", str(tmp_path / "tag.gif")]) == 0
    assert os.path.getsize(tmp_path / "tag.gif") > 1000


def test_plot_learning_curves(run_dir, tmp_path, capsys):
    out = str(tmp_path / "curve.png")
    assert main(["plot", run_dir, run_dir, "--out", out, "--metric", "eval_return_mean"]) == 0
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    err = error_of(["plot", run_dir, "--out", out, "--metric", "nope"], capsys)
    assert "no metric 'nope'" in err and "return_mean" in err


def test_every_shipped_config_is_valid():
    import glob

    from ctde.run.spec import load_yaml, spec_from_dict, validate

    paths = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "configs", "*.yaml")))
    assert paths
    for path in paths:
        validate(spec_from_dict(load_yaml(path)))


def test_sharded_seeds_keep_empty_leaves_out_of_the_mapped_call():
    """XLA's CPU compiler in jaxlib 0.11 crashes on a shard_map whose operands mix empty
    and non-empty arrays, which a feed-forward network's empty hidden state made of every
    run split over devices: the runner keeps such leaves out of the mapped call and makes
    them again on each side, and the call computes what the unsplit one does."""
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("seed", "batch"))
    sharding = NamedSharding(mesh, PartitionSpec("seed"))
    state = {"hidden": jnp.zeros((2, 3, 0)), "x": jnp.arange(6.0).reshape(2, 3)}

    def update(s):
        metrics = {"loss": s["x"].sum(1), "none": jnp.zeros((2, 0))}
        return {"hidden": s["hidden"] + 1, "x": 2 * s["x"]}, metrics

    split = runner._shard_seeds(update, sharding)
    mapped = [e for e in jax.make_jaxpr(split)(state).eqns if e.primitive.name == "shard_map"]
    assert len(mapped) == 1 and all(v.aval.size for v in [*mapped[0].invars, *mapped[0].outvars])
    got, want = jax.jit(split)(state), update(state)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_seeds_spread_over_host_devices_train_and_resume(tmp_path, env_without_device_count):
    """Seeds sharded over host devices train, checkpoint and resume. A fresh process each
    time, as the device count is fixed when JAX starts: the first part's is set by hand,
    the resume's by the CLI itself (it sets the count before JAX starts when the user set
    none), so two seeds run on two cores."""
    import subprocess
    import sys

    out = str(tmp_path / "sharded")
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"
    code = ("import sys; from ctde.run import runner; from ctde.run.spec import RunSpec; "
            "import jax; assert len(jax.devices()) == 2; "
            "spec = RunSpec(algo='mappo', env='identity', steps=1200, seeds=2, log_every=400, "
            "eval_episodes=2, config={'num_envs': 8, 'rollout_steps': 10}); "
            "runner.train(spec, sys.argv[1], progress=False, stop_after_segments=2)")
    subprocess.run([sys.executable, "-c", code, out], env=dict(os.environ, XLA_FLAGS=flags),
                   check=True)
    own_count = (os.cpu_count() or 1) >= 2
    resumed = subprocess.run(
        [sys.executable, "-m", "ctde.cli", "train", "--resume", out, "--no-progress"],
        env=env_without_device_count if own_count else dict(os.environ, XLA_FLAGS=flags),
        capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "x 2 seeds on 2 devices" in resumed.stdout, resumed.stdout
    assert "RuntimeWarning" not in resumed.stderr, resumed.stderr
    assert int(rows(out)[-1]["env_steps"]) == 1200
