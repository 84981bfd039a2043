"""agentmesh: a peer-to-peer gitops agent mesh."""

__version__ = "0.1.0"
