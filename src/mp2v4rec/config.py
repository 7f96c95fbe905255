"""Configuration: schema validation with defaults, and the method/variant/walk-set naming.

A *variant* is a path wildcard that overrides a method's settings, ``default`` or
``key~value_key~value`` (``metapath~UUV_sampling~weighted_seed~1``); a *walk set* names exactly
the settings the walks depend on, so every training variant that shares walks shares the files.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mp2v4rec.graph import validate_metapath
from mp2v4rec.io import InputError
from mp2v4rec.kinds import KINDS, kind_of, methods_where
from mp2v4rec.times import split_mode, time_ms

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")  # package data: works installed

# short wildcard key -> method setting (keys may not contain "_" or "~")
VARIANT_KEYS = {
    "metapath": "metapath",
    "sampling": "sampling",
    "length": "walk_length",
    "pernode": "walks_per_node",
    "start": "start",
    "seed": "seed",
    "dim": "dim",
    "window": "window",
    "negative": "negative",
    "epochs": "epochs",
    "alpha": "alpha",
    "init": "init",
    "trainer": "trainer",
    "sample": "sample",
    "negexp": "ns_exponent",
    "score": "score",
}
WALK_KEYS = ["metapath", "sampling", "length", "pernode", "start", "seed"]

# the settings each skip-gram trainer reads (the train rules pass exactly these: a change to
# another key does not retrain)
SKIPGRAM_KEYS = ("dim", "window", "negative", "epochs", "alpha", "min_alpha", "sample")
SKIPGRAM_KEYS += ("ns_exponent", "seed")
SHARED_KEYS = ("dim", "window", "negative", "epochs", "seed", "ns_exponent", "optimizer")
SHARED_KEYS += ("alpha", "min_alpha", "init_std", "typed_negatives")


def shared_params(settings: Mapping) -> dict:
    """The settings the shared-table trainer reads (see mp2v4rec.shared_skipgram)."""
    params = {k: settings[k] for k in SHARED_KEYS if k != "typed_negatives"}
    return params | {"typed": settings["typed_negatives"]}


def train_settings(settings: Mapping) -> dict:
    """The settings a skip-gram method's training reads: its trainer's keys, the score and the
    initialisation."""
    trainer = settings.get("trainer", "gensim")
    keys = SHARED_KEYS if trainer == "shared" else SKIPGRAM_KEYS
    extra = {k: settings[k] for k in ("score", "init") if k in settings}
    return {k: settings[k] for k in keys} | extra | {"trainer": trainer}


def load_schema(path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """The config schema, its method entry completed from the registry of kinds: ``kind`` is
    one of the registered kinds and each kind's settings are its own definition (the schema
    file's definition of the same name, or the settings schema a registered kind carries)."""
    schema = yaml.safe_load(Path(path).read_text())
    method = schema["definitions"]["method"]
    method["properties"]["kind"]["enum"] = list(KINDS)
    branches = []
    for name, kind in KINDS.items():
        if kind.schema is not None:
            schema["definitions"].setdefault(name, copy.deepcopy(kind.schema))
        if name not in schema["definitions"]:
            raise InputError(f"method kind {name!r} has no settings schema (definitions.{name})")
        then = {"$ref": f"#/definitions/{name}"}
        branches.append({"if": {"properties": {"kind": {"const": name}}}, "then": then})
    method["allOf"] = branches
    return schema


def _registry_state() -> tuple:
    return tuple((name, id(kind)) for name, kind in KINDS.items())


_SCHEMA = load_schema()
_LOADED = {_registry_state(): _SCHEMA}  # the schema per state of the registry


def _current_schema() -> dict[str, Any]:
    """The schema for the kinds registered now (reloaded after ``kinds.register``)."""
    state = _registry_state()
    if state not in _LOADED:
        _LOADED.clear()
        _LOADED[state] = load_schema()
    return _LOADED[state]


def schema_default(*path: str) -> Any:
    """The schema's default of a top-level key (e.g. ``schema_default("metapaths")``)."""
    node = _SCHEMA
    for key in path:
        node = node["properties"][key]
    return copy.deepcopy(node["default"])


