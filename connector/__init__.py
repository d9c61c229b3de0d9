"""jalon's connector: the Flask relay, admin API, CLI and plugin manager."""
