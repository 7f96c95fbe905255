"""The registry of method kinds: what each kind *is*, in one table.

Every place that treats methods differently reads this table and never a method's name: the
config schema's method entry (:func:`mp2v4rec.config.validate_config` checks a method's settings
against the schema definition its kind names), the workflow's input functions and wildcard
constraints (``workflow/rules/common.smk``), the in-memory :func:`mp2v4rec.methods.fit_method`,
the job bodies (:mod:`mp2v4rec.jobs`) and the serve stage.

A kind says:

- ``fit``: ``"module:function"``, imported when first used (this module stays import-light so the
  Snakefile parses fast); the function takes ``(data: models.FitData, settings)`` and returns a
  model of the kind's ``model`` type;
- ``model``: what the train stage writes and recommend reads: ``embeddings`` (user and item
  vectors, ``embeddings.npz``), ``item_item`` (an item x item weight matrix, ``item_item.npz``,
  scored as ``history @ W``) or ``none`` (nothing stored: recommend fits it from train, as
  UserKNN's neighbour sums);
- ``corpus``: ``walks`` (metapath walks), ``sequences`` (time-ordered train items) or None;
- ``curve``: it records a validation curve per epoch (``curve.tsv``, training-curve figure);
- ``compared``: it is a baseline in the paired tests (every kind but the method under study);
- ``served``: the serve stage builds it when ``serve.methods`` is null.

Adding a kind is one entry here, one schema definition with its settings and defaults
(``src/mp2v4rec/config.schema.yaml``, under the entry's ``name``), one fit module and its tests.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

MODELS = ("embeddings", "item_item", "none")
CORPORA = ("walks", "sequences")


@dataclass(frozen=True)
class Kind:
    name: str
    fit: str
    model: str
    summary: str
    corpus: str | None = None
    curve: bool = False
    compared: bool = True
    served: bool = False
    schema: dict | None = None  # settings schema of a kind defined outside the schema file

    def __post_init__(self):
        if self.model not in MODELS or self.corpus not in (None, *CORPORA):
            raise ValueError(f"kind {self.name}: model {self.model!r} / corpus {self.corpus!r}")
        if ":" not in self.fit:
            raise ValueError(f"kind {self.name}: fit must be 'module:function', got {self.fit!r}")

    @property
    def has_vectors(self) -> bool:
        """User and item vectors (diversity in a vector space, PCA, the protocols' rescoring)."""
        return self.model == "embeddings"

    @property
    def item_neighbours(self) -> bool:
        """Similar items straight from the model (vectors or item-item weights)."""
        return self.model in ("embeddings", "item_item")

    def fit_function(self) -> Callable:
        module, _, function = self.fit.partition(":")
        return getattr(importlib.import_module(module), function)


_ENTRIES = [
    Kind(
        "mp2v",
        "mp2v4rec.embed:fit_skipgram",
        "embeddings",
        "metapath2vec: skip-gram on metapath walks (gensim or the one-table trainer)",
        corpus="walks",
        curve=True,
        compared=False,
        served=True,
    ),
    Kind(
        "w2v",
        "mp2v4rec.embed:fit_skipgram",
        "embeddings",
        "item2vec: skip-gram on each user's time-ordered train items",
        corpus="sequences",
        curve=True,
        served=True,
    ),
    Kind(
        "ultragcn",
        "mp2v4rec.baselines.ultragcn:fit",
        "embeddings",
        "UltraGCN (Mao et al., CIKM 2021)",
        curve=True,
    ),
    Kind(
        "ials",
        "mp2v4rec.baselines.ials:fit",
        "embeddings",
        "implicit ALS (Hu, Koren, Volinsky 2008) through the implicit library",
        curve=True,
    ),
    Kind(
        "ease",
        "mp2v4rec.baselines.ease:fit",
        "item_item",
        "EASE (Steck, WWW 2019): closed-form item-item ridge regression",
        served=True,
    ),
    Kind(
        "rp3b",
        "mp2v4rec.baselines.rp3beta:fit",
        "item_item",
        "RP3beta (Paudel et al., TiiS 2016): 3-step random walk, popularity-penalised",
        served=True,
    ),
    Kind(
        "itemknn",
        "mp2v4rec.baselines.itemknn:fit",
        "item_item",
        "ItemKNN: cosine item-item neighbours with shrinkage",
        served=True,
    ),
    Kind(
        "userknn", "mp2v4rec.baselines.userknn:fit", "none", "UserKNN: cosine user-user neighbours"
    ),
    Kind(
        "popularity",
        "mp2v4rec.baselines.simple:fit_popularity",
        "embeddings",
        "most-watched train items",
    ),
    Kind(
        "random", "mp2v4rec.baselines.simple:fit_random", "embeddings", "a data-independent ranking"
    ),
]
KINDS: dict[str, Kind] = {k.name: k for k in _ENTRIES}


def kind_of(settings: Mapping) -> Kind:
    """The registry entry of a method's settings (``settings["kind"]``)."""
    name = settings["kind"]
    if name not in KINDS:
        raise KeyError(f"unknown method kind {name!r}; kinds are {sorted(KINDS)}")
    return KINDS[name]


def methods_where(methods: Mapping[str, Mapping], **wanted) -> list[str]:
    """Configured method names whose kind has every given attribute value, in config order
    (``methods_where(config["methods"], model="item_item")``)."""
    return [
        name
        for name, settings in methods.items()
        if all(getattr(kind_of(settings), key) == value for key, value in wanted.items())
    ]


def register(kind: Kind) -> Kind:
    """Add a kind at run time (a plug-in, or a test's toy kind); its schema definition must be
    added to the config schema under the same name to configure it through a config file."""
    if kind.name in KINDS:
        raise ValueError(f"kind {kind.name!r} is already registered")
    KINDS[kind.name] = kind
    return kind
