"""File formats: one module per format owns its version, validation and errors."""
