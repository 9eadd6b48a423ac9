import json

import pytest

from tdgen.agents import DQNConfig, PPOConfig
from tdgen.sweep.command import grids_from_flags
from tdgen.sweep.grid import (
    Grid,
    agent_run_name,
    default_preset,
    expand,
    grids_from_dict,
    load_spec,
    overrides_hash,
    parse_assignment,
)


def test_grid_expands_to_the_product_with_readable_stable_names():
    grid = Grid(
        agents=("dqn", "c51"), envs=("minatar/breakout", "minatar/asterix"), seeds=(0, 1, 2)
    )
    points = expand([grid])
    assert len(points) == 2 * 2 * 3
    names = [p.name for p in points]
    assert "dqn_minatar-breakout_minatar_s0" in names
    assert "c51_minatar-asterix_minatar_s2" in names
    assert len(set(names)) == len(names)
    point = next(p for p in points if p.name == "dqn_minatar-asterix_minatar_s1")
    assert point.config == DQNConfig.minatar("minatar/asterix", seed=1).to_dict()
    assert [p.name for p in expand([grid])] == names  # stable order and names


def test_overrides_enter_the_config_and_a_stable_hash():
    overrides = {"frames": 800, "lr": 1e-4}
    grid = Grid(agents=("dqn",), envs=("minatar/breakout",), seeds=(3,), set=overrides)
    (point,) = expand([grid])
    assert point.name == f"dqn_minatar-breakout_minatar_s3_{overrides_hash(overrides)}"
    assert overrides_hash({"lr": 1e-4, "frames": 800}) == overrides_hash(overrides)  # key order
    assert (
        point.config["frames"] == 800 and point.config["lr"] == 1e-4 and point.config["seed"] == 3
    )
    # An integer for a float field names the same run as the float.
    (as_int,) = expand([Grid(agents=("dqn",), envs=("minatar/breakout",), set={"lr": 1})])
    (as_float,) = expand([Grid(agents=("dqn",), envs=("minatar/breakout",), set={"lr": 1.0})])
    assert as_int.name == as_float.name and as_int.config["lr"] == 1.0


def test_vary_is_a_product_and_presets_default_per_env():
    grid = Grid(agents=("dqn", "ppo"), envs=("minatar/breakout",), seeds=(0,),
                vary={"gamma": (0.9, 0.99)})  # fmt: skip
    points = expand([grid])
    assert len(points) == 4
    assert {(p.target, p.config["gamma"]) for p in points} == {
        ("dqn", 0.9),
        ("dqn", 0.99),
        ("ppo", 0.9),
        ("ppo", 0.99),
    }
    ppo = next(p for p in points if p.target == "ppo" and p.config["gamma"] == 0.9)
    assert ppo.config == PPOConfig.minatar("minatar/breakout", gamma=0.9, seed=0).to_dict()
    assert default_preset("dqn", "atari/Pong") == "tandem"
    assert default_preset("daac", "procgen/bigfish") == "procgen"


def test_duplicates_collapse_and_errors_name_the_problem():
    grid = Grid(agents=("dqn",), envs=("minatar/breakout",), seeds=(0, 0))
    assert len(expand([grid, grid])) == 1
    with pytest.raises(ValueError, match="did you mean 'lr'"):
        expand([Grid(agents=("dqn",), envs=("minatar/breakout",), set={"lrr": 1e-3})])
    with pytest.raises(ValueError, match="preset 'procgen' is not one of dqn's"):
        expand([Grid(agents=("dqn",), envs=("minatar/breakout",), presets=("procgen",))])
    with pytest.raises(ValueError, match="did you mean 'seeds'"):
        grids_from_dict({"agents": ["dqn"], "envs": ["minatar/breakout"], "seed": [0]})
    with pytest.raises(ValueError, match="need at least one env"):
        Grid(agents=("dqn",))
    with pytest.raises(ValueError, match="either agents or experiments"):
        Grid(agents=("dqn",), experiments=("fig9_kernel_td",), envs=("minatar/breakout",))
    with pytest.raises(ValueError, match="unknown experiment"):
        expand([Grid(experiments=("fig9_kernel",))])


