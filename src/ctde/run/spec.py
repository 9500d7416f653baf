"""What a run is: ``RunSpec`` (algorithm, env, settings, budget) and how it is built
from the command line, a YAML file or a run folder's ``config.yaml``.

Every value is checked here, before anything is trained or written: unknown names,
unknown fields, wrong types and invalid values each raise a ``ValueError`` with a
one-line message naming the problem.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from typing import Any

import yaml


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything needed to repeat a run (written to ``config.yaml``)."""

    algo: str
    env: str
    env_params: dict = dataclasses.field(default_factory=dict)
    config: dict = dataclasses.field(default_factory=dict)  # algorithm Config fields
    steps: int = 1_000_000  # environment steps per seed
    seeds: int = 1  # independent seeds, trained side by side
    seed: int = 0  # first seed; seed i uses PRNGKey(seed + i)
    log_every: int = 0  # env steps between logging points (0: about 50 points)
    eval_episodes: int = 32  # deterministic evaluation episodes per seed and point
    checkpoint_every: float = 60.0  # seconds of training between checkpoints (0: at every
    #                                 logging point); the first and last points are saved
    keep_checkpoints: int = 3  # the newest checkpoints kept in the run folder

    def __post_init__(self):
        for name in ("steps", "seeds", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("log_every", "eval_episodes", "seed", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


RUN_FIELDS = {f.name for f in dataclasses.fields(RunSpec)} - {"algo", "env", "env_params", "config"}


def convert(value: Any, annotation, name: str):
    """Convert ``value`` (a string from the command line, or a YAML scalar) to the
    field's type; ValueError with the field's name when it does not fit."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or value == "None":
            return None
        return convert(value, options[0], name)
    try:
        if annotation is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if annotation is int:
            if isinstance(value, bool):
                raise ValueError
            number = float(value) if isinstance(value, str) else value
            if int(number) != number:
                raise ValueError
            return int(number)
        if annotation is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if annotation is str:
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ValueError
            return str(value)
        if origin is tuple:
            (item_type, *_) = typing.get_args(annotation)
            if isinstance(value, str):
                text = value.strip().strip("[]()")
                items = [v for v in text.split(",") if v.strip()]
            else:
                items = list(value)
            return tuple(convert(v, item_type, name) for v in items)
    except (TypeError, ValueError):
        kind = getattr(annotation, "__name__", str(annotation))
        raise ValueError(f"{name} expects {kind}, got {value!r}") from None
    return value


def config_fields(config_cls) -> dict:
    """Field name -> type annotation of an algorithm's Config."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def build_config(algo: str, overrides: dict):
    """The algorithm's Config with ``overrides`` (strings or YAML values) applied."""
    from ctde import algos

    module = algos.get(algo)
    fields = config_fields(module.Config)
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(
            f"{algo} has no setting {', '.join(map(repr, unknown))}. "
            f"Valid settings: {', '.join(fields)}"
        )
    values = {k: convert(v, fields[k], k) for k, v in overrides.items()}
    made_by = algos.registry.preset(algo)
    for k, v in made_by.items():
        if k in values and values[k] != v:
            raise ValueError(f"{algo} is {module.__name__.rsplit('.', 1)[-1]} with {k}={v}: "
                             f"to set {k}={values[k]}, train {module.__name__.rsplit('.', 1)[-1]}")
    return module.Config(**{**made_by, **values})


def changed_settings(then, now) -> list[str]:
    """Where two Configs of one algorithm, or two env settings (dicts), differ, as
    "name=then (now: value)". Of env settings only the names both hold are compared: a
    run saved before an option existed did not record it."""
    if not isinstance(then, dict):
        then, now = ({f.name: getattr(c, f.name) for f in dataclasses.fields(c)} for c in (then, now))
    return [f"{name}={then[name]!r} (now: {now[name]!r})"
            for name in then if name in now and then[name] != now[name]]


#: Keys of a run's config.yaml that record how it ran rather than what to train.
SAVED_ONLY = ("versions", "env_settings")

#: Env parameters that may name a file the run needs (a micro scenario of one's own).
FILE_PARAMS = ("scenario",)


def env_settings(spec: RunSpec) -> dict:
    """Every option of the spec's env as it runs (``envs.settings``), in YAML's types,
    less the parameters that may name a file (a path is the machine's, not the run's)."""
    from ctde import envs

    found = envs.settings(spec.env, spec.env_params)
    return yaml.safe_load(yaml.safe_dump({k: v for k, v in found.items() if k not in FILE_PARAMS}))


def changed_env_settings(run_dir: str, spec: RunSpec) -> list[str]:
    """Where the env options a run folder was trained with differ from what ``spec``
    builds now (a release that changed an env default); [] for a folder of a release
    that did not record them."""
    saved = load_yaml(os.path.join(run_dir, "config.yaml")).get("env_settings")
    return changed_settings(saved, env_settings(spec)) if isinstance(saved, dict) else []


def env_param_value(text):
    """Environment parameters from the command line: YAML scalars (ints, floats, bools)."""
    return yaml.safe_load(text) if isinstance(text, str) else text


def validate(spec: RunSpec):
    """Build the env and the algorithm Config once, so any error surfaces before training.
    Returns (env, config). (Imports JAX: the CLI sets the host device count first.)"""
    from ctde import algos, envs

    algos.get(spec.algo)  # an unknown name fails first
    env = envs.make(spec.env, **spec.env_params)
    config = build_config(spec.algo, spec.config)
    algos.registry.check_env(spec.algo, env)
    return env, config


def spec_from_dict(data: dict) -> RunSpec:
    """A RunSpec from a YAML mapping (a config file or a run's ``config.yaml``)."""
    if not isinstance(data, dict):
        raise ValueError("a run configuration must be a YAML mapping")
    fields = [f.name for f in dataclasses.fields(RunSpec)]
    unknown = sorted(set(data) - set(fields) - set(SAVED_ONLY))
    if unknown:
        close = difflib.get_close_matches(unknown[0], fields, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown run field {', '.join(map(repr, unknown))}.{hint} "
                         f"Valid fields: {', '.join(fields)}")
    for required in ("algo", "env"):
        if required not in data:
            raise ValueError(f"run configuration is missing {required!r}")
    hints = typing.get_type_hints(RunSpec)
    values = {k: convert(data[k], hints[k], k) for k in RUN_FIELDS if k in data}
    return RunSpec(
        algo=str(data["algo"]),
        env=str(data["env"]),
        env_params=dict(data.get("env_params") or {}),
        config=dict(data.get("config") or {}),
        **values,
    )


# Settings added after run folders were saved, whose default changes what those runs did:
# a run's config.yaml lists every setting of its release, so one without such a setting
# was trained the earlier way and carries on that way (resume, eval), not the new default.
EARLIER_BEHAVIOUR = {"mappo": {"fit_dead_values": False}}


def read_spec(run_dir: str) -> RunSpec:
    """The RunSpec saved in a run folder's ``config.yaml``."""
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        raise ValueError(f"{run_dir} is not a run folder (no config.yaml)")
    data = resolve_files(load_yaml(path), run_dir)
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        earlier = EARLIER_BEHAVIOUR.get(data.get("algo"), {})
        data = {**data, "config": {**earlier, **data["config"]}}
    return spec_from_dict(data)


def resolve_files(data: dict, folder: str) -> dict:
    """A config's env parameters that name a file relative to the config's ``folder``
    (a run folder's ``files/``, a scenario beside a YAML config) made absolute."""
    params = data.get("env_params") if isinstance(data, dict) else None
    if not isinstance(params, dict):
        return data
    params = dict(params)
    for name in FILE_PARAMS:
        value = params.get(name)
        if isinstance(value, str) and not os.path.isabs(value) \
                and os.path.isfile(os.path.join(folder, value)):
            params[name] = os.path.abspath(os.path.join(folder, value))
    return {**data, "env_params": params}


def load_yaml(path) -> dict:
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ValueError(f"no such file: {path}") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    return data if data is not None else {}
