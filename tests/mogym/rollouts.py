"""Roll-outs through the real environments, the independent twin of the exact tables.

Roll-outs go through ``mo_gymnasium.make(...).step`` (all wrappers included) with a horizon
``H`` where ``gamma**H`` is negligible; a terminated episode's tail (the absorbing state's
constant normalised reward) is added exactly, so deterministic policies in deterministic
environments must agree to rounding.  Import this module only after
``pytest.importorskip("mo_gymnasium")``.
"""

import warnings

import numpy as np

from oracles.mogym import deep_sea_treasure, fruit_tree, resource_gathering

GAMMA = 0.9
HORIZON = 300  # 0.9**300 < 1e-13

BUILDERS = {
    "dst-convex": lambda g: deep_sea_treasure(g),
    "dst-concave": lambda g: deep_sea_treasure(g, map="concave"),
    "dst-mirrored": lambda g: deep_sea_treasure(g, map="mirrored"),
    "fruit-tree-5": lambda g: fruit_tree(5, g),
    "fruit-tree-6": lambda g: fruit_tree(6, g),
    "fruit-tree-7": lambda g: fruit_tree(7, g),
    "resource-gathering": resource_gathering,
}
DETERMINISTIC = [k for k in BUILDERS if k != "resource-gathering"]


def make_env(table, horizon):
    import mo_gymnasium

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
        return mo_gymnasium.make(table.env_id, max_episode_steps=horizon, **dict(table.env_kwargs))


def rollout(table, env, policy, rng, seed):
    """Normalised discounted return of one episode through ``env.step`` (policy over table states)."""
    g = table.gamma
    obs, _ = env.reset(seed=seed)
    total, disc = 0.0, 1.0
    for _ in range(HORIZON):
        s = table.state_index(obs)
        a = int(policy[s]) if policy.ndim == 1 else int(rng.choice(policy.shape[1], p=policy[s]))
        obs, reward, terminated, truncated, _ = env.step(a)
        total = total + disc * table.normalise_reward(reward)
        disc *= g
        if terminated:  # the absorbing state pays its normalised reward forever
            return (1 - g) * total + disc * table.normalise_reward(np.zeros(table.d))
        if truncated:
            break
    return (1 - g) * total  # the missing tail is at most gamma**H


def random_deterministic(table, rng):
    return rng.integers(table.momdp.n_actions, size=table.n_states)


def random_stochastic(table, rng):
    return rng.dirichlet(np.full(table.momdp.n_actions, 0.7), size=table.n_states)
