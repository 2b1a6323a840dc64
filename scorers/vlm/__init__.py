"""The paper's VLM scorers (expected_rating, anchor_pairwise, naive_sampling, zero_shot).

Importing this package is cheap; torch and transformers are imported in ``setup()``.
"""
