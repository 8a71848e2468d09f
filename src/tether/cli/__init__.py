"""The `tether` command line: each command parses, calls one service, renders."""
