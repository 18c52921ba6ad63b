"""The ways people reach the assistant; each is thin and leaves the reasoning to the pipeline."""