def defaults(definition: str, *path: str) -> dict[str, Any]:
    """The defaults of a schema definition's settings (``defaults("ials")``,
    ``defaults("dataset", "preprocess")``): the library's signatures take their defaults from
    here, so the schema is the one place a default is written."""
    node = _SCHEMA["definitions"][definition]
    for key in path:
        node = node["properties"][key]
    props = node["properties"].items()
    return {k: copy.deepcopy(v["default"]) for k, v in props if "default" in v}


METAPATHS = schema_default("metapaths")  # UV and UUV, as config.yaml restates them


def _with_defaults(validator_class):
    """A validator that fills in schema defaults before checking properties."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


def _strict_integers(validator_class):
    """Integers are ints (JSON Schema also takes 15.0, which a rule reading a count or naming a
    file by it cannot use)."""
    checker = validator_class.TYPE_CHECKER.redefine(
        "integer", lambda _, x: isinstance(x, int) and not isinstance(x, bool)
    )
    return jsonschema.validators.extend(validator_class, type_checker=checker)


_Strict = _strict_integers(jsonschema.Draft7Validator)
_Validator = _with_defaults(_Strict)


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return (
            f"config key {where}: unknown key(s) {extra}; allowed keys are {allowed}. "
            "Fix the spelling or remove the key."
        )
    if error.validator == "enum":
        return (
            f"config key {where}: {error.instance!r} is not one of {error.validator_value}; "
            "use one of these."
        )
    if error.validator == "type":
        return f"config key {where}: {error.message}; write a value of that type."
    if error.validator == "minItems":
        return (
            f"config key {where}: {error.message}; give at least {error.validator_value} "
            "value(s), or remove the key."
        )
    return f"config key {where}: {error.message}; fix the value (config.yaml documents every key)."


def validate_config(
    config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH
) -> dict[str, Any]:
    """Validate ``config`` in place (filling defaults) and check cross-references.

    Raises InputError naming every offending key.
    """
    schema = _current_schema() if schema_path == SCHEMA_PATH else load_schema(schema_path)
    errors = sorted(_Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    # `if/then` branches report twice (the branch and the failed `allOf`): keep the precise ones
    messages = list(dict.fromkeys(_describe(e) for e in errors if e.validator != "allOf"))
    if messages:
        raise InputError("invalid configuration:\n  " + "\n  ".join(messages))
    _check_references(config)
    return config


def _check_references(config: Mapping[str, Any]) -> None:
    for name, relations in config["metapaths"].items():
        validate_metapath(list(relations), name=name)
    ks = config["evaluate"]["ks"]
    if max(ks) > config["recommend"]["k"]:
        raise InputError(
            f"config key evaluate.ks: K={max(ks)} exceeds recommend.k={config['recommend']['k']}; "
            "raise recommend.k or drop the larger K values."
        )
    for name, dataset in config["datasets"].items():
        if dataset["kind"] == "events":
            _check_events(f"datasets.{name}", dataset)
    if not set(config["evaluate"]["per_user_ks"]) <= set(ks):
        raise InputError(
            f"config key evaluate.per_user_ks: {config['evaluate']['per_user_ks']} must be a "
            f"subset of evaluate.ks {ks}."
        )
    reference = config["evaluate"]["reference_method"]
    if reference is not None and reference not in config["methods"]:
        raise InputError(
            f"config key evaluate.reference_method: {reference!r} is not a configured method "
            f"({sorted(config['methods'])}); name one with item vectors, or null."
        )
    for key, named in (
        ("evaluate.reference_method", [reference] if reference else []),
        ("plots.pca_methods", config["plots"]["pca_methods"]),
    ):
        for method in named:
            if method in config["methods"] and not kind_of(config["methods"][method]).has_vectors:
                able = methods_where(config["methods"], has_vectors=True)
                raise InputError(
                    f"config key {key}: {method!r} has no item vectors; name one of {able}."
                )
    for name in config["methods"]:
        _check_variant(config, f"methods.{name}", name, "default")
    for section in ("ablation", "search"):
        for axis, values in config[section]["grid"].items():
            bad = [v for v in values if set(str(v)) & set("_~/")]
            if bad:
                raise InputError(
                    f"config key {section}.grid.{axis}: {bad[0]!r} holds '_', '~' or '/', which "
                    "variant names (result paths) use as separators; use values without them."
                )
        for variant in grid_variants(config[section]["grid"]):
            _check_variant(config, section, config[section]["method"], variant)
    for method in config["plots"]["pca_methods"]:
        if method not in config["methods"]:
            raise InputError(
                f"config key plots.pca_methods: {method!r} is not a configured method "
                f"({sorted(config['methods'])})."
            )
    check_serve_config(config)


def _check_events(key: str, dataset: Mapping[str, Any]) -> None:
    """An event-log dataset's files and its times and split, before any rule reads them."""
    if dataset["source"] == "files" and not dataset["files"].get("events"):
        raise InputError(
            f"config key {key}.files.events: required with source: files "
            "(a path, glob or list of event-log files)."
        )
    p, key = dataset["preprocess"], f"{key}.preprocess"
    if not any([*p["event_weights"].values(), p["default_event_weight"]]):
        raise InputError(
            f"config key {key}.event_weights: every event weight is 0 (or unset), so no pair "
            "scores above positive_min_score; give the events that mean interest a weight > 0."
        )
    has_eval = dataset["source"] == "synthetic" or dataset["files"].get("eval_events") is not None
    try:
        time_ms(p["decay_anchor"], p["timestamp_unit"], f"{key}.decay_anchor")
        cutoff = time_ms(p["cutoff_time"], p["timestamp_unit"], f"{key}.cutoff_time")
    except InputError as err:
        raise InputError(f"config key {err}") from None
    try:
        split_mode(p["split"], has_eval, cutoff)
    except InputError as err:
        source = (
            " (a synthetic source writes eval_events)" if dataset["source"] == "synthetic" else ""
        )
        raise InputError(f"config key {key}.split / {key}.cutoff_time: {err}{source}") from None


