"""The one table of agents: every entry builds, both families satisfy the written interface, and
every consumer (CLI, sweeps, distillation) reads the table rather than a list of its own."""

import pytest

from tdgen.agents import AGENTS, Family, agents_of, config_class, get_agent
from tdgen.agents.registry import ACTOR_CRITIC, VALUE_BASED
from tdgen.sweep.grid import agent_config, default_preset


def test_both_families_satisfy_the_family_interface():
    for family in (VALUE_BASED, ACTOR_CRITIC):
        assert isinstance(family, Family)
    assert agents_of("value_based") == ("dqn", "c51", "qrdqn")
    assert agents_of("actor_critic") == ("ppo", "daac")


@pytest.mark.parametrize("name", list(AGENTS))
def test_every_agent_builds_from_every_preset_of_its_family(name):
    spec = get_agent(name)
    for preset in spec.presets:
        env = "minatar/breakout"
        config = spec.config_cls.preset(preset, env=env)
        assert config.to_dict()["env"] == env
        assert spec.config_cls.from_dict(config.to_dict()) == config
    agent = spec.build(spec.config_cls.minatar())  # every family has a gymnax preset
    assert spec.family.is_host_stepped(agent) is False
    train = agent.make_train()
    assert callable(train.init) and callable(train.segment)


def test_unknown_agents_and_wrong_configs_are_one_line_errors():
    with pytest.raises(ValueError, match=r"unknown agent 'qrdq': did you mean 'qrdqn'\?"):
        get_agent("qrdq")
    with pytest.raises(ValueError, match="agent 'c51' needs a C51Config, got DQNConfig"):
        get_agent("c51").build(config_class("dqn").minatar())


def test_sweeps_read_the_registry():
    config = agent_config("qrdqn", "minatar", "minatar/breakout", 3, {"num_quantiles": 11})
    assert type(config) is config_class("qrdqn") and config.seed == 3
    assert default_preset("qrdqn", "atari/Pong") == "tandem"
    assert default_preset("daac", "procgen/bigfish") == "procgen"
