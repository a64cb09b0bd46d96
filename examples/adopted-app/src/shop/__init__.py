"""Shop Desk: a small Flask app that sells DNS self-service to its customers."""

__version__ = "2.4.1"
