"""HTTP routes, one module per format."""
