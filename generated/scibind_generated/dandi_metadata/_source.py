"""Where the generated DANDI metadata models came from (written by `codegen metadata-models`)."""

DANDISCHEMA_VERSION = "0.14.0"
SCHEMA_SHA256 = "433a25af5a7158d166522689f19e287b78f1efb7770a56c21740be12df5f6452"
GENERATOR = "datamodel-code-generator 0.89.0"
MODELS = ["Dandiset", "Asset", "PublishedDandiset", "PublishedAsset"]
SCHEMA_VERSION = "0.8.0"
"""The metadata schema version (``schemaVersion``) of the models and of ``schemas/*.json``."""
ALLOWED_INPUT_SCHEMAS = ["0.4.4", "0.5.1", "0.5.2", "0.6.0", "0.6.1", "0.6.2", "0.6.3", "0.6.4", "0.6.5", "0.6.6", "0.6.7", "0.6.8", "0.6.9", "0.6.10", "0.7.0", "0.8.0"]
"""Older schema versions dandischema reads (and migrates)."""
ALLOWED_TARGET_SCHEMAS = ["0.6.10", "0.7.0", "0.8.0"]
"""Older schema versions dandischema can downgrade metadata to."""
