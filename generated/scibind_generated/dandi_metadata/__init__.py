"""Typed DANDI metadata (TypedDicts) generated from dandischema 0.14.0.

Every class of dandischema's models is in :mod:`.models`; the top-level documents are re-exported
here. Needs neither dandischema nor pydantic at run time. Generated; do not edit.
"""

from .models import Asset, DandiMetadata, Dandiset, PublishedAsset, PublishedDandiset

__all__ = ["Asset", "DandiMetadata", "Dandiset", "PublishedAsset", "PublishedDandiset"]
