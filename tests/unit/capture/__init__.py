"""Unit tests of the capture-policy package (pure logic, no I/O)."""
