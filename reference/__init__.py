"""The reference trainer and evaluation for the lung-ultrasound BYOL paper (not part of the installed package).

Run the scripts from the repository root (``python reference/train_byol.py``); import the pieces as
``from reference.model import Darknet3D, load_encoder`` with the repository root on ``sys.path``.
"""
