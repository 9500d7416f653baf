"""``ctde report DIR [DIR ...] --out REPORT``: the statistics of a sweep (or of any run
folders; several folders pool each method's seeds).

Every figure of uncertainty comes from ``rliable`` (Agarwal et al. 2021): per-task learning
curves with 95 % stratified-bootstrap bands, aggregate IQM, mean, median and optimality
gap with stratified-bootstrap confidence intervals, probability of improvement between
methods and performance profiles. Scores are normalised per task before aggregation:
the win rate as it is on micromanagement maps (already in [0, 1]); elsewhere the return
from a uniformly random policy (measured here, on the trials' own env settings) to the
best known one (the best method's mean in this report, or ``--best TASK=VALUE``).

A *run* is one seed of a trial; a *method* is an algorithm with its grid axes and
variant; a *task* is an env with its env-parameter axes. Written to REPORT:
``results.csv`` (tidy: one row per run and logging point), ``aggregates.csv``,
``improvement.csv``, ``profiles.csv``, ``normalisation.csv``, figures, ``summary.md``
and ``marl_eval.json`` (the JSON layout of marl-eval, used by Mava and BenchMARL).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys

import numpy as np

from ctde.run.spec import load_yaml, read_spec

AGGREGATES = ("Median", "IQM", "Mean", "Optimality Gap")
CONFIDENCE = 0.95


# --------------------------------------------------------------------------- collecting


def find_runs(directory: str) -> list[tuple[str, dict]]:
    """(run folder, labels) of every run under ``directory`` (a sweep folder, a run
    folder, or a folder of run folders), in a fixed order. A sweep's trial named on its
    own keeps the labels its sweep gave it (``mappo critic_EP``), so chosen trials of one
    sweep report as they do in the whole sweep's report."""
    if os.path.exists(os.path.join(directory, "config.yaml")):
        parent, name = os.path.split(os.path.normpath(directory))
        return [(directory, _sweep_labels(parent or ".").get(name, {}))]
    labels = _sweep_labels(directory)
    runs = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.exists(os.path.join(path, "config.yaml")) and os.path.exists(
                os.path.join(path, "metrics.csv")):
            runs.append((path, labels.get(name, {})))
    if not runs:
        raise ValueError(f"{directory} holds no run folders (config.yaml and metrics.csv)")
    return runs


def _sweep_labels(directory: str) -> dict:
    """Trial name -> its grid labels, from a sweep folder's sweep.yaml ({} elsewhere)."""
    sweep_file = os.path.join(directory, "sweep.yaml")
    return (load_yaml(sweep_file).get("labels") or {}) if os.path.exists(sweep_file) else {}


def _label(name: str, labels: dict, env_axes: bool) -> str:
    parts = [name]
    for key, value in labels.items():
        if key.startswith("env.") != env_axes:
            continue
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(text if key == "variant" else f"{key.removeprefix('env.')}={text}")
    return " ".join(parts)


def default_metric(env_name: str, env_params: dict) -> str:
    """win_rate on micromanagement maps, return_mean elsewhere."""
    from ctde import envs

    return "win_rate" if "won" in envs.make(env_name, **env_params).metrics else "return_mean"


def _differences(a: dict, b: dict) -> list[str]:
    """The settings where two runs differ, by name (``config.lr``)."""
    out = []
    for key in a:
        if isinstance(a[key], dict):
            out += [f"{key}.{name}" for name in sorted(set(a[key]) | set(b[key]))
                    if a[key].get(name) != b[key].get(name)]
        elif a[key] != b[key]:
            out.append(key)
    return out


