"""The web side: the gunicorn server, the admin API, the one-click approval pages."""
