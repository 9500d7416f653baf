"""MADDPG through the CLI, as a user drives it: a competitive run with a team per learner."""

import csv
import os

import pytest

from ctde.cli import main

TINY = ["--num-envs", "4", "--rollout-steps", "25", "--update-every", "50", "--batch-size", "64",
        "--buffer-size", "2000", "--warmup-steps", "200", "--eval-episodes", "2", "--no-progress"]


def test_trains_maddpg_predators_against_ddpg_prey(tmp_path, capsys):
    out = str(tmp_path / "tag")
    code = main(["train", "maddpg", "simple_tag", "--team-algos", "maddpg,ddpg", "--steps", "1000",
                 "--log-every", "500", "--out", out, *TINY])
    assert code == 0
    with open(os.path.join(out, "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["env_steps"]) for r in rows] == [500, 1000]
    for column in ("return_mean", "return_mean_adversary", "return_mean_good", "touches",
                   "critic_loss_adversary", "policy_q_good", "eval_touches"):
        assert rows[-1][column] != "", column
    with open(os.path.join(out, "config.yaml")) as f:
        assert "- maddpg\n  - ddpg" in f.read()  # the team split is part of the run's record
    capsys.readouterr()
    assert main(["eval", out, "--episodes", "4"]) == 0
    assert "touches" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,expected",
    [
        (["simple_tag", "--team-algos", "maddpg"], "team_algos has 1 entries but simple_tag has 2"),
        (["simple_tag", "--team-algos", "maddpg,ppo"], "team_algos entries must be one of"),
        (["simple_spread", "--buffer-size", "100"], "smaller than a batch"),
    ],
)
def test_bad_settings_fail_before_anything_is_written(args, expected, tmp_path, capsys):
    out = str(tmp_path / "never")
    assert main(["train", "maddpg", *args, "--out", out, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1
    assert not os.path.exists(out)


SPLIT_CHECK = """
import os, json
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
import jax, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from ctde.algos import maddpg
from ctde.envs import make
from ctde.run.runner import _data_leaves

env = make("simple_tag")
config = maddpg.Config(num_envs=4, rollout_steps=25, update_every=25, batch_size=64,
                       buffer_size=2000, warmup_steps=100)
one = maddpg.make_train(config, env)
two = maddpg.make_train(config, env, batch_axis="batch")
state = jax.jit(one.init)(jax.random.PRNGKey(0))
run = lambda trainer: lambda s: jax.lax.scan(lambda s, _: trainer.update(s), s, None, 3)[0]
alone = jax.jit(run(one))(state)
mesh = jax.make_mesh((2,), ("batch",))
# every device's copy comes back (a leading axis per device) to check they agree; the state's
# empty leaves stay out of the mapped call, as the runner keeps them (XLA:CPU 0.11 crashes)
data, rebuild = _data_leaves(state)
split = jax.jit(jax.shard_map(
    lambda d: jax.tree.map(lambda x: x[None], run(two)(rebuild(d, lambda n: n)).params), mesh=mesh,
    in_specs=P(), out_specs=P("batch"), check_vma=False))
params = split(jax.device_put(data, NamedSharding(mesh, P())))
leaves = lambda tree: [np.asarray(x) for x in jax.tree.leaves(tree)]
print(json.dumps({
    "replicas_equal": all(np.array_equal(c[0], c[1]) for c in leaves(params)),
    "max_diff": max(float(np.abs(a - c[0]).max()) for a, c in
                    zip(leaves(alone.params), leaves(params))),
    "max_param": max(float(np.abs(a).max()) for a in leaves(alone.params)),
    "updates": int(alone.update_step),
}))
"""


def test_a_learner_split_over_two_devices_takes_the_gradient_steps_of_one(env_without_device_count):
    """Two devices that each take half of every batch and average their gradients hold
    identical copies of the learner, equal (up to rounding) to one device on whole batches."""
    import json
    import subprocess
    import sys

    env = env_without_device_count
    done = subprocess.run([sys.executable, "-c", SPLIT_CHECK], env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas_equal"]
    assert result["max_diff"] < 1e-4 * result["max_param"], result


def test_cli_splits_a_single_seeds_batches_over_the_cores(tmp_path, env_without_device_count):
    import subprocess
    import sys

    env = env_without_device_count
    done = subprocess.run(
        [sys.executable, "-m", "ctde.cli", "train", "maddpg", "simple_spread", "--steps", "500",
         "--log-every", "250", "--out", str(tmp_path / "run"), *TINY],
        env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    if (os.cpu_count() or 1) >= 2:
        assert "on 2 devices (2 per seed, sharing its batches)" in done.stdout, done.stdout


def test_settings_after_a_config_file_are_not_taken_for_algo_or_env(tmp_path, capsys):
    """``ctde train --config F --team-algos maddpg,ddpg``: the setting's value is not the
    optional ALGO positional (docs/results.md runs its commands this way)."""
    out = str(tmp_path / "run")
    config = os.path.join(os.path.dirname(__file__), "..", "configs", "maddpg_simple_tag.yaml")
    code = main(["train", "--config", config, "--team-algos",
                 "maddpg,ddpg", "--steps", "500", "--seeds", "1", "--out", out, *TINY])
    assert code == 0, capsys.readouterr().err
    with open(os.path.join(out, "config.yaml")) as f:
        text = f.read()
    assert "algo: maddpg" in text and "- maddpg\n  - ddpg" in text