def collect(directories: str | list[str], metric: str | None = None,
            use_eval: bool = True, envs: list[str] | None = None,
            at: int | None = None) -> list[dict]:
    """Tidy rows: one per run (seed of a trial) and logging point, with the metric's value.
    Runs of one method on one task pool across ``directories`` (seeds added by a later
    sweep), when they share every setting but their seeds and no seed is there twice.
    ``envs``, if given, keeps only the runs on those envs (one map of a full grid); ``at``,
    only the logging points at or before that many env steps (the runs as they stood
    then: a smaller budget read from longer runs)."""
    if isinstance(directories, str):
        directories = [directories]
    rows = []
    present: set = set()  # the envs of every run read, for an error naming them
    first: dict = {}  # (method, task) -> (run folder, settings) of its first run
    where: dict = {}  # (method, task, seed) -> run folder
    seen: set = set()  # run folders read
    for path, labels in (run for d in directories for run in find_runs(d)):
        if os.path.realpath(path) in seen:
            raise ValueError(f"{path} is given twice: a run counts once")
        seen.add(os.path.realpath(path))
        spec = read_spec(path)
        present.add(spec.env)
        if envs and spec.env not in envs:
            continue
        method = _label(spec.algo, labels, env_axes=False)
        task = _label(spec.env, labels, env_axes=True)
        settings = {k: getattr(spec, k) for k in ("env_params", "config", "steps", "eval_episodes")}
        other, theirs = first.setdefault((method, task), (path, settings))
        differ = _differences(settings, theirs)
        if differ:
            raise ValueError(f"{path} and {other} are both {method} on {task} but differ in "
                             f"{', '.join(differ)}: their runs cannot pool as one method's seeds")
        name = metric or default_metric(spec.env, spec.env_params)
        with open(os.path.join(path, "metrics.csv"), newline="") as f:
            table = list(csv.DictReader(f))
        column = f"eval_{name}" if use_eval and table and table[0].get(f"eval_{name}") else name
        if table and column not in table[0]:
            raise ValueError(f"{path}/metrics.csv has no column {column!r}")
        for seed in sorted({int(r["seed"]) for r in table}):
            if where.setdefault((method, task, seed), path) != path:
                raise ValueError(f"seed {seed} of {method} on {task} is in both "
                                 f"{where[method, task, seed]} and {path}: a run counts once")
        points = [int(float(r["env_steps"])) for r in table]
        last = max(points, default=0)
        # a sweep trial without done.json is still running (or was stopped)
        unfinished = os.path.exists(os.path.join(path, "trial.yaml")) and not os.path.exists(
            os.path.join(path, "done.json"))
        if at is not None and table:
            if not unfinished and last < at:
                raise ValueError(f"{path} ends at {last:,} env steps, before --at {at:,}")
            if min(points) > at:
                raise ValueError(f"{path} has no logging point at or before {at:,} env steps "
                                 f"(its first is at {min(points):,})")
            table = [r for r, s in zip(table, points, strict=True) if s <= at]
            unfinished = unfinished and last < at
            last = max(s for s in points if s <= at)
        for r in table:
            value = float(r[column]) if r[column] not in ("", None) else float("nan")
            steps = int(float(r["env_steps"]))
            rows.append({
                "trial": os.path.basename(os.path.normpath(path)), "algo": spec.algo,
                "method": method, "task": task, "env": spec.env,
                "env_params": json.dumps(spec.env_params, sort_keys=True),
                "seed": int(r["seed"]), "env_steps": steps, "metric": column,
                "value": value, "final": steps == last, "unfinished": unfinished,
            })
    missing = sorted(set(envs or ()) - present)
    if missing:
        raise ValueError(f"no runs on {', '.join(missing)} in {', '.join(directories)} "
                         f"(its runs are on {', '.join(sorted(present))})")
    return rows


# --------------------------------------------------------------------------- normalising


