"""Where the generated DANDI metadata models came from (written by `codegen metadata-models`)."""

DANDISCHEMA_VERSION = "0.14.0"
SCHEMA_SHA256 = "433a25af5a7158d166522689f19e287b78f1efb7770a56c21740be12df5f6452"
GENERATOR = "datamodel-code-generator 0.89.0"
MODELS = ["Dandiset", "Asset", "PublishedDandiset", "PublishedAsset"]
