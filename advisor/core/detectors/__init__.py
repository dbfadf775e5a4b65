"""One detector per diagnosis, each ``(RunCurves, params) -> Finding | None``.

Each module also exposes ``detect_features(view, features, params)`` so that
``analysis.analyze`` cleans and smooths a run once for all detectors. The private
modules (``_oscillation``, ``_progress``, ``_training``) hold the instability detector's
tests, one concept each; underfitting shares ``_progress.near_start``.
"""

from __future__ import annotations

from advisor.core.detectors.instability import InstabilityParams
from advisor.core.detectors.overfitting import OverfittingParams
from advisor.core.detectors.plateau import PlateauParams
from advisor.core.detectors.underfitting import UnderfittingParams

__all__ = ["InstabilityParams", "OverfittingParams", "PlateauParams", "UnderfittingParams"]
