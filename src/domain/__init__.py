"""The waiting-list domain: pure rules, no I/O, no clock reads."""
