"""Data: reader registry, data sets, and the embedded phantom benchmark."""