def random_score(env_name: str, env_params: dict, metric: str, episodes: int = 256,
                 seed: int = 0) -> float:
    """The mean of ``metric`` (a per-episode metric as in metrics.csv) over ``episodes``
    episodes of uniformly random available actions."""
    import jax

    from ctde import envs
    from ctde.algos.common.episodes import episode_sums
    from ctde.envs.wrappers import training_env
    from ctde.run.runner import summarise

    env = training_env(envs.make(env_name, **env_params))

    @jax.jit
    def play(key):
        k_reset, k_run = jax.random.split(key)
        _, state = jax.vmap(env.reset)(jax.random.split(k_reset, episodes))
        finished = jax.numpy.zeros(episodes, bool)

        def step(carry, key):
            state, finished = carry
            k_act, k_env = jax.random.split(key)
            actions = jax.vmap(env.sample_actions)(jax.random.split(k_act, episodes), state)
            _, state, _, _, _, info = jax.vmap(env.step)(jax.random.split(k_env, episodes), state,
                                                         actions)
            first = info["episode_done"] & ~finished  # each env's first episode only
            return (state, finished | info["episode_done"]), {"episode_done": first,
                                                              "episode": info["episode"]}

        _, info = jax.lax.scan(step, (state, finished), jax.random.split(k_run, env.max_steps))
        return episode_sums(info, env.teams, env.team_names, env.metrics)

    sums = jax.device_get(play(jax.random.PRNGKey(seed)))
    means = summarise({k: np.asarray(v)[None] for k, v in sums.items()})
    name = metric.removeprefix("eval_")
    if name not in means:
        raise ValueError(f"{env_name} has no metric {name!r} (has {', '.join(means)})")
    return float(means[name][0])


def normalisation(rows: list[dict], best: dict | None = None) -> dict:
    """task -> (low, high, how): scores are (value - low) / (high - low)."""
    best = best or {}
    out = {}
    for task in sorted({r["task"] for r in rows}):
        at = [r for r in rows if r["task"] == task]
        metric = at[0]["metric"]
        if metric.removeprefix("eval_") == "win_rate":
            out[task] = (0.0, 1.0, "win rate (already in [0, 1])")
            continue
        low = random_score(at[0]["env"], json.loads(at[0]["env_params"]), metric)
        if task in best:
            high, source = float(best[task]), "given with --best"
        else:
            finals = {}
            for r in at:
                if r["final"]:
                    finals.setdefault(r["method"], []).append(r["value"])
            high = max(float(np.nanmean(v)) for v in finals.values())
            source = "best method's mean here"
        if high <= low:
            raise ValueError(f"{task}: the best known score {high:.4g} is not above a random "
                             f"policy's {low:.4g}; give one with --best {task.split()[0]}=VALUE")
        out[task] = (low, high, f"random policy {low:.4g} -> 0, best known {high:.4g} -> 1 ({source})")
    return out


def final_scores(rows: list[dict], norm: dict) -> tuple[dict, list[str]]:
    """method -> normalised final scores [runs, tasks] (rliable's layout), and the tasks.
    A method needs every task; runs are cut to the fewest any task has."""
    tasks = sorted(norm)
    scores = {}
    for method in sorted({r["method"] for r in rows}):
        columns = []
        for task in tasks:
            low, high, _ = norm[task]
            values = [(r["value"] - low) / (high - low) for r in rows
                      if r["method"] == method and r["task"] == task and r["final"]]
            columns.append(values)
        if all(columns):
            runs = min(len(c) for c in columns)
            scores[method] = np.array([c[:runs] for c in columns]).T
    if not scores:
        raise ValueError("no method has results on every task")
    return scores, tasks


# --------------------------------------------------------------------------- statistics


