"""One file per revision, oldest first: 0001 is the schema as first deployed."""
