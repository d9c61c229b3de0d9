"""``jalon demo``: the one-command tour, and its stand-in for Jira."""
