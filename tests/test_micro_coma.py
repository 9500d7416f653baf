"""The micro simulator's ``setting`` parameter: SMAC stays the default, and ``coma`` is the
COMA paper's Brood War setting (Foerster et al., 2018, Sec. 5): unit table, field of view,
observation and state features, unmasked attack orders, reward and the paper's heuristic.

Hand-worked numbers: a Brood War marine's bounding box is 17 x 20 pixels, so its radius
is (17 + 20) / 4 / 32 = 0.2890625 cells; two marines' radii sum to 0.578125. Its range is
128 px = 4 cells, edge to edge: the field of view of 3m (4 cells, edge to edge) reaches a
marine whose centre is closer than 4.578125 cells, exactly where its weapon reaches.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctde.envs import make, parameters
from ctde.envs.micro import BW_UNITS, heuristic_actions
from ctde.envs.micro.evaluate import evaluate

R_MARINE = (17 + 20) / 4 / 32
EDGE = 4.0 + 2 * R_MARINE  # centre distance at which two marines are 4 cells apart


@pytest.fixture(scope="module")
def coma3m():
    return make("3m", setting="coma", enemy_policy="stop", random_delay=False)


@pytest.fixture(scope="module")
def step3m(coma3m):
    return jax.jit(coma3m.step)


def place(env, units: dict[int, tuple[float, float]], health: dict[int, float] | None = None):
    """A state with only ``units`` alive, at the given positions (others dead, far away)."""
    _, s = env.reset(jax.random.PRNGKey(0))
    u = env.num_units
    alive = np.zeros(u, bool)
    alive[list(units)] = True
    pos = np.stack([np.array([1.0 + 2 * i, 30.0]) for i in range(u)]).astype(np.float32)
    for i, xy in units.items():
        pos[i] = xy
    p = env.unit_table
    hp = np.where(alive, p.health_max, 0.0)
    for i, value in (health or {}).items():
        hp[i] = value
    s = s.replace(pos=jnp.asarray(pos), alive=jnp.asarray(alive),
                  health=jnp.asarray(hp, jnp.float32),
                  shield=jnp.asarray(np.where(alive, p.shield_max, 0.0), jnp.float32))
    return env.refresh(s)


# -- smac stays the default -------------------------------------------------------------

def test_smac_is_the_default_and_unchanged():
    assert parameters("3m")["setting"] == "smac"
    default, smac = make("3m"), make("3m", setting="smac")
    assert default.setting.name == "smac"
    assert (default.step_mul, default.sight_range, default.reward_scale,
            default.reward_only_positive, default.state_last_action) == (8, 9.0, True, True, True)
    assert default._dt == 8 / 22.4 / 8
    assert default.unit_kinds[0].health == 45  # the SC2 marine
    key = jax.random.PRNGKey(4)
    runs = []
    for env in (default, smac):
        obs, s = env.reset(key)
        obs, s, r, *_ = jax.jit(env.step)(key, s, env.sample_actions(key, s))
        runs.append(np.concatenate([np.asarray(obs).ravel(), np.asarray(r)]))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_setting_errors():
    with pytest.raises(ValueError, match=r"setting 'coma' is defined for the maps 3m, 5m, "
                                         r"5w, 2d_3z, not '3s5z'"):
        make("3s5z", setting="coma")
    with pytest.raises(ValueError, match="unknown setting 'sc1'"):
        make("3m", setting="sc1")


def test_cli_env_parameter():
    from ctde.cli import parse_overrides
    from ctde.run.spec import spec_from_dict, validate

    _, env_params = parse_overrides(["--env.setting", "coma"])
    assert env_params == {"setting": "coma"}
    env, _ = validate(spec_from_dict({"algo": "mappo", "env": "3m", "env_params": env_params}))
    assert env.setting.name == "coma" and env.obs_dim == 15


# -- the unit table -----------------------------------------------------------------------

def test_coma_unit_stats_are_the_documented_numbers():
    fps = 23.81
    # name: HP, shields, armour, damage x hits, scale vs small, range px, cooldown frames,
    # speed px/frame, sight, bounding box px
    table = {
        "marine": (40, 0, 0, 6, 1, 1.0, 128, 15, 4.0, 7, (17, 20)),
        "zealot": (100, 60, 1, 8, 2, 1.0, 15, 22, 4.0, 7, (23, 19)),
        "dragoon": (100, 80, 1, 20, 1, 0.5, 128, 30, 5.25, 8, (32, 32)),
        "wraith": (120, 0, 0, 20, 1, 0.5, 160, 22, 6.67, 7, (38, 30)),
    }
    assert set(BW_UNITS) == set(table)
    for name, (hp, sh, armour, dmg, hits, scale, rng, cd, speed, sight, box) in table.items():
        u = BW_UNITS[name]
        assert (u.health, u.shield, u.armour, u.damage, u.hits, u.scale, u.sight) == (
            hp, sh, armour, dmg, hits, scale, sight), name
        assert u.range == pytest.approx(rng / 32) and u.cooldown == pytest.approx(cd / fps)
        assert u.speed == pytest.approx(speed * fps / 32)
        assert u.radius == pytest.approx(sum(box) / 4 / 32)
        assert u.game == "bw"
    assert BW_UNITS["zealot"].shield_regen == pytest.approx(7 / 256 * fps)


def test_brood_war_damage_rules():
    """Shields take the full damage; what reaches health loses armour, then explosive
    damage is halved against small units (Liquipedia, "Damage Order of Operations")."""
    env = make("2d_3z", setting="coma")
    t = env.unit_table
    dragoon, zealot, e_dragoon, e_zealot = 0, 2, 5, 7
    assert env.unit_types[dragoon] == env.unit_types[e_dragoon] == "dragoon"
    assert env.unit_types[zealot] == env.unit_types[e_zealot] == "zealot"
    assert t.raw_damage[dragoon, e_zealot] == 20  # shields: 20
    assert t.armoured_damage[dragoon, e_zealot] == (20 - 1) * 0.5  # health: 9.5
    assert t.armoured_damage[dragoon, e_dragoon] == 20 - 1
    assert t.raw_damage[zealot, e_dragoon] == 16
    assert t.armoured_damage[zealot, e_dragoon] == 2 * (8 - 1)
    marines = make("3m", setting="coma").unit_table
    assert marines.armoured_damage[0, 3] == 6 and marines.health_max[0] == 40


# -- field of view, observation and state -----------------------------------------------------

def test_field_of_view_is_the_weapon_range(coma3m):
    assert coma3m.sight_range == 4.0
    assert make("5w", setting="coma").sight_range == 5.0
    assert make("2d_3z", setting="coma").sight_range == 4.0
    for gap, seen in ((EDGE - 0.01, True), (EDGE + 0.01, False)):
        s = place(coma3m, {0: (10.0, 10.0), 1: (10.0, 10.0 + gap), 3: (10.0 + gap, 10.0)})
        obs = np.asarray(coma3m.observe(s))
        enemy = obs[0, :9].reshape(3, 3)  # 3 enemies x (distance, dx, dy)
        ally = obs[0, 9:15].reshape(2, 3)
        if seen:
            np.testing.assert_allclose(enemy[0], [gap / 4, gap / 4, 0], atol=1e-6)
            np.testing.assert_allclose(ally[0], [gap / 4, 0, gap / 4], atol=1e-6)
        else:
            assert not enemy[0].any() and not ally[0].any()
        assert not enemy[1:].any() and not ally[1].any()  # dead units are never seen


def test_coma_observation_and_state_columns():
    env = make("2d_3z", setting="coma")
    # enemy and ally rows: distance, dx, dy, shield, type (zealot, dragoon: the table's
    # order); own: shield, type
    assert env.obs_layout == {"move": 0, "enemy": (5, 6), "ally": (4, 6), "own": 3}
    # ally rows: health, cooldown, x, y, shield, type; enemy rows: x, y, shield, type
    assert env.state_layout["ally"] == (5, 7) and env.state_layout["enemy"] == (5, 5)
    assert env.state_layout["last_action"] == 0
    s = place(env, {0: (10.0, 10.0), 2: (11.0, 10.0), 7: (12.0, 12.0)})
    s = s.replace(shield=s.shield.at[7].set(30.0), health=s.health.at[2].set(50.0),
                  cooldown=s.cooldown.at[0].set(0.5))
    obs = np.asarray(env.observe(s))
    d = np.array([2.0, 2.0]) / 4
    enemy = obs[0, :30].reshape(5, 6)
    np.testing.assert_allclose(enemy[2], [np.hypot(*d), *d, 0.5, 1, 0], atol=1e-6)
    own = obs[2, -3:]
    np.testing.assert_allclose(own, [1, 1, 0])  # full shield, a zealot; no health
    gs = np.asarray(env.global_state(s))
    cd = BW_UNITS["dragoon"].cooldown
    np.testing.assert_allclose(gs[:7], [1, 0.5 / cd, -6 / 16, -6 / 16, 1, 0, 1], atol=1e-6)
    np.testing.assert_allclose(gs[14:21], [0.5, 0, -5 / 16, -6 / 16, 1, 1, 0], atol=1e-6)
    np.testing.assert_allclose(gs[35 + 2 * 5: 35 + 3 * 5], [-4 / 16, -4 / 16, 0.5, 1, 0],
                               atol=1e-6)  # enemy 7: x, y, shield 30/60, zealot


# -- attack orders --------------------------------------------------------------------------

def test_attack_orders_always_available_to_living_agents(coma3m):
    s = place(coma3m, {0: (5.0, 5.0), 1: (5.0, 7.0), 3: (25.0, 25.0)})
    avail = np.asarray(coma3m.avail_actions(s))
    assert avail[0, 6:].all() and avail[1, 6:].all()  # enemies far away or dead
    assert avail[2].tolist() == [True] + [False] * 8  # a dead agent: the no-op only
    smac = make("3m")
    s = place(smac, {0: (5.0, 5.0), 3: (25.0, 25.0)})
    assert not np.asarray(smac.avail_actions(s))[0, 6:].any()


def test_attack_on_dead_or_out_of_range_enemy_does_nothing(coma3m, step3m):
    key = jax.random.PRNGKey(0)
    # Enemy 3 just beyond reach, enemy 4 dead: neither order is carried out.
    for target in (3, 4):
        s = place(coma3m, {0: (10.0, 10.0), 3: (10.0 + EDGE + 0.01, 10.0)})
        _, s2, r, *_ = step3m(key, s, jnp.array([6 + target - 3, 0, 0]))
        np.testing.assert_array_equal(np.asarray(s2.health), np.asarray(s.health))
        np.testing.assert_array_equal(np.asarray(s2.pos[0]), np.asarray(s.pos[0]))  # no chase
        assert int(s2.last_actions[0]) == 0 and float(r[0]) == 0.0
    # Just inside reach the same order fires: one 6-damage shot in the first step, both ways.
    s = place(coma3m, {0: (10.0, 10.0), 3: (10.0 + EDGE - 0.01, 10.0)})
    _, s2, r, *_ = step3m(key, s, jnp.array([6, 0, 0]))
    assert float(s2.health[3]) == 34.0 and float(s2.health[0]) == 34.0
    assert float(r[0]) == pytest.approx(6 - 0.5 * 6)


# -- reward ---------------------------------------------------------------------------------

def test_reward_is_the_papers_formula(coma3m, step3m):
    """Last enemy (5 HP) killed by agent 0's shot while it shoots back (6 damage):
    5 dealt + 10 kill - 0.5 x 6 taken + 200 + the team's remaining health 34 + 40 + 25."""
    s = place(coma3m, {0: (10.0, 10.0), 1: (4.0, 4.0), 2: (4.0, 16.0), 3: (14.0, 10.0)},
              health={2: 25.0, 3: 5.0})
    _, s2, r, terminated, _, info = step3m(jax.random.PRNGKey(0), s, jnp.array([6, 1, 1]))
    assert bool(terminated) and float(info["won"]) == 1.0
    assert float(s2.health[0]) == 34.0
    assert r.tolist() == [5 + 10 - 0.5 * 6 + 200 + (34 + 40 + 25)] * 3


