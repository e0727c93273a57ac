"""The checks, one module per suite; each check's docstring says what it proves."""
