"""Issue 19: one test per finding of the hostile-files probe (see each module's docstring)."""
