"""Every config key a rule reads, with its boundary values: the schema walked from a base config.

``boundary_edits(config)`` yields ``(key, value)`` for every leaf setting the config holds (each
dataset and method through the definition of its kind, each grid axis, metapath and list):
numbers get 0 and -1 (integers also 2.0), booleans their other value, lists [] and a list
holding an unknown name (and [0], [-1] where numbers are allowed), free strings an unknown name,
grid values a name with the separator "_". ``edited(config, key, value)`` is a deep copy with
that one setting replaced.
"""

from __future__ import annotations

import copy

from mp2v4rec.config import load_schema

UNKNOWN = "nosuch"


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _values(node: dict) -> list:
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else types
    if "array" in types:
        items = node.get("items", {}).get("type", [])
        numeric = {"integer", "number"} & set([items] if isinstance(items, str) else items)
        return [[], [UNKNOWN], ["a_b"]] + ([[0], [-1]] if numeric else [])
    if "integer" in types or "number" in types:
        return [0, -1, 2.0] if "integer" in types else [0, -1]  # 2.0: a whole float
    if "boolean" in types:
        return [True, False]  # the one that differs from the config's value is kept
    if "string" in types and "pattern" not in node:
        return [UNKNOWN]
    return []


# what a dataset's source reads: the others are never opened (test_events and test_download
# check them where they are read)
UNREAD = {"synthetic": ("files", "download", "archive"), "download": ("files", "synthetic")}
UNREAD["files"] = ("synthetic", "download", "archive")


def _walk(schema: dict, node: dict, value, path: tuple):
    node = _resolve(schema, node)
    if isinstance(value, dict):
        props = node.get("properties", {})
        unread = UNREAD.get(value.get("source"), ()) if path[:1] == ("datasets",) else ()
        for key, sub in value.items():
            if key in unread:
                continue
            if key in props:
                child = props[key]
            elif isinstance(node.get("additionalProperties"), dict):
                child = node["additionalProperties"]
            else:
                continue
            yield from _walk(schema, _kind_branch(schema, child, sub), sub, (*path, key))
        if not value and isinstance(node.get("additionalProperties"), dict):
            yield path, {UNKNOWN: [0]}  # an empty map (a grid) given an unknown entry
    else:
        for boundary in _values(node):
            yield path, boundary


def _kind_branch(schema: dict, node: dict, value) -> dict:
    """A dataset or method entry walks through the definition of its kind."""
    node = _resolve(schema, node)
    if isinstance(value, dict) and "kind" in value:
        for branch in node.get("allOf", []):
            if branch["if"]["properties"]["kind"]["const"] == value["kind"]:
                return _resolve(schema, branch["then"])
    return node


def boundary_edits(config: dict) -> list[tuple[tuple, object]]:
    schema = load_schema()
    seen, edits = set(), []
    for path, value in _walk(schema, schema, config, ()):
        if (path, repr(value)) not in seen and value != _get(config, path):
            seen.add((path, repr(value)))
            edits.append((path, value))
    return edits


def _get(config: dict, key: tuple):
    for part in key:
        config = config[part]
    return config


def conflict(a: tuple, b: tuple) -> bool:
    """Two edits that may not share a run: the same key, or siblings in one preprocess setting
    (two event weights at 0 leave a tiny log with too few positives: a property of the data,
    refused by preprocess with one line, not a crash)."""
    return a == b or ("preprocess" in a and a[:-1] == b[:-1])


def edited(config: dict, key: tuple, value) -> dict:
    out = copy.deepcopy(config)
    node = out
    for part in key[:-1]:
        node = node[part]
    node[key[-1]] = copy.deepcopy(value)
    return out