@contextlib.contextmanager
def _numpy_seeded(seed: int):
    """numpy's global generator seeded for the block, then restored: rliable draws its
    bootstrap indices from it (np.random.choice), whatever random_state it is given."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _estimates(scores: dict, func, reps: int, seed: int):
    """rliable's stratified-bootstrap point estimates and percentile CIs, reproducibly
    (its ``random_state`` seeds only arch's generator, which the percentile method does
    not draw from)."""
    from rliable import library as rly

    with _numpy_seeded(seed):
        return rly.get_interval_estimates(scores, func, reps=reps, confidence_interval_size=CONFIDENCE)


def aggregate_estimates(scores: dict, reps: int = 50_000, seed: int = 0) -> dict:
    """method -> {aggregate: (point estimate, low, high)}: stratified bootstrap CIs."""
    from rliable import metrics

    def aggregates(x):
        return np.array([metrics.aggregate_median(x), metrics.aggregate_iqm(x),
                         metrics.aggregate_mean(x), metrics.aggregate_optimality_gap(x)])

    points, intervals = _estimates(scores, aggregates, reps, seed)
    return {m: {name: (float(points[m][i]), float(intervals[m][0, i]), float(intervals[m][1, i]))
                for i, name in enumerate(AGGREGATES)} for m in scores}


def improvement_estimates(scores: dict, reps: int = 2_000, seed: int = 0) -> dict:
    """(X, Y) -> P(X > Y) with its stratified-bootstrap CI, for every pair of methods."""
    from rliable import metrics

    methods = list(scores)
    names = {f"{i},{j}": (x, y) for i, x in enumerate(methods) for j, y in enumerate(methods) if i < j}
    if not names:
        return {}
    pairs = {k: (scores[x], scores[y]) for k, (x, y) in names.items()}
    points, intervals = _estimates(pairs, metrics.probability_of_improvement, reps, seed)
    return {names[k]: (float(points[k]), *map(float, np.ravel(intervals[k]))) for k in pairs}


def profiles(scores: dict, taus: np.ndarray, reps: int = 2_000, seed: int = 0) -> tuple[dict, dict]:
    """Performance profiles: the fraction of runs above each tau, with bootstrap CIs."""
    from rliable import library as rly

    with _numpy_seeded(seed):  # rliable draws the profile bootstrap from numpy's global generator
        return rly.create_performance_profile(scores, taus, reps=reps,
                                              confidence_interval_size=CONFIDENCE)


def curves(rows: list[dict], reps: int = 2_000, seed: int = 0) -> list[dict]:
    """Learning curves per task and method: the mean over runs at each logging point with
    its 95 % bootstrap band (runs resampled with replacement, rliable)."""

    out = []
    for task in sorted({r["task"] for r in rows}):
        for method in sorted({r["method"] for r in rows if r["task"] == task}):
            at = [r for r in rows if r["task"] == task and r["method"] == method]
            steps = sorted({r["env_steps"] for r in at})
            seeds = sorted({(r["trial"], r["seed"]) for r in at})
            grid = np.full((len(seeds), len(steps)), np.nan)
            for r in at:
                grid[seeds.index((r["trial"], r["seed"])), steps.index(r["env_steps"])] = r["value"]
            keep = ~np.isnan(grid).any(0)  # points every run logged
            grid, kept = grid[:, keep], [s for s, k in zip(steps, keep, strict=True) if k]
            if not kept:
                continue
            points, intervals = _estimates({method: grid[:, None, :]},
                                           lambda s: s.mean(axis=(0, 1)), reps, seed)
            for j, s in enumerate(kept):
                out.append({"task": task, "method": method, "env_steps": s,
                            "mean": float(points[method][j]), "low": float(intervals[method][0, j]),
                            "high": float(intervals[method][1, j]), "runs": len(seeds)})
    return out


def first_reach(curve_rows: list[dict], norm: dict, level: float) -> dict:
    """(task, method) -> the first logging point where the mean over runs reaches ``level``
    of the normalised score, or None: how fast a method learns, where the final figures
    of methods that all end at the ceiling cannot tell them apart."""
    out = {(c["task"], c["method"]): None for c in curve_rows}
    for c in curve_rows:  # in order of env steps within each task and method
        low, high, _ = norm[c["task"]]
        key = (c["task"], c["method"])
        if out[key] is None and (c["mean"] - low) / (high - low) >= level:
            out[key] = c["env_steps"]
    return out


# --------------------------------------------------------------------------- marl-eval


def marl_eval(rows: list[dict]) -> dict:
    """The marl-eval layout: env family -> task -> algorithm -> run_i -> step_k
    {step_count, metric: [values]} plus absolute_metrics (the final point). Each list
    holds one value: the mean over that logging point's evaluation episodes."""
    from ctde import envs

    families = {}
    for env in sorted({r["env"] for r in rows}):
        module = type(envs.make(env).unwrapped).__module__
        families[env] = next((f for f in ("mpe", "micro") if f".{f}" in module), env)
    grouped: dict = {}
    for r in rows:
        key = (families[r["env"]], r["task"].replace(" ", "_"), r["method"].replace(" ", "_"))
        grouped.setdefault(key, {}).setdefault((r["trial"], r["seed"]), []).append(r)
    data: dict = {}
    for (family, task, method), runs in sorted(grouped.items()):
        out = data.setdefault(family, {}).setdefault(task, {}).setdefault(method, {})
        for i, run_key in enumerate(sorted(runs)):
            points = sorted(runs[run_key], key=lambda r: r["env_steps"])
            name = points[0]["metric"].removeprefix("eval_").replace("return_mean", "return")
            run = {f"step_{k}": {"step_count": p["env_steps"], name: [p["value"]]}
                   for k, p in enumerate(points)}
            run["absolute_metrics"] = {name: [points[-1]["value"]]}
            out[f"run_{i}"] = run
    return data


