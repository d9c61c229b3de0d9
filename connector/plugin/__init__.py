"""The plugin kit: what a plugin author imports (``jalon.connector.plugin``), the hookspecs and the plugin manager."""
