"""Many requests at once: variants, batches of rows, grids of combinations, and waiting for them
with progress."""
