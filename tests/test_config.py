"""PPOConfig validation, derived sizes and the budget switch."""

from dataclasses import fields

import pytest

from ppo_helpers.budget import budget, is_quick
from ppo_helpers.checks import check_range
from ppo_helpers.ppo import BOX_DEFAULTS, PPOConfig, Range


def test_derived_sizes_are_properties():
    cfg = PPOConfig(num_envs=8, num_steps=256, num_minibatches=8, total_steps=300_000)
    assert cfg.batch_size == 2048
    assert cfg.minibatch_size == 256
    assert cfg.num_updates == 147  # ceil(300000 / 2048)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"clip_coef": 1.5}, r"clip_coef must be in \(0, 1\), got 1.5"),
        ({"gamma": 1.2}, r"gamma must be in \[0, 1\], got 1.2"),
        ({"gae_lambda": -0.5}, r"gae_lambda must be in \[0, 1\], got -0.5"),
        ({"learning_rate": 0.0}, r"learning_rate must be in \(0, 1\], got 0.0"),
        ({"num_envs": 0}, r"num_envs must be in \[1, 1024\], got 0"),
        (
            {"num_minibatches": 5000},
            r"num_minibatches must be in \[1, 2048\], got 5000",
        ),
        ({"objective": "trust_me"}, r"objective must be one of .*, got 'trust_me'"),
        ({"beta": 0.0}, r"beta must be > 0, got 0.0"),
        ({"ent_coef": -0.1}, r"ent_coef must be in \[0, 1\], got -0.1"),
        ({"hidden": (64, 0)}, r"hidden must be >= 1, got 0"),
        ({"hidden": ()}, r"hidden must name at least one layer size"),
    ],
)
def test_bad_hyperparameters_name_the_parameter_and_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PPOConfig(**kwargs)


def test_every_field_has_a_one_line_doc_and_its_default_is_accepted():
    for f in fields(PPOConfig):
        doc = f.metadata["doc"]
        assert doc and "\n" not in doc, f.name
        accepted = f.metadata["accepted"]
        if accepted is not None:
            accepted.check(f.name, f.default, PPOConfig())


def test_a_range_may_name_another_field_as_its_bound():
    assert str(Range(1, "batch_size")) == "[1, batch_size]"
    Range(1, "batch_size").check("n", 2048, PPOConfig())
    with pytest.raises(ValueError, match=r"n must be in \[1, 2048\], got 2049"):
        Range(1, "batch_size").check("n", 2049, PPOConfig())


def test_for_env_picks_the_box_defaults_by_action_space_and_flags_win():
    box = PPOConfig.for_env("Pendulum-v1")
    for name, value in BOX_DEFAULTS.items():
        assert getattr(box, name) == value, name
    assert PPOConfig.for_env("Pendulum-v1", gamma=0.9).gamma == 0.9
    assert PPOConfig.for_env("CartPole-v1") == PPOConfig(env_id="CartPole-v1")
    assert PPOConfig.for_env() == PPOConfig()


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
