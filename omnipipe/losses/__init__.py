"""Loss components (kind ``loss``)."""
