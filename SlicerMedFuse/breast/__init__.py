"""Breast MRI mass segmentation: phantom data, inputs by role, the breast paper's networks in a task.

- :mod:`.phantom`, :mod:`.phantom_dataset`: seeded two-sequence breast MRI phantom with exact masks.
- :mod:`.sequences`, :mod:`.alignment`, :mod:`.study`: roles, DCE phases, register checks, the T1C grid.
- :mod:`.model_input`, :mod:`.inference`: channels, normalisation, slice-wise 2D / 3D inference.
- :mod:`.training_data`, :mod:`.training`: nnU-Net-layout training of Table 1's networks.
- :mod:`.evaluation`, :mod:`.dataset_evaluation`: Dice, sensitivity, relative area difference, HD95.
- :mod:`.labels`: the coded "Mass" label.
"""
