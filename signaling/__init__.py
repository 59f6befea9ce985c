"""HTTP app (aiohttp), socket.io namespaces, auth and the REST API."""
