"""Training studio-mini on the procedural world (plain PyTorch; run on a GPU, resumable)."""
