"""jalon's bitrix24 source plugin (its hooks arrive with the connector's plugin API)."""