# --------------------------------------------------------------------------- the report


def write_report(directories: str | list[str], out: str, metric: str | None = None,
                 use_eval: bool = True, best: dict | None = None, reps: int = 50_000,
                 seed: int = 0, envs: list[str] | None = None, at: int | None = None,
                 reach: float = 0.9) -> dict:
    """Every file of the report under ``out`` (of the runs under ``directories``, those on
    ``envs`` only and up to ``at`` env steps if given); returns the figures computed."""
    try:
        import rliable  # noqa: F401
    except ImportError:
        raise ValueError("ctde report needs rliable: pip install 'ctde[report]'") from None
    directories = [directories] if isinstance(directories, str) else list(directories)
    rows = collect(directories, metric, use_eval, envs, at)
    norm = normalisation(rows, best)
    for r in rows:
        low, high, _ = norm[r["task"]]
        r["score"] = (r["value"] - low) / (high - low)
    scores, tasks = final_scores(rows, norm)
    small = max(1000, reps // 25)  # pairs, profiles and curves: many more estimates
    result = {
        "rows": rows, "normalisation": norm, "scores": scores, "tasks": tasks, "envs": envs,
        "at": at,
        "aggregates": aggregate_estimates(scores, reps, seed),
        "improvement": improvement_estimates(scores, small, seed),
        "curves": curves(rows, small, seed),
    }
    result["reach"] = (reach, first_reach(result["curves"], norm, reach))
    taus = np.linspace(0.0, max(1.0, max(float(np.nanmax(s)) for s in scores.values())), 101)
    result["profiles"] = (taus, *profiles(scores, taus, small, seed))
    os.makedirs(out, exist_ok=True)
    _write_csv(os.path.join(out, "results.csv"), rows)
    _write_csv(os.path.join(out, "normalisation.csv"),
               [{"task": t, "low": lo, "high": hi, "how": how} for t, (lo, hi, how) in norm.items()])
    _write_csv(os.path.join(out, "aggregates.csv"), [
        {"method": m, "aggregate": a, "estimate": e, "ci_low": lo, "ci_high": hi,
         "runs": scores[m].shape[0], "tasks": scores[m].shape[1]}
        for m, values in result["aggregates"].items() for a, (e, lo, hi) in values.items()])
    _write_csv(os.path.join(out, "improvement.csv"), [
        {"x": x, "y": y, "p_x_better": p, "ci_low": lo, "ci_high": hi}
        for (x, y), (p, lo, hi) in result["improvement"].items()])
    _write_csv(os.path.join(out, "curves.csv"), result["curves"])
    taus, profile, profile_ci = result["profiles"]
    _write_csv(os.path.join(out, "profiles.csv"), [
        {"method": m, "tau": float(t), "fraction": float(profile[m][i]),
         "ci_low": float(profile_ci[m][0][i]), "ci_high": float(profile_ci[m][1][i])}
        for m in profile for i, t in enumerate(taus)])
    with open(os.path.join(out, "marl_eval.json"), "w") as f:
        json.dump(marl_eval(rows), f, indent=1)
    _figures(result, out)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(summary_markdown(result, directories, reps))
    return result


def _write_csv(path: str, rows: list[dict]) -> None:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()}
                         for r in rows)


