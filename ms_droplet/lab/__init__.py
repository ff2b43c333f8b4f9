"""The strategy lab: compare search strategies over many seeds on recorded landscapes.

- :mod:`.landscape`: the recorded measurements of one workload's schedules (format, load, save);
- :mod:`.record`: recording a landscape on the real machine, adding MetaSchedule work dirs;
- :mod:`.surrogate`: a model of the run time of schedules never measured, trained on a landscape;
- :mod:`.noise`: measurement noise and per-batch drift, fitted on the landscape's repeats;
- :mod:`.simulated`: a ``PyBuilder``/``PyRunner`` pair answering from the landscape;
- :mod:`.simulate`: real ``tune_tir`` runs of any strategies over seeds, and their statistics.
"""

from .landscape import Landscape, LandscapeError, load

__all__ = ["Landscape", "LandscapeError", "load"]
