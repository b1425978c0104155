"""What the rule engine prepares once and both of its check paths read.

``RuleEngine.build`` projects and indexes the layers and fills a :class:`PreparedRules`;
the single-point check (``engine``) and batch flagging (``batch``) read it and nothing else
of each other, so neither module imports the other's internals (``engine`` calls
``batch.flag_sites``; ``batch`` never imports ``engine``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyproj import Transformer

from geoapp.domain.rules import POINTS, RuleSet
from geoapp.spatial.ground import GroundDistance
from geoapp.spatial.index import Grid, LayerIndex


def text_array(values: Sequence[Any]) -> Any:
    """The pandas array a DataFrame column of these values would hold (str dtype, NaN for
    None, under pandas 3)."""
    flat = np.empty(len(values), dtype=object)  # 1-d whatever the values look like
    flat[:] = values
    return pd.Series(flat).array


@dataclass(frozen=True)
class HitTexts:
    """Every text a batch hit row can carry (rule ids, feature ids and names, severities),
    each as one pandas array, so the result's text columns are gathered with ``take``
    instead of being inferred again from object arrays on every call.

    ``feature_offset[layer] + feature`` indexes ``feature_ids``/``feature_names``;
    ``severity_offset[rule_id] + feature`` indexes ``severities``."""

    rule_ids: Any
    feature_ids: Any
    feature_names: Any
    feature_offset: Mapping[str, int]
    severities: Any
    severity_offset: Mapping[str, int]
    points: Any

    @classmethod
    def build(cls, rules: RuleSet, layer_names: Sequence[str],
              features: Mapping[str, Mapping[str, np.ndarray]],
              severities: Mapping[str, np.ndarray]) -> HitTexts:
        sizes = [len(features[n]["id"]) for n in layer_names]
        sev = [severities[r.id] for r in rules]
        return cls(
            rule_ids=text_array([r.id for r in rules]),
            feature_ids=text_array([v for n in layer_names for v in features[n]["id"]]),
            feature_names=text_array([v for n in layer_names for v in features[n]["name"]]),
            feature_offset=dict(zip(layer_names, np.cumsum([0] + sizes[:-1]).tolist(),
                                    strict=True)),
            severities=text_array([v for a in sev for v in a]),
            severity_offset=dict(zip([r.id for r in rules],
                                     np.cumsum([0] + [len(v) for v in sev[:-1]]).tolist(),
                                     strict=True)),
            points=text_array(list(POINTS)))


@dataclass(frozen=True)
class PreparedRules:
    """The rules with their layers projected, indexed and tabulated, built once per engine.

    * ``layer_names``: every layer key the rules read, in index order;
    * ``grid``, ``index``: the lon/lat cell grid and one ``LayerIndex`` per layer;
    * ``features``: per layer, ``id``, ``name`` and every attribute a ``severity_by`` reads,
      one value per feature (None where missing);
    * ``severities``: per rule id, the severity of a hit on each feature of its layer;
    * ``reach``: per layer, how far (projected metres) a batch measurement searches: the
      largest ``projected_reach(rule.search_distance_m)`` of the rules on the layer;
    * ``to_metric``: lon/lat to the metric CRS (``always_xy``); ``ground``: projected
      distances to distances on the ground;
    * ``texts``: the hit texts of batch results.
    """

    rules: RuleSet
    metric_crs: str
    layer_names: tuple[str, ...]
    grid: Grid
    index: Mapping[str, LayerIndex]
    features: Mapping[str, Mapping[str, np.ndarray]]
    severities: Mapping[str, np.ndarray]
    reach: Mapping[str, float]
    to_metric: Transformer
    ground: GroundDistance
    texts: HitTexts
