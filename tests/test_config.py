"""The configs (RunConfig, PPOConfig, TRPOConfig): validation, derived sizes, the
presets that route settings to them, and the budget switch."""

from dataclasses import fields

import pytest
from conftest import train_with

from ppo_helpers import presets
from ppo_helpers.budget import budget, is_quick
from ppo_helpers.checks import check_range
from ppo_helpers.optim import UpdateConfig, minibatch_size
from ppo_helpers.ppo import PPOConfig
from ppo_helpers.presets import BOX_DEFAULTS
from ppo_helpers.run import RunConfig
from ppo_helpers.trpo import TRPOConfig

CONFIGS = (RunConfig, UpdateConfig, PPOConfig, TRPOConfig)


def names(config_class) -> set[str]:
    return {f.name for f in fields(config_class)}


def test_derived_sizes_are_properties():
    cfg = RunConfig(num_envs=8, num_steps=256, total_steps=300_000)
    assert cfg.batch_size == 2048
    assert cfg.num_updates == 147  # ceil(300000 / 2048)
    assert minibatch_size(cfg.batch_size, 8) == 256
    assert minibatch_size(10, 3) == 3  # a remainder makes one more, smaller one


@pytest.mark.parametrize(
    "config_class,kwargs,message",
    [
        (PPOConfig, {"clip_coef": 1.5}, r"clip_coef must be in \(0, 1\), got 1.5"),
        (TRPOConfig, {"clip_coef": 0.0}, r"clip_coef must be in \(0, 1\), got 0.0"),
        (RunConfig, {"gamma": 1.2}, r"gamma must be in \[0, 1\], got 1.2"),
        (RunConfig, {"gae_lambda": -0.5}, r"gae_lambda must be in \[0, 1\], got -0.5"),
        (
            RunConfig,
            {"learning_rate": 0.0},
            r"learning_rate must be in \(0, 1\], got 0.0",
        ),
        (RunConfig, {"num_envs": 0}, r"num_envs must be in \[1, 1024\], got 0"),
        (PPOConfig, {"num_minibatches": 0}, r"num_minibatches must be >= 1, got 0"),
        (TRPOConfig, {"num_minibatches": 0}, r"num_minibatches must be >= 1, got 0"),
        (
            PPOConfig,
            {"objective": "trust_me"},
            r"objective must be one of .*, got 'trust_me'",
        ),
        (PPOConfig, {"beta": 0.0}, r"beta must be > 0, got 0.0"),
        (PPOConfig, {"ent_coef": -0.1}, r"ent_coef must be in \[0, 1\], got -0.1"),
        (TRPOConfig, {"max_kl": -1}, r"max_kl must be > 0, got -1"),
        (RunConfig, {"hidden": (64, 0)}, r"hidden must be >= 1, got 0"),
        (RunConfig, {"hidden": ()}, r"hidden must name at least one layer size"),
    ],
)
def test_bad_hyperparameters_name_the_parameter_and_range(
    config_class, kwargs, message
):
    with pytest.raises(ValueError, match=message):
        config_class(**kwargs)


def test_every_field_has_a_one_line_doc_and_its_default_is_accepted():
    for config_class in CONFIGS:
        for f in fields(config_class):
            doc = f.metadata["doc"]
            assert doc and "\n" not in doc, (config_class.__name__, f.name)
            accepted = f.metadata["accepted"]
            if accepted is not None:
                accepted.check(f.name, f.default)
        config_class()  # and all the defaults together


def test_the_algorithm_configs_share_the_update_fields_and_none_of_the_runs():
    shared = names(UpdateConfig)
    assert shared <= names(PPOConfig) and shared <= names(TRPOConfig)
    assert names(PPOConfig) & names(TRPOConfig) == shared
    for config_class in (PPOConfig, TRPOConfig):
        assert names(RunConfig).isdisjoint(names(config_class)), config_class


def test_minibatch_size_names_num_minibatches_and_the_batch_as_its_bound():
    # the batch's samples bound num_minibatches, checked when an update splits it
    assert minibatch_size(2048, 2048) == 1 and minibatch_size(2048, 1) == 2048
    bound = r"num_minibatches must be in \[1, 2048\] \(the batch's samples\), got "
    with pytest.raises(ValueError, match=bound + "2049"):
        minibatch_size(2048, 2049)
    with pytest.raises(ValueError, match=bound + "0"):
        minibatch_size(2048, 0)


@pytest.mark.parametrize("algo", ["ppo", "trpo"])
def test_a_run_with_more_minibatches_than_samples_is_refused(algo):
    # 2 envs x 16 steps: 32 samples for 33 minibatches (PPO's update, TRPO's critic)
    settings = dict(env_id="CartPole-v1", num_envs=2, num_steps=16, total_steps=32)
    match = r"num_minibatches must be in \[1, 32\] \(the batch's samples\), got 33"
    with pytest.raises(ValueError, match=match):
        train_with({**settings, "num_minibatches": 33}, algo)
    # the bound itself holds: 32 minibatches of one sample (too few to normalise)
    at_bound = {**settings, "num_minibatches": 32, "norm_adv": False}
    assert len(train_with(at_bound, algo).updates) == 1


