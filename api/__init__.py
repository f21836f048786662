"""Placeholder room (DESIGN.md layout); filled by a later issue."""
