"""The relay: webhook intake, the inbox, the worker that turns deliveries into billing changes, retention."""
