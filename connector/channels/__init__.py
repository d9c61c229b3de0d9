"""Built-in notification channels, registered through the `jalon` entry-point group like any plugin."""
