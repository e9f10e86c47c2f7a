"""The Hydra app ``python -m ddai.launch``: one config tree, several tasks."""
