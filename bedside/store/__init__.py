"""Storage: crash-safe files, per-workstation journals, data-directory paths."""