def test_reward_counts_shields_as_damage_but_not_in_the_win_bonus():
    """A dragoon (20 explosive) hits the last enemy, a zealot with 10 shields and 4 HP:
    shields take 10 and the rest (10 of 20) reaches health: (20 - 1) x 0.5 x 10/20 = 4.75,
    killing it. Reward: 14 dealt + 10 kill + 200 + the allies' health (shields excluded)."""
    env = make("2d_3z", setting="coma", enemy_policy="stop", random_delay=False)
    s = place(env, {0: (10.0, 10.0), 2: (4.0, 4.0), 7: (13.0, 10.0)}, health={7: 4.0})
    s = s.replace(shield=s.shield.at[7].set(10.0), health=s.health.at[2].set(70.0))
    s = env.refresh(s)
    actions = jnp.array([6 + 2, 0, 1, 0, 0])  # dragoon 0 attacks enemy 2 (unit 7)
    _, s2, r, terminated, *_ = jax.jit(env.step)(jax.random.PRNGKey(0), s, actions)
    assert bool(terminated) and not bool(s2.alive[7])
    assert float(r[0]) == pytest.approx(14 + 10 + 200 + 100 + 70)


# -- the paper's heuristic, jit and vmap --------------------------------------------------------

def test_heuristic_focuses_and_beats_random_on_3m():
    env = make("3m", setting="coma")
    s = place(env, {0: (10.0, 10.0), 1: (10.0, 12.0), 2: (3.0, 3.0), 4: (13.0, 11.0),
                    5: (13.5, 11.0)})
    a = np.asarray(heuristic_actions(env, s, jax.random.PRNGKey(0), "coma"))
    assert a[0] == a[1] == 6 + 1  # both see enemies 1 and 2: the lower-numbered one
    assert a[2] == 2 + 2  # sees none: walks forward (east)
    results = evaluate(env, ("random", "coma"), episodes=64)
    assert results["random"]["win_rate"] == 0.0
    assert results["coma"]["win_rate"] >= 0.3


