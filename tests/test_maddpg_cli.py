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
