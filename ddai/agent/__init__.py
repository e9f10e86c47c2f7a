"""The search agent for verl 0.9: tag protocol, search and crop tools, the agent loop.

Import submodules directly; only ``ddai.agent.agent_loop`` imports verl.
"""