def test_jit_vmap_and_determinism():
    env = make("2d_3z", setting="coma")
    keys = jax.random.split(jax.random.PRNGKey(2), 4)
    obs, states = jax.jit(jax.vmap(env.reset))(keys)

    def act_step(key, s):
        a = heuristic_actions(env, s, key, "coma")
        return env.step(key, s, a)

    batched = jax.jit(jax.vmap(act_step))
    single = jax.jit(act_step)
    for _ in range(10):
        out_b = batched(keys, states)
        out_1 = single(keys[1], jax.tree.map(lambda x: x[1], states))
        # Batched unit-axis sums may run as products (row_sum): equal to rounding.
        for b, one in ((out_b[0][1], out_1[0]), (out_b[2][1], out_1[2])):
            np.testing.assert_allclose(np.asarray(b), np.asarray(one), rtol=1e-5, atol=1e-4)
        states = out_b[1]
    again = jax.jit(jax.vmap(env.reset))(keys)[0]
    np.testing.assert_array_equal(np.asarray(again), np.asarray(obs))


def test_render_coma(tmp_path):
    from ctde.envs.micro.render import main, record

    frames = record(make("2d_3z", setting="coma"), steps=3, allies="coma", size=64)
    assert len(frames) == 3 and frames[0].shape == (64, 64, 3)
    main(["--scenario", "5w", "--setting", "coma", "--allies", "coma", "--steps", "2",
          "--size", "48", "--out", str(tmp_path / "5w.gif")])
    assert (tmp_path / "5w.gif").stat().st_size > 0