def serve_methods(config: Mapping[str, Any]) -> list[str]:
    """The methods the serve stage builds: ``serve.methods``, or by default every configured
    method whose kind is served by default (the registry's ``served``)."""
    listed = config["serve"]["methods"]
    if listed is None:
        return methods_where(config["methods"], served=True)
    return list(listed)


def check_serve_config(config: Mapping[str, Any]) -> None:
    """Every method under ``serve.methods`` must be configured and have item neighbours."""
    for method in serve_methods(config):
        if method not in config["methods"]:
            raise InputError(
                f"config key serve.methods: {method!r} is not a configured method "
                f"({sorted(config['methods'])}); list methods defined under methods."
            )
        kind = kind_of(config["methods"][method])
        if not kind.item_neighbours:
            able = methods_where(config["methods"], item_neighbours=True)
            raise InputError(
                f"config key serve.methods: {method!r} (kind {kind.name}) has no item vectors or "
                f"item-item weights to serve; methods that have are {sorted(able)}."
            )


def _check_variant(config: Mapping[str, Any], key: str, method: str, variant: str) -> None:
    """A grid cell (or a method's defaults) must give the method's kind valid settings and a
    usable metapath and init; an error names the config key the bad value came from (the grid
    axis ``{key}.grid.{axis}`` or the method's own ``methods.{method}.{setting}``)."""
    pairs = parse_variant(variant)
    short = {setting: axis for axis, setting in VARIANT_KEYS.items()}

    def where(*settings: str) -> str:
        """The key a bad value came from: the first of ``settings`` a grid axis set, else
        the method's own first setting."""
        for setting in settings:
            if short.get(setting) in pairs:
                return f"{key}.grid.{short[setting]}"
        return f"methods.{method}.{settings[0]}"

    if method not in config["methods"]:
        raise InputError(
            f"config key {key}.method: {method!r} is not configured under methods "
            f"({sorted(config['methods'])})."
        )
    for axis, value in pairs.items():
        try:
            method_settings(config, method, format_variant({axis: value}))
        except (InputError, ValueError) as err:
            raise InputError(f"config key {key}.grid.{axis}: {err}") from None
    settings = method_settings(config, method, variant)
    kind_schema = {
        "definitions": _current_schema()["definitions"],
        "$ref": f"#/definitions/{settings['kind']}",
    }
    for error in _Strict(kind_schema).iter_errors(settings):
        setting = str(error.absolute_path[0]) if error.absolute_path else ""
        raise InputError(f"config key {where(setting)}: {error.message}; fix the value.")
    if kind_of(settings).corpus != "walks":
        if variant != "default":
            raise InputError(
                f"config key {key}.method: {method!r} is not a method on metapath walks"
            )
        return
    if settings["metapath"] not in config["metapaths"]:
        raise InputError(
            f"config key {where('metapath')}: metapath {settings['metapath']!r} is not defined; "
            f"defined metapaths are {sorted(config['metapaths'])} (add it under metapaths)."
        )
    if settings["trainer"] == "shared" and (
        settings["score"] == "context" or settings["init"] != "random"
    ):
        raise InputError(
            f"config key {where('score', 'init', 'trainer')}: the shared trainer has one table, "
            "so no context score (score: cosine or dot) and no W2V initialisation (init: random)"
        )
    if settings["init"] == "w2v":
        source = config["methods"].get(settings["init_method"], {})
        if source.get("kind") != "w2v":
            raise InputError(
                f"config key {where('init_method', 'init')}: init w2v needs init_method to name "
                f"a w2v method, got {settings['init_method']!r}"
            )
        if source["dim"] != settings["dim"]:
            raise InputError(
                f"config key {where('dim', 'init')}: init w2v needs equal dims, but {method} has "
                f"dim {settings['dim']} and {settings['init_method']} has dim {source['dim']}"
            )


