"""jalon's clickup source plugin (its hooks arrive with the connector's plugin API)."""
