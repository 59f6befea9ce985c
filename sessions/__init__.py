"""Domain: service catalog, sessions, queues and routing, staff presence, audit, store."""
