"""The "droplet" name wherever MetaSchedule takes a strategy name."""

import pytest
from conftest import matmul_mod
from tvm.s_tir import meta_schedule as ms

import ms_droplet
from ms_droplet.registry import is_registered


def test_create_droplet_returns_droplet_search():
    assert is_registered()
    strategy = ms.search_strategy.SearchStrategy.create("droplet")
    assert isinstance(strategy, ms_droplet.DropletSearch)
    assert isinstance(strategy, ms.search_strategy.SearchStrategy)


def test_create_passes_keyword_arguments():
    strategy = ms.search_strategy.create("droplet", explore_trials=5)
    assert strategy.options["explore_trials"] == 5


def test_builtin_names_still_work():
    create = ms.search_strategy.SearchStrategy.create
    assert isinstance(create("evolutionary"), ms.search_strategy.EvolutionarySearch)
    assert isinstance(create("replay-trace"), ms.search_strategy.ReplayTrace)
    assert isinstance(create("replay-func"), ms.search_strategy.ReplayFunc)
    assert isinstance(create(), ms.search_strategy.EvolutionarySearch)
    with pytest.raises(ValueError, match="Unknown SearchStrategy: storm"):
        create("storm")


def test_register_is_idempotent():
    ms_droplet.register()
    ms_droplet.register()
    assert isinstance(ms.search_strategy.SearchStrategy.create("droplet"), ms_droplet.DropletSearch)


def test_tune_context_resolves_the_name(target):
    ctx = ms.TuneContext(
        mod=matmul_mod(), target=target, space_generator="post-order-apply", search_strategy="droplet",
        task_name="t", num_threads=1, rand_state=1,
    )
    # the FFI hands back the C++ object; its behaviour shows which strategy it is
    builtin = (ms.search_strategy.EvolutionarySearch, ms.search_strategy.ReplayTrace, ms.search_strategy.ReplayFunc)
    assert not isinstance(ctx.search_strategy, builtin)
    ctx.pre_tuning(4, 4, ctx.generate_design_space(), None, None)
    assert len(ctx.generate_measure_candidates()) == 2  # droplet explores half the budget
    ctx.post_tuning()
