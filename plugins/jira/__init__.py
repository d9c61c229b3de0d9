"""jalon's jira source plugin (its hooks arrive with the connector's plugin API)."""
