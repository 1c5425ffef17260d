"""ntbcare."""
