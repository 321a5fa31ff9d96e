"""The dataset build: a data recipe in, one validated Parquet dataset with its report and card out.

    python -m data_prep.build --config recipes/data/crohme.yaml

Modules, in the order a build runs them: :mod:`~data_prep.build.recipe` (the data recipe YAML ->
``DataRecipe``), :mod:`~data_prep.build.pipeline` (the entry point, ``build_dataset`` and ``main``),
:mod:`~data_prep.build.builder` (``DatasetBuilder``: splits -> shards -> manifest),
:mod:`~data_prep.build.stream` (splits and reader streams), :mod:`~data_prep.build.records`
(per-record work in worker processes), :mod:`~data_prep.build.state` (what is saved with each
shard), :mod:`~data_prep.build.safety` (an output folder never overlaps a source),
:mod:`~data_prep.build.contamination` (train/test overlap), :mod:`~data_prep.build.report` and
:mod:`~data_prep.build.card` (what a finished build says about itself) and
:mod:`~data_prep.build.sharegpt` (the ShareGPT JSON export of a built dataset).
The format a build writes is owned by :mod:`data_prep.dataset`.
"""

from data_prep.build.builder import MANIFEST_FORMAT, DatasetBuilder
from data_prep.build.pipeline import build_dataset, main
from data_prep.build.records import encode_png, stable_fraction
from data_prep.build.results import SplitResult
from data_prep.build.stream import SplitPlan, plan_splits
from data_prep.dataset import SHARD_PATTERN

__all__ = [
    "MANIFEST_FORMAT",
    "SHARD_PATTERN",
    "DatasetBuilder",
    "SplitPlan",
    "SplitResult",
    "build_dataset",
    "encode_png",
    "main",
    "plan_splits",
    "stable_fraction",
]
