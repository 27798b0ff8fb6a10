"""A run's seeds: their tables combined into means and standard deviations, and kept side by side."""

from __future__ import annotations

import pandas as pd

from .report import KEYS, TEXT_COLUMNS


def combine_seeds(per_seed: list[dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """One seed: its tables. Several: each metric's mean, and beside it `<metric>_std` (ddof 1)."""
    if len(per_seed) == 1:
        return per_seed[0]
    combined = {}
    for key, keys in KEYS.items():
        table = pd.concat([tables[key] for tables in per_seed], ignore_index=True)
        texts = {c: table.groupby(keys, sort=False)[c].agg(lambda v: " | ".join(dict.fromkeys(x for x in v if x)))
                 for c in TEXT_COLUMNS if c in table}
        metrics = [c for c in table.columns if c not in keys and c not in TEXT_COLUMNS]
        if table.empty:
            combined[key] = pd.DataFrame(columns=keys + [f"{m}{s}" for m in metrics for s in ("", "_std")])
            continue
        table[metrics] = table[metrics].apply(pd.to_numeric, errors="coerce")  # None -> NaN
        grouped = table[keys + metrics].groupby(keys, sort=False)
        mean, std = grouped.mean(numeric_only=True), grouped.std(numeric_only=True).add_suffix("_std")
        columns = [c for m in mean.columns for c in (m, f"{m}_std")]
        joined = mean.join(std)[columns]
        for position, (column, values) in enumerate(texts.items()):
            joined.insert(position, column, values)
        combined[key] = joined.reset_index()
    return combined


def by_seed(per_seed: list[dict[str, pd.DataFrame]], seeds: list[int]) -> dict[str, pd.DataFrame]:
    """Each table with rows, every seed's rows one after another, a `seed` column first: the values the
    means and standard deviations of combine_seeds are computed from."""
    found = {}
    for key in KEYS:
        tables = [tables[key].assign(seed=seed) for seed, tables in zip(seeds, per_seed, strict=True)
                  if not tables[key].empty]
        if tables:
            table = pd.concat(tables, ignore_index=True)
            found[key] = table[["seed", *(column for column in table.columns if column != "seed")]]
    return found