def test_experiment_points_use_the_reproduce_layout():
    points = expand([Grid(experiments=("fig9_kernel_td",), seeds=(0, 1), scale="quick")])
    assert [p.name for p in points] == ["quick_s0/fig9_kernel_td", "quick_s1/fig9_kernel_td"]
    assert points[1].config == {"scale": "quick", "seed": 1}


def test_toml_spec_with_several_grids(tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text(
        """
seeds = [0, 1]
[set]
frames = 800
[[grid]]
agents = ["dqn"]
envs = ["minatar/breakout"]
[[grid]]
agents = ["ppo"]
envs = ["minatar/asterix"]
seeds = [5]
set = {frames = 8192}
"""
    )
    grids = load_spec(spec)
    assert [g.agents for g in grids] == [("dqn",), ("ppo",)]
    names = [p.name for p in expand(grids)]
    h, h_ppo = overrides_hash({"frames": 800}), overrides_hash({"frames": 8192})
    assert names == [f"dqn_minatar-breakout_minatar_s0_{h}", f"dqn_minatar-breakout_minatar_s1_{h}",
                     f"ppo_minatar-asterix_minatar_s5_{h_ppo}"]  # fmt: skip


def test_flags_alone_and_on_top_of_a_spec(tmp_path):
    grids = grids_from_flags(None, ("dqn",), ("minatar/breakout",), (), (0, 1), 800,
                             ("lr=1e-4", "encoder=mlp", "gamma=[0.9, 0.99]"), (), None)  # fmt: skip
    (grid,) = grids
    assert grid.set == {"lr": 1e-4, "encoder": "mlp", "frames": 800}
    assert grid.vary == {"gamma": (0.9, 0.99)} and grid.seeds == (0, 1)
    spec = tmp_path / "s.toml"
    spec.write_text('agents = ["c51"]\nenvs = ["minatar/asterix"]\nseeds = [7]\n[set]\nlr = 0.1\n')
    (grid,) = grids_from_flags(spec, (), (), (), (1,), None, ("lr=0.2",), (), None)
    assert grid.agents == ("c51",) and grid.seeds == (1,) and grid.set == {"lr": 0.2}
    with pytest.raises(ValueError, match="give a SPEC.toml"):
        grids_from_flags(None, (), (), (), (), None, (), (), None)
    experiments = tmp_path / "e.toml"
    experiments.write_text('experiments = ["fig9_kernel_td"]\n')
    with pytest.raises(ValueError, match="--override and --frames apply to agent runs, not to"):
        grids_from_flags(experiments, (), (), (), (), 800, (), (), None)


def test_parse_assignment_reads_toml_values():
    assert parse_assignment("lr=1e-4") == ("lr", 1e-4)
    assert parse_assignment("encoder=mlp") == ("encoder", "mlp")
    assert parse_assignment("clip_value=false") == ("clip_value", False)
    assert parse_assignment("gamma = [0.9, 0.99]") == ("gamma", [0.9, 0.99])
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        parse_assignment("lr")


def test_points_round_trip_through_json():
    (point,) = expand([Grid(agents=("dqn",), envs=("minatar/breakout",), set={"frames": 800})])
    again = type(point).from_dict(json.loads(json.dumps(point.to_dict())))
    assert again == point
    assert agent_run_name("dqn", "atari/Pong", "tandem", 0, {}) == "dqn_atari-Pong_tandem_s0"


def test_sweep_command_checks_backend_flags_and_plans(tmp_path):
    from tdgen.sweep.command import sweep_main

    with pytest.raises(ValueError, match="--ray-address does not apply to --backend local"):
        sweep_main(agent=("dqn",), env=("minatar/breakout",), ray_address="auto", out=tmp_path)
    results = sweep_main(agent=("dqn",), env=("minatar/breakout",), seeds=(0, 1), out=tmp_path,
                         dry_run=True)  # fmt: skip
    assert results == [] and not (tmp_path / "sweep.json").exists()
