"""Developer tools shipped with the repository (not part of the charm)."""
