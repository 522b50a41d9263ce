"""The lab's Kubernetes API server: the real protocol (discovery, CRUD, watch, patch, apply, exec, logs) over aiohttp."""
