"""`ctde report`: rliable's figures on fixed numbers worked out by hand, the normalisation,
the tidy CSV and the marl-eval export."""

import csv
import json
import os
import shutil

import numpy as np
import pytest
import yaml

from ctde.cli import main
from ctde.run import report

pytest.importorskip("rliable")

# Final evaluation win rates on 3m (already normalised) of two methods.
A = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.9]  # 8 seeds
B = [0.0, 0.0, 0.9]  # 3 seeds


def fake_run(path, env, seeds_values, column, steps=(100, 200), first_seed=0, config=None):
    """A run folder as the runner writes it: config.yaml and metrics.csv. The values at
    the first point are half the final ones."""
    os.makedirs(path)
    with open(os.path.join(path, "config.yaml"), "w") as f:
        yaml.safe_dump({"algo": "mappo", "env": env, "seeds": len(seeds_values),
                        "seed": first_seed, "config": config or {}}, f)
    with open(os.path.join(path, "metrics.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, ["seed", "env_steps", "wall_s", column, f"eval_{column}"])
        writer.writeheader()
        for k, s in enumerate(steps):
            for seed, value in enumerate(seeds_values, start=first_seed):
                v = value * (k + 1) / len(steps)
                writer.writerow({"seed": seed, "env_steps": s, "wall_s": 1.0, column: v - 0.01,
                                 f"eval_{column}": v})


def fake_sweep(directory, env, values_a, values_b, column, first_seed=0, config_b=None):
    fake_run(os.path.join(directory, "a"), env, values_a, column, first_seed=first_seed)
    fake_run(os.path.join(directory, "b"), env, values_b, column, first_seed=first_seed,
             config=config_b)
    with open(os.path.join(directory, "sweep.yaml"), "w") as f:
        yaml.safe_dump({"labels": {"a": {"variant": "A"}, "b": {"variant": "B"}}}, f)


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def micro_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    fake_sweep(str(tmp / "sweep"), "3m", A, B, "win_rate")
    out = str(tmp / "report")
    assert main(["report", str(tmp / "sweep"), "--out", out, "--reps", "20000"]) == 0
    return out


def aggregates(out):
    return {(r["method"], r["aggregate"]): r for r in read(os.path.join(out, "aggregates.csv"))}


def test_point_estimates_match_hand_computed(micro_report):
    agg = aggregates(micro_report)
    # A sorted: IQM drops the lowest and highest quarter (2 of 8 each side)
    assert float(agg["mappo A", "IQM"]["estimate"]) == pytest.approx((0.2 + 0.3 + 0.4 + 0.5) / 4)
    assert float(agg["mappo A", "Mean"]["estimate"]) == pytest.approx(3.0 / 8)
    # the median aggregate is the median over tasks of each task's mean (one task here)
    assert float(agg["mappo A", "Median"]["estimate"]) == pytest.approx(3.0 / 8)
    assert float(agg["mappo A", "Optimality Gap"]["estimate"]) == pytest.approx(1 - 3.0 / 8)
    # 3 runs: the quarter trimmed from each side is no whole run, so IQM = mean
    assert float(agg["mappo B", "IQM"]["estimate"]) == pytest.approx(0.3)


def test_bootstrap_interval_matches_hand_computed(micro_report):
    # B = (0, 0, 0.9): a resample of 3 runs has mean 0 with probability 8/27 and mean 0.9
    # only when all three draws are 0.9, probability 1/27 = 3.7 % > 2.5 %: the 95 %
    # percentile interval of the mean is exactly [0, 0.9] (IQM and median: the same
    # statistic for 3 runs on one task).
    agg = aggregates(micro_report)
    for name in ("Mean", "IQM", "Median"):
        assert float(agg["mappo B", name]["ci_low"]) == 0.0
        assert float(agg["mappo B", name]["ci_high"]) == pytest.approx(0.9)
    # A's interval for the mean lies inside the range of its bootstrap means
    low, high = float(agg["mappo A", "Mean"]["ci_low"]), float(agg["mappo A", "Mean"]["ci_high"])
    assert 0.0 < low < 3.0 / 8 < high < 0.9


def test_probability_of_improvement_matches_hand_computed(micro_report):
    (row,) = read(os.path.join(micro_report, "improvement.csv"))
    # pairs (a, b): a > 0 for 7 of A and ties once (counts 1/2), twice over; a ties 0.9 once
    assert (row["x"], row["y"]) == ("mappo A", "mappo B")
    assert float(row["p_x_better"]) == pytest.approx((2 * 7.5 + 0.5) / 24)
    assert 0.0 <= float(row["ci_low"]) <= float(row["p_x_better"]) <= float(row["ci_high"]) <= 1.0


def test_tidy_results_curves_profiles_and_summary(micro_report):
    results = read(os.path.join(micro_report, "results.csv"))
    assert len(results) == 2 * (len(A) + len(B))  # every run at both points, once
    assert {r["metric"] for r in results} == {"eval_win_rate"}
    finals = sorted(float(r["score"]) for r in results if r["final"] == "True" and r["method"] == "mappo A")
    assert finals == pytest.approx(sorted(A))
    curves = {(r["method"], int(r["env_steps"])): r for r in read(os.path.join(micro_report, "curves.csv"))}
    assert float(curves["mappo A", 100]["mean"]) == pytest.approx(np.mean(A) / 2)
    for r in curves.values():
        assert float(r["low"]) <= float(r["mean"]) <= float(r["high"])
    profiles = [r for r in read(os.path.join(micro_report, "profiles.csv")) if r["method"] == "mappo A"]
    at = {round(float(r["tau"]), 4): float(r["fraction"]) for r in profiles}
    assert at[0.0] == 7 / 8 and at[0.5] == 2 / 8  # runs scoring above tau
    summary = open(os.path.join(micro_report, "summary.md")).read()
    assert "win rate (already in [0, 1])" in summary and "| mappo A | 0.375 [0." in summary
    for figure in ("curves.png", "aggregates.png", "profiles.png", "improvement.png"):
        assert os.path.getsize(os.path.join(micro_report, figure)) > 1000


def test_marl_eval_layout(micro_report):
    data = json.load(open(os.path.join(micro_report, "marl_eval.json")))
    runs = data["micro"]["3m"]["mappo_A"]
    assert sorted(runs) == [f"run_{i}" for i in range(len(A))]
    run = runs["run_7"]
    assert run["step_0"] == {"step_count": 100, "win_rate": [pytest.approx(0.45)]}
    assert run["step_1"]["step_count"] == 200
    assert run["absolute_metrics"] == {"win_rate": [pytest.approx(0.9)]}


def test_bootstrap_is_reproducible_and_leaves_numpy_alone():
    # rliable draws its indices from numpy's global generator, not the random_state it
    # is given: the report seeds that generator for each estimate and restores it after
    scores = {"A": np.array(A)[:, None], "B": np.array(B)[:, None]}
    np.random.seed(1)
    first = report.aggregate_estimates(scores, reps=2000)
    after = np.random.random()
    np.random.seed(2)
    assert report.aggregate_estimates(scores, reps=2000) == first
    np.random.seed(1)
    assert np.random.random() == after  # the caller's stream as if no report had run
    taus = np.linspace(0, 1, 5)
    assert str(report.profiles(scores, taus)) == str(report.profiles(scores, taus))


def test_sweeps_with_more_seeds_pool_into_one_report(micro_report, tmp_path):
    # A's and B's seeds split over two sweeps of the same grid (the second run later with
    # `seed: 5` / `seed: 2`): the pooled report is the one-sweep report, figure for figure
    fake_run(str(tmp_path / "first" / "a"), "3m", A[:5], "win_rate")
    fake_run(str(tmp_path / "first" / "b"), "3m", B[:2], "win_rate")
    fake_run(str(tmp_path / "more" / "a"), "3m", A[5:], "win_rate", first_seed=5)
    fake_run(str(tmp_path / "more" / "b"), "3m", B[2:], "win_rate", first_seed=2)
    for part in ("first", "more"):
        with open(tmp_path / part / "sweep.yaml", "w") as f:
            yaml.safe_dump({"labels": {"a": {"variant": "A"}, "b": {"variant": "B"}}}, f)
    out = str(tmp_path / "report")
    assert main(["report", str(tmp_path / "first"), str(tmp_path / "more"), "--out", out,
                 "--reps", "20000"]) == 0
    for name in ("aggregates.csv", "improvement.csv", "curves.csv"):
        assert read(os.path.join(out, name)) == read(os.path.join(micro_report, name))
    summary = open(os.path.join(out, "summary.md")).read()
    assert summary.startswith(f"# Report: {tmp_path / 'first'}, {tmp_path / 'more'}")
    assert "11 runs (seeds)" in summary


def test_chosen_trials_of_a_sweep_report_as_in_the_whole_sweep(micro_report, tmp_path):
    # naming a sweep's trial folders one by one (the finished ones, say) keeps each
    # trial's variant label, so the figures are the whole sweep's
    fake_sweep(str(tmp_path / "sweep"), "3m", A, B, "win_rate")
    out = str(tmp_path / "report")
    assert main(["report", str(tmp_path / "sweep" / "a"), str(tmp_path / "sweep" / "b"),
                 "--out", out, "--reps", "20000"]) == 0
    for name in ("aggregates.csv", "improvement.csv", "curves.csv"):
        assert read(os.path.join(out, name)) == read(os.path.join(micro_report, name))
    assert {r["method"] for r in read(os.path.join(out, "results.csv"))} == {"mappo A", "mappo B"}


def test_pooling_refuses_a_seed_twice_and_different_settings(tmp_path, capsys):
    fake_sweep(str(tmp_path / "one"), "3m", A, B, "win_rate")
    fake_sweep(str(tmp_path / "two"), "3m", A, B, "win_rate", first_seed=8, config_b={"clip_eps": 0.1})
    sweep = str(tmp_path / "one")
    assert main(["report", sweep, sweep, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is given twice: a run counts once" in err and len(err.splitlines()) == 1
    shutil.copytree(sweep, tmp_path / "copy")
    assert main(["report", sweep, str(tmp_path / "copy"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "seed 0 of mappo A on 3m is in both" in err and "a run counts once" in err
    assert main(["report", sweep, str(tmp_path / "two"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "are both mappo B on 3m but differ in config.clip_eps" in err
    assert not os.path.exists(tmp_path / "r")  # refused before anything is written


def test_one_env_of_a_mixed_folder_is_the_report_of_that_env_alone(micro_report, tmp_path, capsys):
    # a full grid's folder holds every map; --env reports one map as if it were alone
    fake_sweep(str(tmp_path / "grid"), "3m", A, B, "win_rate")
    fake_run(str(tmp_path / "grid" / "c"), "2s3z", B, "win_rate", config={"clip_eps": 0.1})
    out = str(tmp_path / "report")
    assert main(["report", str(tmp_path / "grid"), "--env", "3m", "--out", out,
                 "--reps", "20000"]) == 0
    for name in ("aggregates.csv", "improvement.csv", "curves.csv"):
        assert read(os.path.join(out, name)) == read(os.path.join(micro_report, name))
    assert open(os.path.join(out, "summary.md")).readline().strip() == (
        f"# Report: {tmp_path / 'grid'} (runs on 3m only)")
    assert main(["report", str(tmp_path / "grid"), "--env", "3m", "--env", "5m", "--out",
                 str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no runs on 5m in" in err and "(its runs are on 2s3z, 3m)" in err
    assert not os.path.exists(tmp_path / "r")


def test_at_reads_the_runs_as_they_stood_at_that_budget(tmp_path, capsys):
    # fake runs log at 100 and 200 steps, half their final value at 100: --at 150 is the
    # report at 100, every figure half the final one, the curves cut there
    fake_sweep(str(tmp_path / "sweep"), "3m", A, B, "win_rate")
    out = str(tmp_path / "report")
    assert main(["report", str(tmp_path / "sweep"), "--at", "150", "--out", out,
                 "--reps", "2000"]) == 0
    agg = aggregates(out)
    assert float(agg["mappo A", "IQM"]["estimate"]) == pytest.approx((0.2 + 0.3 + 0.4 + 0.5) / 8)
    assert float(agg["mappo B", "Mean"]["estimate"]) == pytest.approx(0.15)
    assert {r["env_steps"] for r in read(os.path.join(out, "curves.csv"))} == {"100"}
    assert "at each run's last logging point at or before 150 env steps (100)." in open(
        os.path.join(out, "summary.md")).read()
    capsys.readouterr()
    # a budget the runs never reached, or before their first point, is refused
    for at, message in (("300", "ends at 200 env steps, before --at 300"),
                        ("50", "no logging point at or before 50 env steps (its first is at 100)"),
                        ("0", "--at must be a positive number of env steps, got 0")):
        assert main(["report", str(tmp_path / "sweep"), "--at", at, "--out",
                     str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert not os.path.exists(tmp_path / "r")


def test_at_a_budget_an_unfinished_trial_has_reached_it_counts_as_finished(tmp_path):
    fake_sweep(str(tmp_path / "sweep"), "3m", A, B, "win_rate")
    for name in ("a", "b"):  # sweep trials, neither finished, both past 100 steps
        (tmp_path / "sweep" / name / "trial.yaml").write_text("algo: mappo\nenv: 3m\n")
    for at, named in (("100", False), ("300", True)):
        out = str(tmp_path / f"report{at}")
        assert main(["report", str(tmp_path / "sweep"), "--at", at, "--out", out,
                     "--reps", "1000"]) == 0
        assert ("Unfinished sweep trials" in open(os.path.join(out, "summary.md")).read()) == named


def test_summary_names_the_first_point_where_the_mean_reaches_a_level(micro_report, tmp_path):
    # the mean of A is 0.1875 at 100 steps and 0.375 at 200; B's 0.15 and 0.3
    summary = open(os.path.join(micro_report, "summary.md")).read()
    assert "| mean reaches 0.9 |" in summary and summary.count("| not reached |") == 2
    out = str(tmp_path / "report")
    assert main(["report", os.path.join(os.path.dirname(micro_report), "sweep"), "--out", out,
                 "--reps", "1000", "--reach", "0.18"]) == 0
    summary = open(os.path.join(out, "summary.md")).read()
    assert "| 3m | mappo A | 8 | 0.375 | " in summary
    lines = {line.split(" | ")[1]: line for line in summary.splitlines() if line.startswith("| 3m |")}
    assert lines["mappo A"].endswith("| 100 |") and lines["mappo B"].endswith("| 200 |")


def test_random_policy_score_matches_the_analytic_value():
    # identity, 2 agents, 4 actions, 10 steps: a random agent matches its cue 1/4 of the
    # time, so the team's return is 10/4; per-episode std ~0.97, 256 episodes
    score = report.random_score("identity", {}, "eval_return_mean")
    assert abs(score - 2.5) < 4 * 0.97 / np.sqrt(256)


def test_returns_normalised_from_random_to_best(tmp_path):
    fake_sweep(str(tmp_path / "sweep"), "identity", [6.0, 8.0], [9.0, 10.0], "return_mean")
    out = str(tmp_path / "report")
    assert main(["report", str(tmp_path / "sweep"), "--out", out, "--reps", "2000"]) == 0
    (norm,) = read(os.path.join(out, "normalisation.csv"))
    low, high = float(norm["low"]), float(norm["high"])
    assert abs(low - 2.5) < 0.25 and high == 9.5  # the best method's mean
    scores = {r["trial"] + r["seed"]: float(r["score"]) for r in read(os.path.join(out, "results.csv"))
              if r["final"] == "True"}
    assert scores["b1"] == pytest.approx((10.0 - low) / (high - low), rel=1e-5)  # 6 digits
    given = str(tmp_path / "given")
    assert main(["report", str(tmp_path / "sweep"), "--out", given, "--reps", "2000",
                 "--best", "identity=12"]) == 0
    assert float(read(os.path.join(given, "normalisation.csv"))[0]["high"]) == 12.0


@pytest.mark.parametrize("args, message", [
    (["--best", "identity"], "--best expects TASK=VALUE"),
    (["--reps", "10"], "--reps must be at least 100"),
    (["--reach", "0"], "--reach must be a positive level of the normalised score, got 0"),
    (["--metric", "touches"], "has no column 'touches'"),
])
def test_bad_input_is_one_line(micro_report, args, message, capsys, tmp_path):
    sweep_dir = os.path.join(os.path.dirname(micro_report), "sweep")
    assert main(["report", sweep_dir, "--out", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_folder_without_runs_is_refused(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "holds no run folders" in capsys.readouterr().err


def test_unfinished_sweep_trials_are_named(tmp_path):
    fake_sweep(str(tmp_path / "sweep"), "3m", A, B, "win_rate")
    for name in ("a", "b"):  # sweep trials: a trial.yaml each; only a has finished
        (tmp_path / "sweep" / name / "trial.yaml").write_text("algo: mappo\nenv: 3m\n")
    (tmp_path / "sweep" / "a" / "done.json").write_text("{}")
    out = str(tmp_path / "report")
    assert main(["report", str(tmp_path / "sweep"), "--out", out, "--reps", "1000"]) == 0
    summary = open(os.path.join(out, "summary.md")).read()
    assert "Unfinished sweep trials (figures at their last point so far): b." in summary


def test_random_policy_score_on_a_micro_map_samples_from_the_wrapped_state():
    # --metric return_mean on a micro map: the random policy plays only available actions
    # through the training wrappers' state (it read the wrapped state as a raw one)
    kills = report.random_score("3m", {}, "eval_dead_enemies", episodes=16)
    assert 0.0 <= kills <= 3.0
