"""Paid-API clients and what both the agent and the reward share: settings, retries, the tag protocol, page ids."""
