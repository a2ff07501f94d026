"""Training: data sampling and batching, the loop, checkpoints, and the task runners."""
