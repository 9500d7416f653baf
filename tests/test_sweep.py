"""`ctde sweep`: grid files, trials as ordinary run folders, the local and Ray backends,
retries from checkpoints, and a killed driver re-run without losing or repeating work."""

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest
import yaml

from ctde.cli import main
from ctde.run import runner, sweep

# Trials run on different layouts (two at once on one device each, one on both devices,
# Ray workers) are compared bit for bit: every child compiles as users' runs do (conftest).
pytestmark = pytest.mark.usefixtures("default_emitters")

TINY = {"num_envs": 8, "rollout_steps": 10}
# Two trials of 20 logging points each (checkpoint at every point): long enough to be
# killed part-way, short enough for the default suite.
GRID = {"algos": "mappo", "envs": "identity", "seeds": 2, "steps": 8000, "log_every": 400,
        "eval_episodes": 2, "checkpoint_every": 0, "set": {**TINY, "num_epochs": [1, 2]}}
NAMES = ["mappo-identity-num_epochs=1", "mappo-identity-num_epochs=2"]


def write_grid(path, grid):
    path.write_text(yaml.safe_dump(grid))
    return str(path)


def rows(run_dir):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        return [{k: v for k, v in r.items() if k not in runner.TIMING_COLUMNS}
                for r in csv.DictReader(f)]


def final_params(run_dir):
    return jax.tree.leaves(runner.load_learner(run_dir)[3].params)


def assert_same_params(a, b):
    for x, y in zip(final_params(a), final_params(b), strict=True):
        np.testing.assert_array_equal(x, y)


def checkpoint_files(run_dir):
    directory = os.path.join(run_dir, "checkpoints")
    return [n for n in os.listdir(directory) if n.endswith(".msgpack")] if os.path.isdir(directory) else []


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """The grid run once, uninterrupted, by the local backend through the CLI: both
    trials at once, one core (one JAX device) each."""
    tmp = tmp_path_factory.mktemp("sweep")
    out = str(tmp / "out")
    assert main(["sweep", write_grid(tmp / "grid.yaml", GRID), "--out", out, "--parallel", "2",
                 "--no-progress"]) == 0
    return out


# --------------------------------------------------------------------------- grid files


def test_expand_axes_per_algo_variants_and_names():
    grid = {"algos": ["mappo", "maddpg"], "envs": ["identity", "simple_spread"], "seeds": 3,
            "steps": "2e6", "set": {"num_epochs": [5, 10], "hidden": [32, 32]},
            "env": {"N": [2, 4]}, "per_algo": {"maddpg": {"batch_size": 512}}}
    trials = sweep.expand(grid)
    # mappo: 2 envs x 2 epochs, x 2 N on simple_spread only; maddpg has no num_epochs
    by_name = {t.name: t for t in trials}
    assert len(trials) == (2 + 4) + (1 + 2)
    t = by_name["mappo-simple_spread-num_epochs=10-env.N=4"]
    assert t.spec["config"] == {"num_epochs": 10, "hidden": [32, 32]}  # a flat list: one setting
    assert t.spec["env_params"] == {"N": 4} and t.spec["steps"] == "2e6" and t.spec["seeds"] == 3
    assert by_name["maddpg-identity"].spec["config"] == {"hidden": [32, 32], "batch_size": 512}
    assert t.labels == {"num_epochs": 10, "env.N": 4}

    ablation = sweep.expand({"algos": "mappo", "envs": "3m", "set": {"hidden": [[64], [64, 64]]},
                             "variants": {"base": {}, "no_vn": {"value_norm": "none"}}})
    assert [t.name for t in ablation] == ["mappo-3m-hidden=64-base", "mappo-3m-hidden=64-no_vn",
                                         "mappo-3m-hidden=64+64-base", "mappo-3m-hidden=64+64-no_vn"]
    assert ablation[1].spec["config"] == {"hidden": [64], "value_norm": "none"}


