"""Campaigns: rounds of Phase 2, each trained on a set computed from the round before.

``python -m ddai.launch task=campaign`` submits every round at once as Slurm stages linked by
dependencies (:mod:`ddai.campaign.stages`); between rounds a CPU job computes the next set
(:mod:`ddai.campaign.steps`); ``<dir>/campaign.json`` (:mod:`ddai.campaign.record`) records
each round. See docs/campaign.md.
"""