def grid_variants(grid: Mapping[str, list]) -> list[str]:
    """Every cell of a grid as a variant name, axes and values in config order."""
    if not grid:
        return []
    axes = list(grid)
    return [
        format_variant(dict(zip(axes, values, strict=True)))
        for values in itertools.product(*(grid[a] for a in axes))
    ]


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it."""
    return validate_config(yaml.safe_load(Path(path).read_text()) or {})


def parse_variant(variant: str) -> dict[str, str]:
    """``'metapath~UUV_seed~1'`` -> ``{'metapath': 'UUV', 'seed': '1'}``; ``'default'`` -> {}."""
    if variant == "default":
        return {}
    pairs = {}
    for part in variant.split("_"):
        key, sep, value = part.partition("~")
        if not sep or key not in VARIANT_KEYS or not value:
            raise InputError(
                f"variant {variant!r}: {part!r} is not key~value with key in {sorted(VARIANT_KEYS)}"
            )
        pairs[key] = value
    return pairs


def format_variant(pairs: Mapping[str, Any]) -> str:
    return "_".join(f"{k}~{v}" for k, v in pairs.items()) or "default"


def method_settings(config: Mapping[str, Any], method: str, variant: str) -> dict[str, Any]:
    """The method's settings with the variant's overrides applied, each cast to the type its
    kind's schema gives the setting (integer, number or string)."""
    if method not in config["methods"]:
        raise InputError(f"method {method!r} is not configured under methods")
    settings = dict(config["methods"][method])
    props = _current_schema()["definitions"][settings["kind"]]["properties"]
    for key, value in parse_variant(variant).items():
        name = VARIANT_KEYS[key]
        if name not in settings:
            raise InputError(f"variant {variant!r}: method {method!r} has no setting {name!r}")
        cast = {"integer": int, "number": float}.get(props[name].get("type"), str)
        try:
            settings[name] = cast(value)
        except ValueError:
            raise InputError(f"{value!r} is not a {cast.__name__} ({name})") from None
    return settings


def walkset_name(settings: Mapping[str, Any]) -> str:
    """Name of the walk set an mp2v method's settings read (only walk-affecting keys)."""
    return format_variant({k: settings[VARIANT_KEYS[k]] for k in WALK_KEYS})


def walk_settings(config: Mapping[str, Any], walkset: str) -> dict[str, Any]:
    """Settings of a walk set, with its metapath resolved to relations from the config."""
    pairs = parse_variant(walkset)
    if sorted(pairs) != sorted(WALK_KEYS):
        raise InputError(f"walk set {walkset!r} must name exactly {WALK_KEYS}")
    if pairs["metapath"] not in config["metapaths"]:
        raise InputError(f"walk set {walkset!r}: metapath {pairs['metapath']!r} is not defined")
    return {
        "metapath": list(config["metapaths"][pairs["metapath"]]),
        "sampling": pairs["sampling"],
        "walk_length": int(pairs["length"]),
        "walks_per_node": int(pairs["pernode"]),
        "start": pairs["start"],
        "seed": int(pairs["seed"]),
    }
