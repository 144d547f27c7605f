"""Training and evaluation: Lightning task, losses, metrics, train/evaluate loops."""
