"""Builders of tiny models and data for tests and for users' smoke tests."""
