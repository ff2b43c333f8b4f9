"""A model of the run time of schedules the landscape never measured.

Features are MetaSchedule's own per-store features (``PerStoreFeature``, what its xgb cost model
learns from) of the scheduled module, reduced to one fixed-length row per schedule: the sum and
the maximum of each feature over the stores, and the number of stores. An xgboost regressor
learns the log of the run time from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .landscape import Landscape


def feature_context(land: Landscape):
    """A ``TuneContext`` for feature extraction (the feature extractor reads the target from it)."""
    from tvm.s_tir import meta_schedule as ms
    from tvm.target import Target

    return ms.TuneContext(mod=land.mod, target=Target(land.target), task_name=land.workload)


def features(context, mods: list) -> np.ndarray:
    """One row per scheduled module: per-store features summed, their maxima, and the store count."""
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo
    from tvm.s_tir.meta_schedule.search_strategy import MeasureCandidate
    from tvm.s_tir.schedule import Schedule

    if not mods:
        return np.zeros((0, 0))
    candidates = [MeasureCandidate(Schedule(mod), ArgInfo.from_entry_func(mod, remove_preproc=True)) for mod in mods]
    rows = []
    for per_store in ms.feature_extractor.PerStoreFeature().extract_from(context, candidates):
        f = per_store.numpy()
        rows.append(np.concatenate([f.sum(axis=0), f.max(axis=0), [len(f)]]))
    return np.vstack(rows)


@dataclass
class Surrogate:
    """Predicts run seconds from :func:`features` rows."""

    model: Any

    @classmethod
    def fit(cls, x: np.ndarray, seconds: np.ndarray, seed: int = 0) -> Surrogate:
        import xgboost as xgb

        params = {"max_depth": 6, "eta": 0.05, "subsample": 0.8, "colsample_bytree": 0.8, "nthread": 1,
                  "seed": seed, "objective": "reg:squarederror"}
        return cls(xgb.train(params, xgb.DMatrix(x, label=np.log(seconds)), num_boost_round=400))

    def predict(self, x: np.ndarray) -> np.ndarray:
        import xgboost as xgb

        if len(x) == 0:
            return np.zeros(0)
        return np.exp(self.model.predict(xgb.DMatrix(x)))


def measured_table(land: Landscape, context) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Keys, feature rows and noise-free values of every schedule measured with success."""
    from ..trace import module_key
    from .record import schedule_of

    mod = land.mod
    keys, mods, values = [], [], []
    for key, value in land.values().items():
        if value is None:
            continue
        sch = schedule_of(mod, land.traces[key])
        if module_key(sch.mod) != key:  # the trace no longer rebuilds what was measured: leave it out
            continue
        keys.append(key)
        mods.append(sch.mod)
        values.append(value)
    return keys, features(context, mods), np.asarray(values)


def train(land: Landscape, context, seed: int = 0) -> Surrogate:
    """The surrogate trained on every measured schedule of ``land``."""
    _, x, y = measured_table(land, context)
    if len(y) < 10:
        raise ValueError(f"landscape {land.workload}: {len(y)} measured schedules, at least 10 are needed")
    return Surrogate.fit(x, y, seed)


def noise_ceiling(land: Landscape, values: np.ndarray, seed: int = 0) -> dict[str, float]:
    """How well even a perfect model could seem to rank ``values``, each one noisy measurement.

    With the landscape's noise model, Spearman between the values and the values measured once
    more (median of 200 draws): an optimistic bound, since the values' own spread already
    holds noise. When the noise of one measurement is as wide as the values' spread, a held-out
    ranking cannot be reproduced, by a surrogate or by the machine.
    """
    from scipy.stats import spearmanr

    from .noise import NoiseModel

    noise = NoiseModel.fit(land)
    rounds = float(np.median([len(m.secs) for m in land.measurements if m.secs] or [1]))
    sd = float(np.sqrt(noise.batch_sigma**2 + noise.candidate_sigma**2 + noise.sample_sigma**2 / rounds))
    logs = np.log(values)
    rng = np.random.default_rng(seed)
    draws = [spearmanr(logs, logs + rng.normal(0, sd, len(logs))).statistic for _ in range(200)] if sd else [1.0]
    return {"measurement_sd": sd, "top10_log_sd": float(logs.std()), "noise_ceiling_top10": float(np.median(draws))}


def validate(land: Landscape, folds: int = 5, seed: int = 0, context=None) -> dict[str, Any]:
    """Cross-validated rank agreement of the surrogate on held-out measured schedules.

    Every schedule is predicted by a model that never saw it; Spearman's rho between measured
    and predicted values over all of them, and among the best 10% by measured value (the region
    a search ends in, where ranking matters most).
    """
    from scipy.stats import spearmanr

    context = context or feature_context(land)
    _, x, y = measured_table(land, context)
    if len(y) < 2 * folds:
        raise ValueError(f"landscape {land.workload}: {len(y)} measured schedules are too few for {folds} folds")
    order = np.random.default_rng(seed).permutation(len(y))
    predicted = np.empty(len(y))
    for fold in range(folds):
        held = order[fold::folds]
        train_rows = np.setdiff1d(order, held)
        predicted[held] = Surrogate.fit(x[train_rows], y[train_rows], seed).predict(x[held])
    top = np.argsort(y)[: max(len(y) // 10, 3)]
    return {
        **noise_ceiling(land, y[top], seed),
        "n": len(y),
        "n_top10": len(top),
        "spearman_all": float(spearmanr(y, predicted).statistic),
        "spearman_top10": float(spearmanr(y[top], predicted[top]).statistic),
        "median_abs_log_error": float(np.median(np.abs(np.log(predicted / y)))),
        "folds": folds,
    }
