"""The COMA paper's Table 1 from a sweep of configs/sweeps/coma_table1.yaml: per map, each
method's mean final win rate (deterministic evaluation at the last logging point) with its
95 % bootstrap interval over seeds (rliable, as ``ctde report``) and its best seed, beside
the paper's numbers (Foerster et al. 2018, Table 1, local field of view).

    ctde sweep configs/sweeps/coma_table1.yaml --out sweeps/coma_table1
    .venv/bin/python benchmarks/coma_table.py sweeps/coma_table1 [--heuristic]

``--heuristic`` adds the paper's heuristic measured here (``ctde.envs.micro.evaluate``,
``--episodes`` per seed, 5 seeds) and a team that only ever takes ``stop`` (hold position,
fire at whatever comes into weapon range): the local optimum the learners fall into.
"""

from __future__ import annotations

import argparse
import json

from ctde.run.report import collect, curves

METHODS = ("iac_v", "iac_q", "central_v", "central_qv", "coma")
#: Table 1 of the paper, local field of view: heur., IAC-V, IAC-Q, central-V, central-QV, COMA
#: (mean win rate in %).
PAPER = {
    "3m": (35, 47, 56, 83, 83, 87),
    "5m": (66, 63, 58, 67, 71, 81),
    "5w": (70, 18, 57, 65, 76, 82),
    "2d_3z": (63, 27, 19, 36, 39, 47),
}


def scripted_win_rates(env_name: str, params: dict, episodes: int, seeds: int = 5) -> dict:
    """``{"coma": rates, "stop": rates}``: the paper's heuristic and an always-``stop`` team,
    ``episodes`` first episodes per seed on the same draws."""
    from ctde import envs
    from ctde.envs.micro.evaluate import evaluate

    env = envs.make(env_name, **params)
    runs = [evaluate(env, ("coma", "stop"), episodes=episodes, seed=s) for s in range(seeds)]
    return {team: [r[team]["win_rate"] for r in runs] for team in ("coma", "stop")}


def t_interval(rates) -> str:
    from ctde.envs.micro.evaluate import win_rate_ci

    mean, half = win_rate_ci(rates)
    return f"{mean:.2f} +- {half:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sweep", help="the sweep folder")
    parser.add_argument("--heuristic", action="store_true", help="measure the paper's heuristic too")
    parser.add_argument("--episodes", type=int, default=200, help="heuristic episodes per seed")
    args = parser.parse_args()

    rows = collect(args.sweep, "win_rate", use_eval=True)
    last = {}
    for c in curves(rows):
        if (c["task"], c["method"]) not in last or c["env_steps"] > last[c["task"], c["method"]]["env_steps"]:
            last[c["task"], c["method"]] = c
    finals = {}
    for r in rows:
        if r["final"]:
            finals.setdefault((r["task"], r["method"]), []).append(r["value"])
    steps = sorted({r["env_steps"] for r in rows if r["final"]})
    seeds = sorted({len(v) for v in finals.values()})
    print(f"final deterministic-evaluation win rate, {', '.join(map(str, steps))} env steps, "
          f"{', '.join(map(str, seeds))} seeds per cell: mean [95 % CI] (best seed); paper's in %\n")
    header = ["map"] + (["heuristic", "always stop"] if args.heuristic else []) + list(METHODS)
    print("| " + " | ".join(header) + " | paper: heur. / IAC-V / IAC-Q / central-V / central-QV / COMA |")
    print("|" + "---|" * (len(header) + 1))
    for task in sorted({r["task"] for r in rows}, key=lambda t: list(PAPER).index(t.split()[0])
                       if t.split()[0] in PAPER else 99):
        env_name = task.split()[0]
        cells = [task]
        if args.heuristic:
            params = json.loads(next(r["env_params"] for r in rows if r["task"] == task))
            scripted = scripted_win_rates(env_name, params, args.episodes)
            cells += [t_interval(scripted["coma"]), t_interval(scripted["stop"])]
        for method in METHODS:
            c = last.get((task, method))
            if c is None:
                cells.append("-")
                continue
            best = max(finals[task, method])
            cells.append(f"{c['mean']:.2f} [{c['low']:.2f}, {c['high']:.2f}] ({best:.2f})")
        paper = " / ".join(map(str, PAPER.get(env_name, ())))
        print("| " + " | ".join(cells) + f" | {paper} |")


if __name__ == "__main__":
    main()
