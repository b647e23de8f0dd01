"""Training: the shared loop (devices, AMP, DDP, checkpoints, resume) and the embedding trainer."""
