"""`make_env(name)`: environment names, their parsing, and errors that suggest the fix.

Names are ``minatar/<game>`` (gymnax, fully jittable), ``atari/<Game>`` and ``procgen/<game>``
(envpool, stepped on the host; optional extras). ``atari/<Game>`` gives an `AtariSpec`
(`tdgen.envs.atari`) and ``procgen/<game>`` a `ProcgenSpec` (`tdgen.envs.procgen`), each carrying
its reward mode (and levels). MinAtar gets ProcGen-like levels from `tdgen.envs.levels` when
``num_levels`` is given.
"""

from __future__ import annotations

import difflib

from tdgen._extras import require
from tdgen.envs.levels import with_levels
from tdgen.envs.minatar import MINATAR_GAMES, make_minatar
from tdgen.envs.procgen import DISTRIBUTION_MODES, make_procgen
from tdgen.envs.spec import EnvSpec
from tdgen.envs.wrappers import record_episode_statistics, sparsify_rewards, zero_rewards
from tdgen.errors import InputError

# The Atari games the paper uses (Sections 5.1 and 6, Appendix B.3); any envpool Atari game parses.
ATARI_GAMES = ("Pong", "Boxing", "Seaquest", "Breakout", "MontezumaRevenge")
PROCGEN_GAMES = (
    "bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot",
    "heist", "jumper", "leaper", "maze", "miner", "ninja", "plunder", "starpilot",
)  # fmt: skip
REWARD_MODES = ("dense", "zero", "sparse")

KNOWN_NAMES = (
    tuple(f"minatar/{g}" for g in MINATAR_GAMES)
    + tuple(f"atari/{g}" for g in ATARI_GAMES)
    + tuple(f"procgen/{g}" for g in PROCGEN_GAMES)
)


def _suggest(name: str, candidates: tuple[str, ...]) -> str | None:
    """The closest candidate to ``name``; a bare game name is compared with the games alone.

    On a tie the earlier candidate wins, so 'Brakout' suggests 'minatar/breakout'.
    """
    if "/" in name:
        keys = {c.lower(): c for c in candidates}
        query = name.lower()
    else:
        keys = {}
        for c in candidates:
            keys.setdefault(c.split("/", 1)[1].lower(), c)
        query = name.lower()
    match = difflib.get_close_matches(query, list(keys), n=1, cutoff=0.6)
    return keys[match[0]] if match else None


def _unknown(name: str, candidates: tuple[str, ...] = KNOWN_NAMES) -> InputError:
    suggestion = _suggest(name, candidates)
    if suggestion is not None:
        return InputError(f"unknown environment {name!r}: did you mean {suggestion!r}?")
    return InputError(
        f"unknown environment {name!r}: choose minatar/<game> ({', '.join(MINATAR_GAMES)}), "
        f"atari/<Game> (e.g. atari/Pong) or procgen/<game> ({', '.join(PROCGEN_GAMES)})"
    )


def parse_env_name(name: str) -> tuple[str, str]:
    """(suite, game) for a valid name, e.g. ("minatar", "breakout"); ValueError otherwise."""
    suite, sep, game = name.partition("/")
    example = {"minatar": "breakout", "atari": "Pong", "procgen": "bigfish"}
    if suite in example and not game:
        raise InputError(
            f"unknown environment {name!r}: name a game too, e.g. '{suite}/{example[suite]}'"
        )
    if not sep:
        raise _unknown(name)
    if suite == "minatar" and game in MINATAR_GAMES:
        return suite, game
    if suite == "procgen" and game in PROCGEN_GAMES:
        return suite, game
    if suite == "atari" and game[:1].isupper() and game.isalnum():
        return suite, game
    if suite == "atari" and game.lower() in {g.lower() for g in ATARI_GAMES}:
        raise _unknown(name, tuple(f"atari/{g}" for g in ATARI_GAMES))
    raise _unknown(name)


def make_env(
    name: str,
    *,
    reward: str = "dense",
    keep_prob: float = 0.1,
    episode_statistics: bool = True,
    max_steps_in_episode: int | None = None,
    num_levels: int | None = None,
    start_level: int = 0,
    distribution_mode: str = "easy",
) -> EnvSpec:
    """The environment ``name`` as an `EnvSpec` (`AtariSpec`, `ProcgenSpec` for envpool suites).

    reward: "dense" (as the game gives it), "zero" (the paper's no-reward control) or "sparse"
      (each reward kept with probability ``keep_prob``).
    episode_statistics: add ``info["episode_return"]``/``["episode_length"]``, recorded on the
      game's own rewards, before any reward wrapper.
    max_steps_in_episode: time limit (MinAtar: gymnax's default when None; ProcGen: the game's
      own timeout when None, and at most that).
    num_levels, start_level: levels [start_level, start_level + num_levels), 0 = the full
      distribution (ProcGen: None is 0; MinAtar: None is no levels at all, `with_levels`
      otherwise, applied before the statistics and reward wrappers).
    distribution_mode: ProcGen's "easy" or "hard" (ignored elsewhere).
    """
    if reward not in REWARD_MODES:
        raise InputError(f"unknown reward mode {reward!r}: choose one of {', '.join(REWARD_MODES)}")
    if distribution_mode not in DISTRIBUTION_MODES:
        raise InputError(
            f"unknown distribution_mode {distribution_mode!r}: choose one of "
            f"{', '.join(DISTRIBUTION_MODES)}"
        )
    for field, value in (("num_levels", num_levels), ("start_level", start_level)):
        if value is not None and value < 0:
            raise InputError(f"{field} must be >= 0, got {value}")
    suite, game = parse_env_name(name)
    if suite == "atari" and (num_levels is not None or start_level != 0):
        raise InputError(f"{name!r} has no levels: num_levels is for minatar/ and procgen/ games")
    if num_levels is None and start_level != 0:
        raise InputError(f"start_level={start_level} needs num_levels (the levels to draw from)")
    if suite == "minatar":
        spec = make_minatar(game, max_steps_in_episode=max_steps_in_episode)
    else:
        extra = "atari" if suite == "atari" else "procgen"
        envpool = require("envpool", extra, repr(name))
        if suite == "atari":  # host-stepped: an AtariSpec, not a jittable EnvSpec
            tasks = envpool.list_all_envs()
            if f"{game}-v5" not in tasks:
                raise _unknown(name, tuple(f"atari/{t[:-3]}" for t in tasks if t.endswith("-v5")))
            from tdgen.envs.atari import make_atari

            return make_atari(game, reward=reward, keep_prob=keep_prob)
        return make_procgen(
            game, distribution_mode, num_levels or 0, start_level, reward=reward,
            keep_prob=keep_prob, max_episode_steps=max_steps_in_episode,
        )  # fmt: skip
    if num_levels is not None:
        spec = with_levels(spec, num_levels, start_level)
    if episode_statistics:
        spec = record_episode_statistics(spec)
    if reward == "zero":
        spec = zero_rewards(spec)
    elif reward == "sparse":
        spec = sparsify_rewards(spec, keep_prob)
    return spec
