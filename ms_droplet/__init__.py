"""Droplet Search for Apache TVM's MetaSchedule.

``import ms_droplet`` registers the strategy name ``"droplet"``::

    from tvm.s_tir import meta_schedule as ms
    import ms_droplet

    ms.tune_tir(mod, target, work_dir, max_trials_global=300, strategy="droplet")
"""

from .database import check_work_dir
from .registry import register
from .strategy import DropletSearch

__all__ = ["DropletSearch", "__version__", "check_work_dir", "register"]
__version__ = "0.1.0"

register()