def _figures(result: dict, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import plot_utils

    tasks = sorted({c["task"] for c in result["curves"]})
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for method in sorted({c["method"] for c in result["curves"] if c["task"] == task}):
            at = [c for c in result["curves"] if c["task"] == task and c["method"] == method]
            x = [c["env_steps"] for c in at]
            ax.plot(x, [c["mean"] for c in at], label=method)
            ax.fill_between(x, [c["low"] for c in at], [c["high"] for c in at], alpha=0.25)
        metric = next(r["metric"] for r in result["rows"] if r["task"] == task)
        ax.set(title=task, xlabel="env steps", ylabel=metric)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "curves.png"), dpi=110)
    plt.close(fig)

    methods = list(result["aggregates"])
    points = {m: np.array([result["aggregates"][m][a][0] for a in AGGREGATES]) for m in methods}
    intervals = {m: np.array([[result["aggregates"][m][a][1] for a in AGGREGATES],
                              [result["aggregates"][m][a][2] for a in AGGREGATES]]) for m in methods}
    fig, _ = plot_utils.plot_interval_estimates(points, intervals, metric_names=list(AGGREGATES),
                                                algorithms=methods, xlabel="normalised score",
                                                subfigure_width=3.4, row_height=0.5)
    fig.savefig(os.path.join(out, "aggregates.png"), dpi=110, bbox_inches="tight")
    plt.close(fig)

    taus, profile, profile_ci = result["profiles"]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    plot_utils.plot_performance_profiles(profile, taus, performance_profile_cis=profile_ci,
                                         xlabel=r"normalised score $\tau$", ax=ax)
    ax.legend(methods, fontsize="small")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "profiles.png"), dpi=110)
    plt.close(fig)

    if result["improvement"]:
        probs = {f"{x},{y}": p for (x, y), (p, _, _) in result["improvement"].items()}
        cis = {f"{x},{y}": np.array([lo, hi]) for (x, y), (_, lo, hi) in result["improvement"].items()}
        plot_utils.plot_probability_of_improvement(probs, cis, figsize=(5, 0.6 + 0.5 * len(probs)))
        plt.savefig(os.path.join(out, "improvement.png"), dpi=110, bbox_inches="tight")
        plt.close("all")


