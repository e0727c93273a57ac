"""Wire-compatibility suites runnable against any server URL (issue 4 fills this in)."""