def test_configs_sends_each_setting_to_the_config_that_declares_it():
    run_cfg, ppo_cfg = presets.configs(
        seed=3, gamma=0.9, update_epochs=3, ent_coef=0.0, clip_coef=0.1
    )
    assert run_cfg == RunConfig(seed=3, gamma=0.9)  # run fields
    assert ppo_cfg == PPOConfig(update_epochs=3, ent_coef=0.0, clip_coef=0.1)
    run_cfg, trpo_cfg = presets.configs(
        "trpo", num_envs=4, max_kl=0.02, num_minibatches=4, vf_coef=1.0
    )
    assert run_cfg == RunConfig(num_envs=4)
    assert trpo_cfg == TRPOConfig(max_kl=0.02, num_minibatches=4, vf_coef=1.0)
    assert presets.configs() == (RunConfig(), PPOConfig())
    assert presets.configs("trpo") == (RunConfig(), TRPOConfig())


@pytest.mark.parametrize(
    "algo,settings,message",
    [
        ("ppo", {"minibatch_size": 64}, "minibatch_size is not a setting of "),
        ("ppo", {"max_kl": 0.02}, "max_kl is not a setting of RunConfig or PPOConfig"),
        ("trpo", {"ent_coef": 0.0}, "ent_coef is not a setting of .* or TRPOConfig"),
        ("trpo", {"update_epochs": 3, "gamma": 0.9}, "update_epochs is not a "),
    ],
)
def test_configs_refuses_a_setting_that_no_config_declares(algo, settings, message):
    with pytest.raises(TypeError, match=message):
        presets.configs(algo, **settings)


def test_an_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match=r"algo must be one of \('ppo', 'trpo'\)"):
        presets.configs("sgd")
    with pytest.raises(ValueError, match="algo must be one of"):
        presets.for_env("CartPole-v1", algo="sgd")


def test_every_box_default_is_a_field_of_the_run_or_ppo():
    declared = names(RunConfig) | names(PPOConfig)
    assert BOX_DEFAULTS.keys() <= declared


def test_for_env_picks_the_box_defaults_by_action_space_and_flags_win():
    box = presets.for_env("Pendulum-v1")
    for name, value in BOX_DEFAULTS.items():
        owner = box[0] if name in names(RunConfig) else box[1]
        assert getattr(owner, name) == value, name
    assert box[0].env_id == "Pendulum-v1"
    assert presets.for_env("Pendulum-v1", gamma=0.9)[0].gamma == 0.9
    assert presets.for_env("Pendulum-v1", ent_coef=0.01)[1].ent_coef == 0.01
    assert presets.for_env("CartPole-v1") == (
        RunConfig(env_id="CartPole-v1"),
        PPOConfig(),
    )
    assert presets.for_env() == (RunConfig(), PPOConfig())


def test_for_env_gives_trpo_the_box_defaults_that_trpo_has():
    run_cfg, trpo_cfg = presets.for_env("Pendulum-v1", algo="trpo")
    assert type(trpo_cfg) is TRPOConfig
    assert trpo_cfg.num_minibatches == BOX_DEFAULTS["num_minibatches"] == 16
    assert not hasattr(trpo_cfg, "ent_coef")  # a PPO setting, skipped
    assert run_cfg == presets.for_env("Pendulum-v1")[0]  # the run's are the same
    assert trpo_cfg == TRPOConfig(num_minibatches=16)
    assert presets.for_env("Pendulum-v1", algo="trpo", max_kl=0.02)[1].max_kl == 0.02
    assert presets.for_env("CartPole-v1", algo="trpo") == (
        RunConfig(env_id="CartPole-v1"),
        TRPOConfig(),
    )
    # a PPO setting given by name is refused, not skipped as the Box default is
    with pytest.raises(TypeError, match="ent_coef is not a setting"):
        presets.for_env("Pendulum-v1", algo="trpo", ent_coef=0.0)


def test_budget_switch(monkeypatch):
    monkeypatch.delenv("PPO_BOOK_QUICK", raising=False)
    assert not is_quick()
    assert budget(full=100, quick=3) == 100
    monkeypatch.setenv("PPO_BOOK_QUICK", "1")
    assert is_quick()
    assert budget(full=100, quick=3) == 3
    monkeypatch.setenv("PPO_BOOK_QUICK", "0")
    assert budget(full=100, quick=3) == 100


@pytest.mark.parametrize(
    "args,message",
    [
        (("x", 2, 0, 1), r"x must be in \[0, 1\], got 2"),
        (("x", 0, 0, None), None),
        (("x", 0, 0, None, False), r"x must be > 0, got 0"),
        (("x", 5, None, 3), r"x must be <= 3, got 5"),
        (("x", float("nan"), 0, 1), r"x must be in \[0, 1\], got nan"),
    ],
)
def test_check_range_messages(args, message):
    name, value, low, high, *rest = args
    kwargs = {"low_inclusive": rest[0]} if rest else {}
    if message is None:
        check_range(name, value, low, high, **kwargs)
    else:
        with pytest.raises(ValueError, match=message):
            check_range(name, value, low, high, **kwargs)