def summary_markdown(result: dict, directories: list[str], reps: int) -> str:
    rows, norm = result["rows"], result["normalisation"]
    unfinished = sorted({r["trial"] for r in rows if r.get("unfinished")})
    only = f" (runs on {', '.join(result['envs'])} only)" if result.get("envs") else ""
    point = "last logging point"
    if result.get("at") is not None:
        steps = sorted({r["env_steps"] for r in rows if r["final"]})
        point += (f" at or before {result['at']:,} env steps "
                  f"({', '.join(f'{s:,}' for s in steps)})")
    lines = [f"# Report: {', '.join(directories)}{only}", "",
             f"{len({(r['trial'], r['seed']) for r in rows})} runs (seeds) of "
             f"{len({r['trial'] for r in rows})} trials; metric "
             f"`{', '.join(sorted({r['metric'] for r in rows}))}` at each run's {point}. "
             f"Intervals are {CONFIDENCE:.0%} stratified-bootstrap confidence intervals "
             f"({reps:,} resamples for the aggregates), computed with rliable."
             + (f" Unfinished sweep trials (figures at their last point so far): "
                f"{', '.join(unfinished)}." if unfinished else ""), "",
             "## Normalisation", "", "| task | score 0 | score 1 | how |", "|---|---:|---:|---|"]
    lines += [f"| {t} | {lo:.4g} | {hi:.4g} | {how} |" for t, (lo, hi, how) in norm.items()]
    level, reached = result["reach"]
    lines += ["", "## Final figures per task (raw metric, mean over runs)", "",
              f"The last column is the first logging point where the mean over runs reaches "
              f"{level:g} of the normalised score.", "",
              f"| task | method | runs | mean | 95 % CI | mean reaches {level:g} |",
              "|---|---|---:|---:|---|---:|"]
    last = {}
    for c in result["curves"]:
        last[(c["task"], c["method"])] = c
    lines += [f"| {t} | {m} | {c['runs']} | {c['mean']:.4g} | [{c['low']:.4g}, {c['high']:.4g}] | "
              + (f"{reached[t, m]:,} |" if reached[t, m] is not None else "not reached |")
              for (t, m), c in sorted(last.items())]
    lines += ["", "## Aggregates over tasks (normalised scores)", "",
              "| method | " + " | ".join(AGGREGATES) + " |", "|---|" + "---:|" * len(AGGREGATES)]
    for method, values in result["aggregates"].items():
        lines.append(f"| {method} | " + " | ".join(
            f"{e:.3f} [{lo:.3f}, {hi:.3f}]" for e, lo, hi in values.values()) + " |")
    if result["improvement"]:
        lines += ["", "## Probability of improvement", "", "| X | Y | P(X > Y) | 95 % CI |",
                  "|---|---|---:|---|"]
        lines += [f"| {x} | {y} | {p:.3f} | [{lo:.3f}, {hi:.3f}] |"
                  for (x, y), (p, lo, hi) in result["improvement"].items()]
    lines += ["", "Figures: `curves.png` (learning curves, 95 % bootstrap bands), `aggregates.png`, "
              "`profiles.png` (performance profiles)"
              + (", `improvement.png`" if result["improvement"] else "") + ". Data: `results.csv` "
              "(tidy), `curves.csv`, `aggregates.csv`, `improvement.csv`, `profiles.csv`, "
              "`normalisation.csv`, `marl_eval.json` (marl-eval layout).", ""]
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("report", help="statistics of a sweep's runs (rliable)",
                              description="Learning curves, IQM/mean/median/optimality gap with "
                              "stratified-bootstrap CIs, probability of improvement, performance "
                              "profiles, a markdown summary and a marl-eval JSON export.")
    p.add_argument("runs", metavar="DIR", nargs="+",
                   help="a sweep folder, a run folder or a folder of runs; several pool the "
                   "seeds of each method and task (e.g. a second sweep with more seeds)")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--metric", help="metrics.csv column (default: win_rate on micro maps, "
                   "return_mean elsewhere)")
    p.add_argument("--train-episodes", dest="use_eval", action="store_false",
                   help="use the training episodes' metric, not the deterministic evaluation's")
    p.add_argument("--best", action="append", default=[], metavar="TASK=VALUE",
                   help="best known score of a task (normalised to 1); default: the best method's")
    p.add_argument("--env", dest="envs", action="append", metavar="ENV",
                   help="report only the runs on this env (repeatable), e.g. one map of a "
                   "full grid's folder")
    p.add_argument("--at", type=float, metavar="STEPS",
                   help="the figures at this many env steps (each run's last logging point at "
                   "or before it), e.g. 5e5 to read a 2 M-step sweep at 500 k")
    p.add_argument("--reach", type=float, default=0.9, metavar="LEVEL",
                   help="the summary names the first logging point where each method's mean "
                   "normalised score reaches LEVEL (default 0.9)")
    p.add_argument("--reps", type=int, default=50_000, help="bootstrap resamples (aggregates)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap random seed")
    p.set_defaults(func=cmd_report)


def cmd_report(args, extra) -> int:
    best = {}
    for item in args.best:
        task, eq, value = item.rpartition("=")
        try:
            best[task] = float(value)
        except ValueError:
            task = ""
        if not eq or not task:
            raise ValueError(f"--best expects TASK=VALUE, got {item!r}")
    if args.reps < 100:
        raise ValueError(f"--reps must be at least 100, got {args.reps}")
    if args.at is not None and not 0 < args.at < float("inf"):
        raise ValueError(f"--at must be a positive number of env steps, got {args.at:g}")
    if not 0 < args.reach < float("inf"):
        raise ValueError(f"--reach must be a positive level of the normalised score, "
                         f"got {args.reach:g}")
    at = None if args.at is None else int(args.at)
    result = write_report(args.runs, args.out, args.metric, args.use_eval, best, args.reps,
                          args.seed, args.envs, at, args.reach)
    print(summary_markdown(result, args.runs, args.reps))
    print(f"report written to {args.out}", file=sys.stderr)
    return 0
