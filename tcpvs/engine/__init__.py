"""The data path: listeners, client-side protocols, server connections and their pool."""
