"""``ctde``: train, evaluate and render multi-agent actor-critic runs.

    ctde train mappo simple_spread --steps 2e6 --seeds 4 --out runs/x [--lr ...] [--env.N 4]
    ctde train --resume runs/x
    ctde eval runs/x
    ctde render runs/x --out x.gif          (or an env name: a random policy)
    ctde plot runs/x runs/y --out curve.png
    ctde envs | ctde algos | ctde demo
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_STARTED = time.perf_counter()  # the command's wall time is reported from here
USAGE_ERROR = 2
DIVERGED = 3  # a NaN or inf stopped training


class UsageError(ValueError):
    pass


def host_devices(seeds: int, algo: str = "", cores: int | None = None) -> int:
    """How many CPU cores the CLI exposes as devices for ``seeds`` seeds of ``algo``: the
    most that divide the seed count evenly, or, for an algorithm that can split a seed's
    batches (``ctde.algos.SPLITS_BATCHES``) and fewer seeds than cores, the most that
    the seed count divides (each seed then runs on several). ``cores``: the cores to use
    (default all of this machine's; a sweep trial gets its share)."""
    from ctde.algos.registry import SPLITS_BATCHES  # no JAX import

    cores = cores or os.cpu_count() or 1
    if algo in SPLITS_BATCHES and seeds < cores:
        return max(d for d in range(seeds, cores + 1) if d % seeds == 0)
    return max(d for d in range(1, min(seeds, cores) + 1) if seeds % d == 0)


def _set_host_devices(seeds: int, algo: str) -> None:
    """Expose the CPU cores as devices so seeds run side by side (must precede jax import)."""
    if "jax" in sys.modules or "xla_force_host_platform_device_count" in os.environ.get(
        "XLA_FLAGS", ""
    ):
        return
    devices = host_devices(seeds, algo)
    if devices > 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()


def parse_overrides(tokens: list[str]) -> tuple[dict, dict]:
    """``--name value`` / ``--name=value`` pairs -> (algorithm settings, env params)."""
    config, env_params = {}, {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or len(token) == 2:
            raise UsageError(f"unexpected argument {token!r}")
        name, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 >= len(tokens) or tokens[i + 1].startswith("--"):
                raise UsageError(f"option --{name} needs a value")
            value = tokens[i + 1]
            i += 1
        i += 1
        if name.startswith("env."):
            from ctde.run.spec import env_param_value

            env_params[name[4:]] = env_param_value(value)
        else:
            config[name.replace("-", "_")] = value
    return config, env_params


def cmd_train(args, extra: list[str]) -> int:
    from ctde.run.spec import RUN_FIELDS, SAVED_ONLY, load_yaml, spec_from_dict

    if args.resume:
        given = [f"--{f.replace('_', '-')}" for f in ("steps", "seeds", "seed", "log_every",
                 "eval_episodes", "checkpoint_every", "keep_checkpoints", "config", "out")
                 if getattr(args, f) is not None]
        if args.algo or extra or given:
            what = " ".join(given + extra) or args.algo
            raise UsageError(f"--resume carries on the run as it was saved and takes no settings "
                             f"({what}): ctde train --resume RUN [--checkpoint STEPS]")
        from ctde.run.spec import read_spec

        spec = read_spec(args.resume)
        _set_host_devices(spec.seeds, spec.algo)
        return _train(spec, args.resume, resume=True, progress=not args.no_progress,
                      which=args.checkpoint)
    if args.checkpoint is not None:
        raise UsageError("--checkpoint picks the checkpoint of a --resume")

    base: dict = {}
    if args.config:  # the file's settings; the command line wins
        base = load_yaml(args.config)
        if not isinstance(base, dict):
            raise ValueError(f"{args.config} must hold a YAML mapping")
        from ctde.run.spec import resolve_files

        base = resolve_files(base, os.path.dirname(os.path.abspath(args.config)))
        for key in SAVED_ONLY:  # what the run recorded, not what to train
            base.pop(key, None)
    base.update({k: v for k, v in (("algo", args.algo), ("env", args.env)) if v})
    if not base.get("algo") or not base.get("env"):
        raise UsageError("usage: ctde train ALGO ENV [--steps N] [--seeds K] [--out DIR] [--FIELD V]")
    config, env_params = parse_overrides(extra)
    for field in RUN_FIELDS:  # run settings given through the generic --field form
        if field in config:
            base[field] = config.pop(field)
    base["config"] = {**(base.get("config") or {}), **config}
    base["env_params"] = {**(base.get("env_params") or {}), **env_params}
    for field in ("steps", "seeds", "seed", "log_every", "eval_episodes", "checkpoint_every",
                  "keep_checkpoints"):
        value = getattr(args, field)
        if value is not None:
            base[field] = value
    spec = spec_from_dict(base)
    _set_host_devices(spec.seeds, spec.algo)
    out = args.out or os.path.join("runs", f"{spec.algo}_{spec.env}_{time.strftime('%Y%m%d-%H%M%S')}")
    return _train(spec, out, resume=False, progress=not args.no_progress)


def _train(spec, out: str, resume: bool, progress: bool, which: str | None = None) -> int:
    from ctde.run import checkpoint
    from ctde.run.runner import Diverged, build, train

    try:
        _, plan = build(spec)
        print(f"{'resuming' if resume else 'training'} {spec.algo} on {spec.env} -> {out}: "
              f"{plan.total_steps:,} env steps per seed ({plan.total_updates:,} updates of "
              f"{plan.steps_per_update:,}, logged every {plan.steps_per_segment:,})", flush=True)
        notice = _shared_policy_notice(spec)
        if notice:
            print(notice, flush=True)
        summary = train(spec, out, resume=resume, progress=progress, which=which)
    except Diverged as e:
        print(f"ctde: error: {e}", file=sys.stderr)
        return DIVERGED
    except KeyboardInterrupt:  # a second interrupt: stopped at once, the last checkpoint stands
        summary = {"interrupted": 2, "checkpoint": None, "finished": False}
    if summary["interrupted"] and not summary["finished"]:  # a signal at the very end: done
        code = 128 + summary["interrupted"]
        if not checkpoint.latest(os.path.join(out, "checkpoints")):
            print(f"\ninterrupted before the first logging point: nothing to resume in {out} "
                  "(run the command again to start afresh)", file=sys.stderr)
        else:
            done = summary["checkpoint"]
            at = f" from env step {done:,}" if isinstance(done, int) else ""
            print(f"\ninterrupted; carry on{at} with: ctde train --resume {out}", file=sys.stderr)
        return code
    _print_summary(out, summary, spec)
    return 0


def _shared_policy_notice(spec) -> str | None:
    """One line when one shared policy plays every side of a competitive env."""
    from ctde import algos
    from ctde.run.spec import validate

    env, _ = validate(spec)
    capabilities = getattr(algos.get(spec.algo), "CAPABILITIES", {})
    shared = capabilities.get("shared_policy", not capabilities.get("competitive", False))
    if env.num_teams < 2 or not shared:
        return None
    return (f"note: {spec.algo} trains one shared policy for every agent, so on {spec.env} the "
            f"teams ({', '.join(env.team_names)}) are self-play of one network and return_mean "
            "averages them (per-team returns follow); for a learner per team see maddpg --team-algos")


def _print_summary(out: str, summary: dict, spec=None) -> None:
    import numpy as np

    rows = summary["last_rows"]
    if not rows:
        return

    def mean(key):  # over seeds; nan when the column is empty (e.g. no evaluation)
        values = np.array([float("nan") if r.get(key) in (None, "") else float(r[key]) for r in rows])
        return float(np.nanmean(values)) if not np.isnan(values).all() else float("nan")

    def with_teams(key):  # "return_mean 0.187 (adversary 6.090, agent -17.530)"
        if key.startswith("eval_") and np.isnan(mean(key)):  # --eval-episodes 0
            return "no evaluation"
        teams = [k[len(key) + 1:] for k in rows[0] if k.startswith(key + "_")]
        parts = ", ".join(f"{t} {mean(f'{key}_{t}'):.3f}" for t in teams)
        return f"{key} {mean(key):.3f}" + (f" ({parts})" if parts else "")

    sps = summary["env_steps"] * len(rows) / max(summary["wall_s"], 1e-9)
    devices, per_seed = summary.get("devices", 1), summary.get("devices_per_seed", 1)
    on = f" on {devices} devices" if devices > 1 else ""
    if per_seed > 1:
        on += f" ({per_seed} per seed, sharing its batches)"
    on += _device_reason(len(rows), devices, spec)
    total = time.perf_counter() - _STARTED
    seeds = f"{len(rows)} seed{'s' * (len(rows) > 1)}"
    print(
        f"done: {summary['env_steps']:,} env steps x {seeds}{on} in {summary['wall_s']:.1f} s "
        f"of training (+ compile {summary['compile_s']:.1f} s; {total:.1f} s from start; "
        f"{sps:,.0f} env-steps/s); {with_teams('return_mean')}, {with_teams('eval_return_mean')}"
    )
    print(f"run folder: {out}  (metrics.csv, config.yaml, checkpoints/, tb/)")


def _device_reason(seeds: int, devices: int, spec) -> str:
    """Why a multi-seed run leaves CPU cores idle (the seeds split evenly or not at all)."""
    cores = os.cpu_count() or 1
    if seeds < 2 or devices >= cores or spec is None or "jax" not in sys.modules:
        return ""
    import jax

    if jax.default_backend() != "cpu" or len(jax.devices()) != devices:
        return ""  # an accelerator, or a device count the user set
    if seeds % cores == 0:  # they would have split: JAX was imported (and its devices fixed) first
        return (f" (on {devices} device{'s' * (devices > 1)}: JAX was initialised before the "
                f"command could give it {cores} CPU devices; set XLA_FLAGS="
                f"--xla_force_host_platform_device_count={cores} to use every core)")
    better = [k for k in (cores * (seeds // cores), cores * (seeds // cores + 1)) if k > 0]
    return (f" ({seeds} seeds do not split evenly over {cores} cores, so they ran on {devices}; "
            f"{' or '.join(map(str, better))} seeds would use every core)")


def cmd_eval(args, extra) -> int:
    import numpy as np

    from ctde.run.runner import evaluate_run

    if extra:
        raise UsageError(f"unexpected arguments {' '.join(extra)}")
    if args.episodes < 1:
        raise UsageError(f"--episodes must be positive, got {args.episodes}")
    result = evaluate_run(args.run, episodes=args.episodes, seed=args.seed, which=args.checkpoint)
    from ctde.run.spec import changed_env_settings, read_spec

    changed = changed_env_settings(args.run, read_spec(args.run))
    if changed:  # a later release's env: evaluating there is allowed, but say so
        print(f"note: {args.run} trained in an env with {'; '.join(changed)}; this evaluation "
              f"is in the env as it is now", file=sys.stderr)
    names = [k for k in result if k not in ("env_steps", "seeds", "episodes")]
    print(f"{args.run}: deterministic policy, {args.episodes} episodes per seed, "
          f"after {result['env_steps']:,} env steps")
    print("seed  " + "  ".join(f"{n:>14}" for n in names))
    for i, seed in enumerate(result["seeds"]):
        print(f"{seed:<4}  " + "  ".join(f"{result[n][i]:>14.4f}" for n in names))
    print("mean  " + "  ".join(f"{np.nanmean(result[n]):>14.4f}" for n in names))
    return 0


def cmd_render(args, extra) -> int:
    if extra:
        raise UsageError(f"unexpected arguments {' '.join(extra)}")
    for name in ("episodes", "fps"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be positive, got {getattr(args, name)}")
    from ctde.envs.render import save_animation

    if os.path.isdir(args.target):
        from ctde.run.runner import rollout_states

        env, states = rollout_states(args.target, args.seed_index, args.episodes, args.seed,
                                     which=args.checkpoint)
    else:
        if args.checkpoint is not None:
            raise UsageError("--checkpoint needs a run folder, not an env name")
        from ctde.envs import make
        from ctde.run.random_policy import random_rollout_states
        from ctde.run.runner import check_renderable

        env = make(args.target)
        check_renderable(env)
        states = random_rollout_states(env, args.episodes, args.seed)
    frames = [env.unwrapped.render(s) for s in states]
    path = save_animation(frames, args.out, fps=args.fps)
    print(f"wrote {len(frames)} frames to {path}")
    return 0


def cmd_plot(args, extra) -> int:
    if extra:
        raise UsageError(f"unexpected arguments {' '.join(extra)}")
    from ctde.run.plot import plot_runs

    labels = args.labels.split(",") if args.labels else None
    if labels and len(labels) != len(args.runs):
        raise UsageError(f"--labels has {len(labels)} names for {len(args.runs)} runs")
    path = plot_runs(args.runs, args.out, metric=args.metric, labels=labels, title=args.title)
    print(f"wrote {path}")
    return 0


def cmd_envs(args, extra) -> int:
    from ctde.envs import make, names

    if args.name:
        from ctde.run.describe import env_parameters, table

        env = make(args.name)
        teams = ", ".join(env.team_names) if env.num_teams > 1 else "cooperative"
        print(f"{args.name}: N={env.num_agents}, obs={env.obs_dim}, actions={env.action_dim} "
              f"({'discrete' if env.discrete else 'continuous'}), steps={env.max_steps}, {teams}")
        print("parameters (--env.NAME VALUE):")
        print(table(env_parameters(args.name), prefix="  --env."))
        return 0
    for name in names():
        env = make(name)
        teams = ",".join(env.team_names) if env.num_teams > 1 else "cooperative"
        kind = "discrete" if env.discrete else "continuous"
        print(f"{name:<26} N={env.num_agents:<3} obs={env.obs_dim:<4} "
              f"actions={env.action_dim} ({kind})  steps={env.max_steps:<4} {teams}")
    return 0


def cmd_algos(args, extra) -> int:
    from ctde.algos import ALGORITHMS

    if args.name:
        from ctde.algos import get
        from ctde.run.describe import algorithm_settings, run_settings, table

        get(args.name)  # an unknown name: one line naming the valid ones
        print(f"{args.name}: {ALGORITHMS[args.name][1]}")
        print("settings (--NAME VALUE, or config: in a YAML file):")
        print(table(algorithm_settings(args.name)))
        print("run settings (any algorithm):")
        print(table(run_settings()))
        return 0
    for name, (_, description) in sorted(ALGORITHMS.items()):
        print(f"{name:<10} {description}")
    return 0


def cmd_demo(args, extra) -> int:
    """A short MAPPO run on simple_spread: learning-curve summary and a GIF."""
    seeds = 2
    _set_host_devices(seeds, "mappo")  # before JAX is imported
    import numpy as np

    from ctde.envs.render import save_animation
    from ctde.run.runner import rollout_states, train
    from ctde.run.spec import RunSpec

    out = args.out
    if os.path.exists(os.path.join(out, "config.yaml")):
        import shutil

        shutil.rmtree(out)  # the demo folder is always fresh
    spec = RunSpec(algo="mappo", env="simple_spread", steps=args.steps, seeds=seeds,
                   log_every=args.steps // 10)
    print(f"demo: MAPPO on simple_spread (3 agents, 3 landmarks), {spec.steps:,} env steps x "
          f"{spec.seeds} seeds -> {out}")
    summary = train(spec, out, progress=not args.no_progress)
    rows = _read_rows(os.path.join(out, "metrics.csv"))
    print("\nlearning curve (mean over seeds; a uniformly random policy scores about -26)")
    print(f"{'env steps':>10}  {'return_mean':>12}  {'eval_return_mean':>16}")
    for steps in sorted({int(r["env_steps"]) for r in rows}):
        at = [r for r in rows if int(r["env_steps"]) == steps]
        ret = np.nanmean([float(r["return_mean"] or "nan") for r in at])
        ev = np.nanmean([float(r["eval_return_mean"] or "nan") for r in at])
        print(f"{steps:>10,}  {ret:>12.2f}  {ev:>16.2f}")
    _print_summary(out, summary)
    from ctde.run.plot import plot_runs

    curve = plot_runs([out], os.path.join(out, "curve.png"), labels=["MAPPO"],
                      title="MAPPO on simple_spread")
    env, states = rollout_states(out, 0, episodes=2)
    gif = save_animation([env.unwrapped.render(s) for s in states], os.path.join(out, "demo.gif"))
    print(f"learning curve: {curve}\nGIF of the trained agents: {gif}")
    return 0


def _read_rows(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _number(text: str) -> int:
    """Integers that may be written as 2e6 or 2_000_000."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != int(value):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctde", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train an algorithm on an environment",
                       description="Any algorithm setting is an option: --FIELD VALUE "
                       "(`ctde algos ALGO` lists them with defaults and meanings); environment "
                       "parameters: --env.NAME VALUE (`ctde envs ENV` lists them).")
    p.add_argument("algo", nargs="?")
    p.add_argument("env", nargs="?")
    p.add_argument("--steps", type=_number,
                   help="environment steps per seed (rounded up to whole updates)")
    p.add_argument("--seeds", type=_number, help="number of seeds trained side by side")
    p.add_argument("--seed", type=_number, help="first seed")
    p.add_argument("--out", help="run folder (default runs/ALGO_ENV_TIME)")
    p.add_argument("--config", help="YAML file of settings (e.g. configs/mappo_simple_spread.yaml)")
    p.add_argument("--log-every", dest="log_every", type=_number, help="env steps between logs")
    p.add_argument("--eval-episodes", dest="eval_episodes", type=_number,
                   help="deterministic evaluation episodes per seed and logging point (default 32)")
    p.add_argument("--checkpoint-every", dest="checkpoint_every", type=float, metavar="SECONDS",
                   help="seconds between checkpoints (default 60; 0: every logging point); the "
                   "first and last points and an interrupted run are always saved")
    p.add_argument("--keep-checkpoints", dest="keep_checkpoints", type=_number, metavar="K",
                   help="how many of the newest checkpoints to keep (default 3)")
    p.add_argument("--resume", metavar="RUN", help="carry on a stopped run from its checkpoint")
    p.add_argument("--checkpoint", metavar="STEPS",
                   help="with --resume: the checkpoint to carry on from (env steps; default the newest)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (on a terminal) or line per logging point (elsewhere)")
    p.set_defaults(func=cmd_train)
    parser.train_options = set(p._option_string_actions)  # the rest are settings

    p = sub.add_parser("eval", help="evaluate a saved run's deterministic policy")
    p.add_argument("run")
    p.add_argument("--episodes", type=_number, default=100)
    p.add_argument("--seed", type=_number, default=0)
    p.add_argument("--checkpoint", metavar="STEPS_OR_FILE",
                   help="env steps of one of the run's checkpoints, or a file (default the newest)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("render", help="render a saved run (or an env with random actions)")
    p.add_argument("target", metavar="RUN_OR_ENV")
    p.add_argument("--out", required=True, help="output .gif or .mp4")
    p.add_argument("--episodes", type=_number, default=1)
    p.add_argument("--seed-index", dest="seed_index", type=_number, default=0)
    p.add_argument("--seed", type=_number, default=0)
    p.add_argument("--fps", type=_number, default=10)
    p.add_argument("--checkpoint", metavar="STEPS_OR_FILE",
                   help="env steps of one of the run's checkpoints, or a file (default the newest)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("plot", help="learning curves of one or more runs (mean and range over seeds)")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--out", required=True, help="output image (.png, .svg, .pdf)")
    p.add_argument("--metric", default="return_mean")
    p.add_argument("--title")
    p.add_argument("--labels", help="comma-separated legend names, one per run")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("envs", help="list environments, or one env's parameters")
    p.add_argument("name", nargs="?", help="an env: print every parameter with its default")
    p.set_defaults(func=cmd_envs)
    p = sub.add_parser("algos", help="list algorithms, or one algorithm's settings")
    p.add_argument("name", nargs="?", help="an algorithm: print every setting, its default, "
                   "type and meaning")
    p.set_defaults(func=cmd_algos)

    p = sub.add_parser("demo", help="a short MAPPO run on simple_spread with a GIF")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--steps", type=_number, default=400_000)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)

    from ctde.run import report, sweep  # their parsers live with them (no JAX import)

    sweep.add_parser(sub)
    report.add_parser(sub)
    return parser


def split_settings(tokens: list[str], known: set[str]) -> tuple[list[str], list[str]]:
    """The train command's tokens -> (tokens for argparse, ``--name value`` settings).
    Settings are taken out first: argparse would hand a setting's value to the optional
    ALGO/ENV positionals (``ctde train --config F --team-algos maddpg,ddpg``)."""
    kept, settings = [], []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--") and len(token) > 2 and token.split("=", 1)[0] not in known:
            settings.append(token)
            if "=" not in token and i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                settings.append(tokens[i + 1])
                i += 1
        else:
            kept.append(token)
        i += 1
    return kept, settings


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:
        kept, extra = split_settings(argv[1:], parser.train_options)
        args = parser.parse_args(["train", *kept])
    else:
        args, extra = parser.parse_known_args(argv)
    if extra and args.command != "train":
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    try:
        return args.func(args, extra)
    except ValueError as e:  # invalid input: one line, nothing lost
        print(f"ctde: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:  # before anything was under way (training says more)
        print("\nctde: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
