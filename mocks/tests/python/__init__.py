"""Acceptance tests of the mocks with real clients. A package, so that its conftest and helpers
do not collide with other suites' modules of the same name in one pytest run."""
