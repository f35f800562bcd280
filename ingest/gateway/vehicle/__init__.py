"""Vehicle sources: GNSS parsing and motion."""