def test_base_config_file_is_the_starting_point(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(
        {"algo": "mappo", "env": "identity", "steps": 5000, "config": {"num_envs": 8}}))
    path = write_grid(tmp_path / "grid.yaml", {"base": "base.yaml", "set": {"gamma": [0.9, 0.99]}})
    trials = sweep.expand(sweep.load_grid(path))
    assert [t.spec["config"] for t in trials] == [{"num_envs": 8, "gamma": 0.9},
                                                  {"num_envs": 8, "gamma": 0.99}]
    assert all(t.spec["steps"] == 5000 for t in trials)


@pytest.mark.parametrize("grid, message", [
    ({"algos": "mappo", "envs": "identity", "colour": 1}, "unknown grid field 'colour'"),
    ({"algos": "mapo", "envs": "identity"}, "unknown algorithm 'mapo'"),
    ({"envs": "identity"}, "the grid names no algos"),
    ({"algos": "mappo", "envs": "identity", "set": {"lr": [1, 2]}}, "set.lr: no algorithm in the grid"),
    ({"algos": "mappo", "envs": "identity", "env": {"colour": 1}}, "env.colour: no env in the grid"),
    ({"algos": "mappo", "envs": "identity", "per_algo": {"maddpg": {}}}, "per_algo.maddpg: 'maddpg' is not"),
    ({"algos": "mappo", "envs": "identity", "set": {"num_epochs": []}}, "set.num_epochs: an empty list"),
    ({"algos": "mappo", "envs": "identity", "variants": {"v": {"tau": 1}}}, "variants.v.tau: mappo has no"),
])
def test_bad_grids_name_the_field(grid, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        sweep.expand(grid)


def test_a_bad_grid_fails_before_any_trial_starts(tmp_path, capsys):
    # the first trial is valid, the second is not: nothing may run
    grid = {"algos": "mappo", "envs": "identity", "steps": 400,
            "set": {**TINY, "num_envs": [8, "many"]}}
    out = tmp_path / "out"
    code = main(["sweep", write_grid(tmp_path / "grid.yaml", grid), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "trial mappo-identity-num_envs=many: num_envs expects int, got 'many'" in err
    assert not out.exists()


# --------------------------------------------------------------------------- local backend


def test_trials_are_ordinary_run_folders(local_sweep, capsys):
    for name in NAMES:
        run_dir = os.path.join(local_sweep, name)
        table = rows(run_dir)
        assert len(table) == 2 * 20  # 2 seeds x 20 logging points, each once
        assert len({(r["seed"], r["env_steps"]) for r in table}) == len(table)
        done = json.load(open(os.path.join(run_dir, "done.json")))
        assert done["env_steps"] == 8000 and done["devices"] == 1  # 2 cores shared by 2 trials
        spec = yaml.safe_load(open(os.path.join(run_dir, "config.yaml")))
        assert spec["config"]["num_epochs"] == int(name[-1]) and spec["seeds"] == 2
    first, second = (json.load(open(os.path.join(local_sweep, n, "done.json"))) for n in NAMES)
    assert first["started"] < second["finished"] and second["started"] < first["finished"]  # at once
    capsys.readouterr()
    assert main(["eval", os.path.join(local_sweep, NAMES[0]), "--episodes", "2"]) == 0
    assert "deterministic policy" in capsys.readouterr().out
    labels = yaml.safe_load(open(os.path.join(local_sweep, "sweep.yaml")))["labels"]
    assert labels == {NAMES[0]: {"num_epochs": 1}, NAMES[1]: {"num_epochs": 2}}


def test_a_grid_run_a_slice_at_a_time_keeps_every_trials_labels(tmp_path):
    # each slice rewrites sweep.yaml: the earlier slices' trials keep their labels there,
    # or `ctde report` on the folder could not tell them apart
    out = str(tmp_path / "out")
    for epochs in (1, 2, 1):
        sweep.prepare(dict(GRID, set={**TINY, "num_epochs": [epochs]}), out)
    record = yaml.safe_load(open(os.path.join(out, "sweep.yaml")))
    assert record["labels"] == {NAMES[0]: {"num_epochs": 1}, NAMES[1]: {"num_epochs": 2}}
    assert [g["set"]["num_epochs"] for g in record["grids"]] == [[1], [2]]


def test_a_finished_sweep_reruns_nothing(local_sweep, capsys):
    before = {n: os.stat(os.path.join(local_sweep, n, "metrics.csv")).st_mtime_ns for n in NAMES}
    grid = os.path.join(os.path.dirname(local_sweep), "grid.yaml")
    capsys.readouterr()
    assert main(["sweep", grid, "--out", local_sweep, "--no-progress"]) == 0
    assert "2 trials" in (out := capsys.readouterr().out) and "(2 already done)" in out
    after = {n: os.stat(os.path.join(local_sweep, n, "metrics.csv")).st_mtime_ns for n in NAMES}
    assert before == after
    # the driver validated on the CPU (on a GPU it would hold 75 % of the memory the trials
    # need), by a config setting that its trials' processes do not inherit
    import jax

    assert jax.config.jax_platforms == "cpu" and "JAX_PLATFORMS" not in os.environ


def test_live_table_shows_state_progress_and_eta(local_sweep):
    from rich.console import Console

    trials = sweep.expand(GRID)
    facts = {t.name: {"total_steps": 16000, "seeds": 2} for t in trials}  # as if half done
    console = Console(record=True, width=120)
    console.print(sweep.status_table(trials, facts, local_sweep,
                                     {NAMES[0]: "running (retry 1)", NAMES[1]: "done"}))
    text = console.export_text()
    sps = float(rows_with_timing(os.path.join(local_sweep, NAMES[0]))[-1]["steps_per_s"])
    eta = sweep._duration(8000 * 2 / sps)  # steps left x seeds / steps per second
    first = next(line for line in text.splitlines() if NAMES[0] in line)
    assert "running (retry 1)" in first and "8,000/16,000" in first and eta in first
    second = next(line for line in text.splitlines() if NAMES[1] in line)
    assert "done" in second and "16,000/16,000" in second


def rows_with_timing(run_dir):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_parallel_is_for_local_runs(tmp_path, capsys):
    grid = write_grid(tmp_path / "grid.yaml", GRID)
    assert main(["sweep", grid, "--out", str(tmp_path / "o"), "--ray", "--parallel", "2"]) == 2
    assert "--parallel is for local runs" in capsys.readouterr().err


def test_a_different_grid_in_the_same_folder_is_refused(local_sweep, tmp_path, capsys):
    other = dict(GRID, steps=4000)
    code = main(["sweep", write_grid(tmp_path / "g.yaml", other), "--out", local_sweep, "--no-progress"])
    assert code == 2 and "holds a trial of a different grid" in capsys.readouterr().err


def test_a_trial_trained_with_an_earlier_default_is_not_counted_or_resumed(local_sweep, tmp_path,
                                                                          capsys):
    # A sweep folder of an earlier release: its config.yaml has no fit_dead_values, so the
    # trial was trained with the dead agents' values unfitted, which is no longer the
    # default. Re-running the grid there must neither count it as done nor resume it under
    # the new default (a learner switched halfway), and must say why before anything runs.
    import shutil

    from ctde.run.spec import spec_from_dict

    out = str(tmp_path / "old")
    shutil.copytree(local_sweep, out)
    trial = os.path.join(out, NAMES[1])
    config = yaml.safe_load(open(os.path.join(trial, "config.yaml")))
    del config["config"]["fit_dead_values"]
    with open(os.path.join(trial, "config.yaml"), "w") as f:
        yaml.safe_dump(config, f)
    before = sorted((p, os.stat(os.path.join(r, p)).st_mtime_ns)
                    for r, _, files in os.walk(out) for p in files)
    grid = os.path.join(os.path.dirname(local_sweep), "grid.yaml")
    capsys.readouterr()
    assert main(["sweep", grid, "--out", out, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert NAMES[1] in err and "fit_dead_values=False (now: True)" in err
    assert NAMES[0] not in err
    after = sorted((p, os.stat(os.path.join(r, p)).st_mtime_ns)
                   for r, _, files in os.walk(out) for p in files)
    assert after == before  # nothing written, nothing run
    # nor does a resume with the grid's settings carry it on; its own settings do
    spec = spec_from_dict(yaml.safe_load(open(os.path.join(trial, sweep.TRIAL))))
    with pytest.raises(ValueError, match="fit_dead_values=False"):
        runner.train(spec, trial, resume=True, progress=False)


def test_a_trial_trained_under_an_earlier_env_default_is_not_counted_or_resumed(local_sweep,
                                                                                 tmp_path, capsys):
    # The same for the environment: a run's config.yaml records every env option as it
    # ran (env_settings). A folder whose env ran with another default (here identity's
    # delay, as if an earlier release's default had been 1) is neither counted nor resumed.
    import shutil

    from ctde.run.spec import spec_from_dict

    out = str(tmp_path / "old_env")
    shutil.copytree(local_sweep, out)
    trial = os.path.join(out, NAMES[0])
    config = yaml.safe_load(open(os.path.join(trial, "config.yaml")))
    assert config["env_settings"] == {"num_agents": 2, "num_actions": 4, "max_steps": 10,
                                      "continuous_actions": False, "delay": 0}
    config["env_settings"]["delay"] = 1
    with open(os.path.join(trial, "config.yaml"), "w") as f:
        yaml.safe_dump(config, f)
    grid = os.path.join(os.path.dirname(local_sweep), "grid.yaml")
    capsys.readouterr()
    assert main(["sweep", grid, "--out", out, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert NAMES[0] in err and "delay=1 (now: 0)" in err and NAMES[1] not in err
    spec = spec_from_dict(yaml.safe_load(open(os.path.join(trial, sweep.TRIAL))))
    with pytest.raises(ValueError, match=r"delay=1 \(now: 0\)"):
        runner.train(spec, trial, resume=True, progress=False)
    # a folder of a release that did not record them is judged by its Config alone
    del config["env_settings"]
    with open(os.path.join(trial, "config.yaml"), "w") as f:
        yaml.safe_dump(config, f)
    assert main(["sweep", grid, "--out", out, "--no-progress"]) == 0


def kill_worker_once(out, name, killed):
    """Background: SIGKILL the trial's worker once it has saved a checkpoint."""
    run_dir = os.path.join(out, name)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if checkpoint_files(run_dir) and os.path.exists(os.path.join(run_dir, "worker.json")):
            rows_now = len(rows(run_dir)) if os.path.exists(os.path.join(run_dir, "metrics.csv")) else 0
            if 0 < rows_now < 40:
                os.kill(json.load(open(os.path.join(run_dir, "worker.json")))["pid"], signal.SIGKILL)
                killed.append(rows_now)
                return
        time.sleep(0.01)


def run_with_kill(out, backend, name):
    """The first trial of GRID alone, its worker killed once part-way."""
    killed, log = [], []
    killer = threading.Thread(target=kill_worker_once, args=(out, name, killed), daemon=True)
    killer.start()
    grid = dict(GRID, set={**TINY, "num_epochs": 1})
    states = sweep.run_sweep(grid, out, backend, max_failures=2, progress=False, log=log.append)
    killer.join()
    return states, killed, log


def test_a_killed_worker_is_retried_from_its_checkpoint(local_sweep, tmp_path):
    out = str(tmp_path / "out")
    name = "mappo-identity"
    states, killed, log = run_with_kill(out, sweep.LocalBackend(), name)
    assert killed, "the worker finished before it could be killed"
    assert states == {name: "done"}
    assert any(line.startswith(f"retry   {name}") and "SIGKILL" in line for line in log)
    assert rows(os.path.join(out, name)) == rows(os.path.join(local_sweep, NAMES[0]))
    assert_same_params(os.path.join(out, name), os.path.join(local_sweep, NAMES[0]))


def test_a_trial_that_keeps_failing_is_given_up(tmp_path):
    out = str(tmp_path / "out")
    grid = dict(GRID, set={**TINY, "num_epochs": 1})
    trials, facts = sweep.prepare(grid, out)
    os.makedirs(os.path.join(out, trials[0].name, ".lock"))  # the worker cannot open its lock
    log = []
    states = sweep.run_sweep(grid, out, sweep.LocalBackend(), max_failures=1, progress=False,
                             log=log.append, prepared=(trials, facts))
    assert states[trials[0].name].startswith("failed: worker exited with status 1")
    assert sum(line.startswith("retry") for line in log) == 1


def test_a_killed_driver_rerun_finishes_the_same_sweep(local_sweep, tmp_path):
    grid = write_grid(tmp_path / "grid.yaml", GRID)
    out = str(tmp_path / "out")
    driver = subprocess.Popen([sys.executable, "-m", "ctde.cli", "sweep", grid, "--out", out,
                               "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first, second = (os.path.join(out, n) for n in NAMES)
    deadline = time.monotonic() + 300
    while not (os.path.exists(os.path.join(first, "done.json")) and checkpoint_files(second)):
        assert driver.poll() is None and time.monotonic() < deadline, "the sweep ended too soon"
        time.sleep(0.01)
    driver.kill()
    driver.wait()
    worker = json.load(open(os.path.join(second, "worker.json")))["pid"]
    for _ in range(500):  # the worker dies with its driver
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.01)
    else:
        pytest.fail("the trial's worker outlived its driver")
    assert not os.path.exists(os.path.join(second, "done.json"))
    done_before = os.stat(os.path.join(first, "metrics.csv")).st_mtime_ns

    log = []
    states = sweep.run_sweep(sweep.load_grid(grid), out, sweep.LocalBackend(), progress=False,
                             log=log.append)
    assert states == {n: "done" for n in NAMES}
    assert "(1 already done)" in log[0] and not any(NAMES[0] in line for line in log[1:-1])
    assert os.stat(os.path.join(first, "metrics.csv")).st_mtime_ns == done_before
    for name in NAMES:  # equal to the uninterrupted sweep: nothing lost, nothing twice
        assert rows(os.path.join(out, name)) == rows(os.path.join(local_sweep, name))
        assert_same_params(os.path.join(out, name), os.path.join(local_sweep, name))


# --------------------------------------------------------------------------- Ray backend


@pytest.fixture(scope="module")
def ray_cluster():
    """A Ray cluster of two nodes of one CPU each (two raylets on this machine, as
    ``ray start --head`` and ``ray start --address`` on two machines would make)."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
    cluster.shutdown()


def test_ray_runs_a_trial_to_the_same_metrics(local_sweep, ray_cluster, tmp_path):
    out = str(tmp_path / "out")
    backend = sweep.RayBackend(cpus=1)  # one host device: the local trial had two
    assert "Ray, 2 node(s), 2 CPUs; 1 CPU(s) per trial" in backend.describe()
    grid = dict(GRID, set={**TINY, "num_epochs": [1]})
    states = sweep.run_sweep(grid, out, backend, progress=False, log=lambda _: None)
    assert states == {NAMES[0]: "done"}
    assert ray_cluster.is_initialized()  # a cluster it did not start is left running
    assert rows(os.path.join(out, NAMES[0])) == rows(os.path.join(local_sweep, NAMES[0]))
    assert_same_params(os.path.join(out, NAMES[0]), os.path.join(local_sweep, NAMES[0]))


def test_ray_retries_a_killed_worker_from_its_checkpoint(local_sweep, ray_cluster, tmp_path):
    out = str(tmp_path / "out")
    name = "mappo-identity"
    states, killed, log = run_with_kill(out, sweep.RayBackend(cpus=1), name)
    assert killed and states == {name: "done"}
    assert any(line.startswith(f"retry   {name}") for line in log)
    assert rows(os.path.join(out, name)) == rows(os.path.join(local_sweep, NAMES[0]))
    assert_same_params(os.path.join(out, name), os.path.join(local_sweep, NAMES[0]))


def test_ray_spreads_trials_over_the_cluster_nodes(local_sweep, ray_cluster, tmp_path):
    out = str(tmp_path / "out")
    states = sweep.run_sweep(GRID, out, sweep.RayBackend(cpus=1), progress=False,
                             log=lambda _: None)
    assert states == dict.fromkeys(NAMES, "done")
    nodes = {json.load(open(os.path.join(out, n, sweep.DONE)))["node"] for n in NAMES}
    assert len(nodes) == 2  # one CPU per node: the two trials ran on different nodes
    for name in NAMES:
        assert rows(os.path.join(out, name)) == rows(os.path.join(local_sweep, name))


SWEEPS = os.path.join(os.path.dirname(__file__), "..", "configs", "sweeps")


def shipped(grid: str) -> list:
    """The trials of the grid file ``grid`` in configs/sweeps."""
    return sweep.expand(sweep.load_grid(os.path.join(SWEEPS, grid)))


def shipped_specs(grid: str) -> dict:
    return {t.name: t.spec for t in shipped(grid)}


@pytest.mark.parametrize("path", sorted(os.path.join(SWEEPS, n) for n in os.listdir(SWEEPS)),
                         ids=os.path.basename)
def test_shipped_grid_files_are_valid(path):
    trials = sweep.expand(sweep.load_grid(path))
    sweep.validate_trials(trials)  # every trial's env and Config build
    assert len({t.name for t in trials}) == len(trials)
    if path.endswith("mappo_ablations.yaml"):  # 5 maps x 9 variants, one factor at a time
        assert len(trials) == 45 and {t.spec["seeds"] for t in trials} == {5}
        by_name = {t.name: t.spec["config"] for t in trials}
        assert by_name["mappo-MMM-critic_AS"]["critic_input"] == "AS"
        assert by_name["mappo-3m-baseline"]["critic_input"] == "FP"


@pytest.mark.parametrize("grid, trials", [("mappo_ablations_3m_2M.yaml", 9),
                                           ("mappo_ablations_2s3z_2M.yaml", 9),
                                           ("mappo_ablations_5m_vs_6m_2M.yaml", 9),
                                           ("mappo_ablations_3s5z_2M_critic_vn.yaml", 4),
                                           ("mappo_ablations_3s5z_2M_rest.yaml", 6),
                                           ("mappo_ablations_MMM_2M.yaml", 9)])
def test_full_budget_slice_holds_the_full_grids_trials(grid, trials):
    """A slice run into the full grid's folder counts as done there: same names, same specs."""
    full = shipped_specs("mappo_ablations.yaml")
    part = shipped(grid)
    assert len(part) == trials  # one map's nine variants, or some of them
    for trial in part:
        assert trial.spec == full[trial.name]


@pytest.mark.parametrize("grid, trials", [("mappo_ablations_3s5z_2M_more.yaml", 1),
                                           ("mappo_ablations_3s5z_2M_more_clip.yaml", 2),
                                           ("mappo_ablations_3s5z_2M_more_AS.yaml", 1),
                                           ("mappo_ablations_3s5z_2M_more_CL.yaml", 1)])
def test_more_seeds_slice_holds_the_full_grids_trials_at_seeds_5_to_9(grid, trials):
    """Seeds 5-9 of full-grid trials: the same specs but the first seed, so that the report
    pools them with seeds 0-4, and one trial shared by two such files runs once."""
    full = shipped_specs("mappo_ablations.yaml")
    more = shipped_specs("mappo_ablations_3s5z_2M_more.yaml")
    part = shipped(grid)
    assert len(part) == trials
    for trial in part:
        assert trial.spec == {**full[trial.name], "seed": 5}
        if trial.name in more:
            assert trial.spec == more[trial.name]


def test_half_budget_slice_holds_the_full_grids_trials_but_their_budget():
    """mappo_ablations_MMM_epochs_1M.yaml: the 2 M grid's MMM epoch trials and baseline,
    setting for setting, at 1 M steps; its learning rates are constant, so those are the
    2 M trials' first 1 M steps (test_run_trust: a run is the start of a longer one)."""
    full = shipped_specs("mappo_ablations.yaml")
    part = shipped("mappo_ablations_MMM_epochs_1M.yaml")
    assert sorted(t.name for t in part) == ["mappo-MMM-baseline", "mappo-MMM-epochs_10",
                                            "mappo-MMM-epochs_15"]
    for trial in part:
        assert trial.spec == {**full[trial.name], "steps": "1e6"}
        assert trial.spec["config"]["anneal_lr"] is False
